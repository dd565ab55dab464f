/* sigchild FD [LINE]
 * The child under test for signal forwarding and shutdown. Writes its
 * CLOCK_MONOTONIC time (8 bytes) to FD once at start (ready) and again from
 * the SIGUSR1 handler each time SIGUSR1 arrives; on SIGTERM/SIGINT writes
 * the time once more and exits 0 at once (a child that stops promptly).
 * With LINE, it first writes LINE and a newline to stderr on the stop
 * signal, as an app logs its last words: the init must copy it out. */
#include "common.h"

static int out_fd = -1;
static const char *last_words;

static void on_usr1(int sig) {
    (void)sig;
    uint64_t t = now_ns();
    ssize_t r = write(out_fd, &t, sizeof t);
    (void)r;
}
static void on_term(int sig) {
    (void)sig;
    uint64_t t = now_ns(); /* when the stop signal arrived, for the shutdown split */
    ssize_t r = write(out_fd, &t, sizeof t);
    (void)r;
    if (last_words) {
        char line[256];
        size_t n = strlen(last_words);
        if (n > sizeof line - 1) n = sizeof line - 1;
        memcpy(line, last_words, n);
        line[n] = '\n';
        r = write(2, line, n + 1);
    }
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    out_fd = atoi(argv[1]);
    if (argc > 2) last_words = argv[2];
    reset_signals();
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    uint64_t t = now_ns();
    if (write(out_fd, &t, sizeof t) != sizeof t) return 111;
    alarm(600); /* never outlive a broken harness */
    for (;;) pause();
}
