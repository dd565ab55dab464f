/* latdrv MODE N FD PID1 TIMEOUT_S -- CMD [ARG...]
 *
 * MODE sig:      start CMD once (its child is `sigchild FD`), then N times:
 *                t0 = now; kill(init, SIGUSR1); wait for the timestamp the
 *                child's handler writes; print (t_child - t0) in ns.
 * MODE shutdown: N times: start CMD, wait until the child is ready, let it
 *                settle, t0 = now; kill(init, SIGTERM); wait on a pidfd of
 *                the init until it has exited; print (t1 - t0) in ns, and
 *                (t_child - t0), when the child's TERM handler ran.
 * PID1=1: CMD is `unshare --pid --fork ... INIT ...`; the init is the only
 * child of that unshare process (found in /proc/PID/task/PID/children).
 * Errors print "FAIL <reason>" lines; everything is bounded by TIMEOUT_S. */
#include "common.h"
#include <sys/syscall.h>

static char **cmdv;
static int report_fd_num;

static pid_t start(int *rfd) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) die("pipe");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        if (dup2(p[1], report_fd_num) < 0) _exit(111); /* dup2 clears CLOEXEC */
        reset_signals();
        execv(cmdv[0], cmdv);
        _exit(127);
    }
    close(p[1]);
    *rfd = p[0];
    return pid;
}

static pid_t find_init(pid_t pid, int pid1) {
    if (!pid1) return pid;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", pid, pid);
    for (int tries = 0; tries < 2000; tries++) {
        FILE *f = fopen(path, "r");
        if (f) {
            int c = 0;
            int n = fscanf(f, "%d", &c);
            fclose(f);
            if (n == 1 && c > 0) return c;
        }
        sleep_ns(1000000);
    }
    return -1;
}

/* Stops what start() began: TERM to the init, then KILL; reaps `pid`. */
static void finish(pid_t pid, pid_t init) {
    if (init > 0) kill(init, SIGTERM);
    for (int i = 0; i < 2000; i++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) return;
        if (i == 1000) { if (init > 0) kill(init, SIGKILL); kill(pid, SIGKILL); }
        sleep_ns(1000000);
    }
}

int main(int argc, char **argv) {
    if (argc < 8 || strcmp(argv[6], "--") != 0) {
        fprintf(stderr, "usage: latdrv sig|shutdown N FD PID1 TIMEOUT_S -- CMD...\n");
        return 2;
    }
    const char *mode = argv[1];
    int n = atoi(argv[2]);
    report_fd_num = atoi(argv[3]);
    int pid1 = atoi(argv[4]);
    alarm((unsigned)atoi(argv[5]));
    cmdv = &argv[7];
    setvbuf(stdout, NULL, _IOLBF, 0);
    srand((unsigned)getpid());
    uint64_t ts;

    if (strcmp(mode, "sig") == 0) {
        int rfd;
        pid_t pid = start(&rfd);
        if (read_full_timeout(rfd, &ts, 8, 10000) < 0) { printf("FAIL not ready\n"); finish(pid, -1); return 1; }
        pid_t init = find_init(pid, pid1);
        if (init < 0) { printf("FAIL no init\n"); finish(pid, -1); return 1; }
        sleep_ns(20000000); /* let the init finish starting up */
        for (int i = 0; i < n; i++) {
            sleep_ns(1000000 + (uint64_t)(rand() % 2000000)); /* idle 1-3 ms */
            uint64_t t0 = now_ns();
            kill(init, SIGUSR1);
            if (read_full_timeout(rfd, &ts, 8, 2000) < 0) { printf("FAIL lost signal\n"); continue; }
            printf("%lld\n", (long long)(ts - t0));
        }
        finish(pid, init);
        return 0;
    }
    if (strcmp(mode, "shutdown") == 0) {
        for (int i = 0; i < n; i++) {
            int rfd;
            pid_t pid = start(&rfd);
            if (read_full_timeout(rfd, &ts, 8, 10000) < 0) { printf("FAIL not ready\n"); finish(pid, -1); close(rfd); continue; }
            pid_t init = find_init(pid, pid1);
            int pfd = init > 0 ? (int)syscall(SYS_pidfd_open, init, 0) : -1;
            if (pfd < 0) { printf("FAIL no pidfd\n"); finish(pid, init); close(rfd); continue; }
            sleep_ns(10000000 + (uint64_t)(rand() % 5000000)); /* settle 10-15 ms */
            uint64_t t0 = now_ns();
            kill(init, SIGTERM);
            struct pollfd p = {.fd = pfd, .events = POLLIN};
            int r;
            do { r = poll(&p, 1, 5000); } while (r < 0 && errno == EINTR);
            uint64_t t1 = now_ns();
            uint64_t tc = 0; /* when the child's TERM handler ran */
            if (r == 1 && read_full_timeout(rfd, &tc, 8, 100) == 0 && tc >= t0)
                printf("%llu %llu\n", (unsigned long long)(t1 - t0), (unsigned long long)(tc - t0));
            else if (r == 1) printf("%llu\n", (unsigned long long)(t1 - t0));
            else printf("FAIL no exit within 5s\n");
            close(pfd);
            close(rfd);
            finish(pid, r == 1 ? -1 : init);
        }
        return 0;
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
