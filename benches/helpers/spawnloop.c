/* spawnloop K TIMEOUT_S CMD [ARG...]
 * Runs CMD K times (posix_spawn + waitpid), one after the other, and prints
 * the wall time of each run in nanoseconds, one per line. A run that exits
 * non-zero prints "FAIL <status>". CMD's stdin, stdout and stderr are
 * /dev/null. The whole batch is bounded by TIMEOUT_S. */
#include "common.h"
#include <spawn.h>
extern char **environ;

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: spawnloop K TIMEOUT_S CMD [ARG...]\n"); return 2; }
    int k = atoi(argv[1]);
    alarm((unsigned)atoi(argv[2]));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    for (int fd = 0; fd < 3; fd++) posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
    for (int i = 0; i < k; i++) {
        pid_t pid;
        uint64_t t0 = now_ns();
        int e = posix_spawn(&pid, argv[3], &fa, NULL, &argv[3], environ);
        if (e != 0) { errno = e; die("posix_spawn"); }
        int st;
        while (waitpid(pid, &st, 0) < 0) if (errno != EINTR) die("waitpid");
        uint64_t t1 = now_ns();
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) printf("%llu\n", (unsigned long long)(t1 - t0));
        else printf("FAIL %d\n", st);
    }
    return 0;
}
