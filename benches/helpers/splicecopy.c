/* splicecopy MODE
 * A reference copier for the log-throughput table: copies stdin to stdout
 * until EOF, as a capturing init at best could. MODE splice: splice(2) pipe
 * to pipe (no copy through user space); MODE rw: read(2)/write(2) with a
 * 64 KiB buffer (one copy in, one copy out, as pyinit's capture does). */
#include "common.h"

int main(int argc, char **argv) {
    int use_splice = argc > 1 && strcmp(argv[1], "splice") == 0;
    alarm(900);
    static char buf[65536];
    for (;;) {
        ssize_t n;
        if (use_splice) {
            n = splice(0, NULL, 1, NULL, 1 << 20, SPLICE_F_MOVE);
            if (n < 0 && errno == EINVAL) { use_splice = 0; continue; } /* not pipes */
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return n < 0;
            continue;
        }
        n = read(0, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n < 0;
        for (char *p = buf; n > 0;) {
            ssize_t w = write(1, p, (size_t)n);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) return 1;
            p += w;
            n -= w;
        }
    }
}
