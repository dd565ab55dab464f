/* orphans N WINDOW RESULT_FILE
 * Runs as the main child of an init that is PID 1. Creates N double-forked
 * orphans as fast as it can: fork A; A forks G and exits at once; G exits at
 * once, so G (a zombie or about to be one) is reparented to PID 1, which must
 * reap it. Then waits until every G is gone (kill(G, 0) fails with ESRCH:
 * reaped, not merely a zombie). At most WINDOW orphans may be unreaped at a
 * time (the burst pauses otherwise), so a broken init cannot exhaust the
 * machine's pids. Writes "n created_ns reaped_ns throttled init_cpu_ns" to
 * RESULT_FILE (times since the burst started; init_cpu_ns: CPU time PID 1
 * used meanwhile, from /proc/1/task/STAR/schedstat, which needs /proc mounted
 * for this PID namespace) and exits 0; the alarm ends it on a timeout. */
#include "common.h"
#include <dirent.h>
#include <sys/mman.h>

/* CPU time of every thread of PID 1, in ns; 0 when unreadable. */
static unsigned long long init_cpu_ns(void) {
    unsigned long long sum = 0;
    DIR *d = opendir("/proc/1/task");
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/1/task/%s/schedstat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        unsigned long long v;
        if (fscanf(f, "%llu", &v) == 1) sum += v;
        fclose(f);
    }
    closedir(d);
    return sum;
}

static pid_t *pids;
static long oldest;

static int gone(pid_t p) { return p <= 0 || (kill(p, 0) < 0 && errno == ESRCH); }

static void advance(long upto) {
    while (oldest < upto && gone(pids[oldest])) oldest++;
}

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    long n = atol(argv[1]);
    long window = atol(argv[2]);
    alarm(120);
    reset_signals();
    pids = mmap(NULL, sizeof(pid_t) * (size_t)n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (pids == MAP_FAILED) die("mmap");
    long throttled = 0, forkfail = 0;
    unsigned long long cpu0 = init_cpu_ns();
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        while (i - oldest >= window) {
            advance(i);
            if (i - oldest >= window) { throttled++; sleep_ns(20000); }
        }
        pid_t a = fork();
        if (a < 0) { forkfail++; sleep_ns(1000000); i--; if (forkfail > 1000) die("fork"); continue; }
        if (a == 0) {
            pid_t g = fork();
            if (g == 0) _exit(0);
            pids[i] = g;
            _exit(g < 0);
        }
        int st;
        while (waitpid(a, &st, 0) < 0 && errno == EINTR) {}
    }
    uint64_t t1 = now_ns();
    while (oldest < n) {
        advance(n);
        if (oldest < n) sleep_ns(20000);
    }
    uint64_t t2 = now_ns();
    unsigned long long cpu1 = init_cpu_ns();
    FILE *f = fopen(argv[3], "w");
    if (!f) die("result file");
    fprintf(f, "%ld %llu %llu %ld %llu\n", n, (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t0), throttled,
            cpu1 >= cpu0 ? cpu1 - cpu0 : 0);
    fclose(f);
    return 0;
}
