/* logwriter NWRITERS LINES_PER_WRITER LINELEN ID_BASE LINGER [RUSAGE_FILE [LINES_PER_WRITE]]
 * NWRITERS processes (forked; one process when 1) write LINES_PER_WRITER
 * lines each to stdout, which they share. A line is LINELEN bytes before its
 * newline: "WW SSSSSSSSSS " (writer id, sequence number) then a filler letter
 * that depends on the sequence number. Each write() carries whole lines and
 * at most PIPE_BUF bytes, so writes to a shared pipe never interleave inside a
 * line (as Python's logging does per record). LINGER=1: after writing, wait
 * for a signal instead of exiting (for Procfile mode, where one process
 * exiting stops the others). RUSAGE_FILE: just before exiting, write the
 * CPU time (user+system, microseconds) of all writers to it, so a harness can
 * subtract it from the rusage wait4() reports for the init above ("-": none).
 * LINES_PER_WRITE: lines per write() (default 0: as many as fit in PIPE_BUF;
 * 1 is a print()-heavy app writing each line by itself). */
#include <sys/resource.h>
#include "common.h"
#include <limits.h>

#define HDR 14

static void put_num(char *p, unsigned long long v, int width) {
    for (int i = width - 1; i >= 0; i--) { p[i] = (char)('0' + v % 10); v /= 10; }
}

static void writer(int id, long lines, int len, int per) {
    int rec = len + 1;
    if (per < 1) per = PIPE_BUF / rec;
    if (per < 1) per = 1;
    char *buf = malloc((size_t)rec * (size_t)per);
    char *tmpl[26]; /* one whole line per filler letter; digits patched in */
    for (int c = 0; c < 26; c++) {
        tmpl[c] = malloc((size_t)rec);
        memset(tmpl[c], 'a' + c, (size_t)rec);
        put_num(tmpl[c], (unsigned long long)id, 2);
        tmpl[c][2] = ' ';
        tmpl[c][13] = ' ';
        tmpl[c][len] = '\n';
    }
    char num[10];
    memset(num, '0', sizeof num); /* decimal counter: seq */
    long seq = 0;
    while (seq < lines) {
        int k = 0;
        char *p = buf;
        while (k < per && seq < lines) {
            memcpy(p, tmpl[seq % 26], (size_t)rec);
            memcpy(p + 3, num, 10);
            for (int d = 9; d >= 0; d--) { if (num[d] == '9') num[d] = '0'; else { num[d]++; break; } }
            p += rec;
            k++;
            seq++;
        }
        size_t want = (size_t)(p - buf);
        char *w = buf;
        while (want > 0) {
            ssize_t r = write(1, w, want);
            if (r < 0) { if (errno == EINTR) continue; _exit(3); }
            w += r;
            want -= (size_t)r;
        }
    }
    free(buf);
}

int main(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: logwriter NWRITERS LINES LINELEN ID_BASE LINGER [RUSAGE_FILE]\n"); return 2; }
    int nw = atoi(argv[1]);
    long lines = atol(argv[2]);
    int len = atoi(argv[3]);
    int base = atoi(argv[4]);
    int linger = atoi(argv[5]);
    int per = argc > 7 ? atoi(argv[7]) : 0;
    if (len < HDR + 1) len = HDR + 1;
    reset_signals();
    alarm(600);
    if (nw <= 1) {
        writer(base, lines, len, per);
    } else {
        for (int w = 0; w < nw; w++) {
            pid_t p = fork();
            if (p < 0) die("fork");
            if (p == 0) { writer(base + w, lines, len, per); _exit(0); }
        }
        int st, bad = 0;
        pid_t r;
        while ((r = wait(&st)) > 0 || (r < 0 && errno == EINTR))
            if (r > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) bad = 1;
        if (bad) return 3;
    }
    if (argc > 6 && strcmp(argv[6], "-") != 0) {
        struct rusage a, b;
        getrusage(RUSAGE_SELF, &a);
        getrusage(RUSAGE_CHILDREN, &b);
        long long us = (a.ru_utime.tv_sec + a.ru_stime.tv_sec + b.ru_utime.tv_sec + b.ru_stime.tv_sec) * 1000000LL
                     + a.ru_utime.tv_usec + a.ru_stime.tv_usec + b.ru_utime.tv_usec + b.ru_stime.tv_usec;
        FILE *f = fopen(argv[6], "w");
        if (f) { fprintf(f, "%lld\n", us); fclose(f); }
    }
    if (linger) { close(1); for (;;) pause(); }
    return 0;
}
