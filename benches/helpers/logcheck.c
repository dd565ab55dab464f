/* logcheck FORMAT NWRITERS LINES_PER_WRITER LINELEN IDLE_MS STOP_WHEN_COMPLETE [READ_SIZE]
 * Reads records from stdin until EOF (or, with STOP_WHEN_COMPLETE=1, until
 * every expected line arrived; or, with IDLE_MS > 0, after IDLE_MS without
 * data) and checks
 * every one against what logwriter wrote. FORMAT: raw (the line itself),
 * prefix ("name | line") or json (the "line" field of a pyinit JSON record;
 * a "partial" record counts as malformed). Prints one line:
 *   records=R good=G malformed=M lost=L dups=D bytes=B t_end_ns=T cpu_us=C first_bad=...
 * where lost counts expected lines never seen and dups lines seen twice or out
 * of order; t_end_ns is CLOCK_MONOTONIC when the last byte was read; cpu_us
 * is the checker's own CPU time (user+system).
 * It reads the way a container runtime's log copier does (containerd's shim
 * copies the container's stdout with 32 KiB io.Copy buffers): plain blocking
 * read()s of READ_SIZE bytes (default 32768), no poll() in between unless
 * IDLE_MS > 0 asks for an idle timeout. */
#include "common.h"
#include <sys/resource.h>

#define HDR 14
#define CAP (8 << 20)

static int fmt; /* 0 raw, 1 prefix, 2 json */
static int nw, len;
static long per;
static long *next_seq;
static long long records, good, malformed, lost, dups, nbytes;
static char first_bad[161];
static char *fill[26]; /* expected filler per letter */

static void bad(const char *p, size_t n) {
    malformed++;
    if (!first_bad[0]) {
        size_t m = n < 150 ? n : 150;
        for (size_t i = 0; i < m; i++) first_bad[i] = (p[i] >= 32 && p[i] < 127) ? p[i] : '?';
        first_bad[m] = 0;
        if (!first_bad[0]) strcpy(first_bad, "(empty)");
    }
}

static int digits(const char *p, int n, long *out) {
    long v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

static void check(const char *rec, size_t n) {
    records++;
    const char *p = rec;
    size_t m = n;
    if (fmt == 1) {
        const char *bar = memmem(rec, n, "| ", 2);
        if (!bar) { bad(rec, n); return; }
        p = bar + 2;
        m = n - (size_t)(p - rec);
    } else if (fmt == 2) {
        static const char key[] = ",\"line\":\"";
        if (n < 8 || memcmp(rec, "{\"ts\":\"", 7) != 0) { bad(rec, n); return; }
        const char *k = memmem(rec, n, key, sizeof key - 1);
        if (!k) { bad(rec, n); return; }
        p = k + sizeof key - 1;
        const char *q = memchr(p, '"', n - (size_t)(p - rec));
        if (!q || q + 2 != rec + n || q[1] != '}') { bad(rec, n); return; } /* partial or trailing junk */
        m = (size_t)(q - p);
    }
    long id, seq;
    if (m != (size_t)len || p[2] != ' ' || p[13] != ' ' || digits(p, 2, &id) || digits(p + 3, 10, &seq) || id >= nw) {
        bad(rec, n);
        return;
    }
    if (memcmp(p + HDR, fill[seq % 26], m - HDR) != 0) { bad(rec, n); return; }
    if (seq == next_seq[id]) { good++; next_seq[id]++; }
    else if (seq > next_seq[id] && seq < per) { lost += seq - next_seq[id]; good++; next_seq[id] = seq + 1; }
    else dups++;
}

int main(int argc, char **argv) {
    if (argc < 7) { fprintf(stderr, "usage: logcheck raw|prefix|json NWRITERS LINES LINELEN IDLE_MS STOP_WHEN_COMPLETE\n"); return 2; }
    fmt = strcmp(argv[1], "prefix") == 0 ? 1 : strcmp(argv[1], "json") == 0 ? 2 : 0;
    nw = atoi(argv[2]);
    per = atol(argv[3]);
    len = atoi(argv[4]);
    int idle_ms = atoi(argv[5]);
    int stop_complete = atoi(argv[6]);
    size_t read_size = argc > 7 ? (size_t)atol(argv[7]) : 32768;
    if (read_size < 1 || read_size > CAP) read_size = 32768;
    alarm(900);
    if (len < HDR) len = HDR;
    for (int c = 0; c < 26; c++) { fill[c] = malloc((size_t)len); memset(fill[c], 'a' + c, (size_t)len); }
    next_seq = calloc((size_t)nw, sizeof(long));
    char *buf = malloc(CAP);
    size_t have = 0;
    long long expected = (long long)nw * per;
    uint64_t t_end = now_ns();
    for (;;) {
        if (stop_complete && good >= expected) break;
        if (idle_ms > 0) {
            struct pollfd pf = {.fd = 0, .events = POLLIN};
            int r = poll(&pf, 1, idle_ms);
            if (r < 0 && errno == EINTR) continue;
            if (r == 0) break; /* idle: give up waiting */
        }
        size_t want = CAP - have < read_size ? CAP - have : read_size;
        ssize_t k = read(0, buf + have, want);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        t_end = now_ns();
        nbytes += k;
        have += (size_t)k;
        char *s = buf, *end = buf + have, *nl;
        while ((nl = memchr(s, '\n', (size_t)(end - s)))) {
            check(s, (size_t)(nl - s));
            s = nl + 1;
        }
        have = (size_t)(end - s);
        if (have == CAP) { bad(buf, have); have = 0; } /* absurdly long line */
        else if (s != buf) memmove(buf, s, have);
    }
    if (have) bad(buf, have); /* unterminated last record */
    for (int i = 0; i < nw; i++) if (next_seq[i] < per) lost += per - next_seq[i];
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long long cpu_us = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
    printf("records=%lld good=%lld malformed=%lld lost=%lld dups=%lld bytes=%lld t_end_ns=%llu cpu_us=%lld first_bad=%s\n",
           records, good, malformed, lost, dups, nbytes, (unsigned long long)t_end, cpu_us, first_bad[0] ? first_bad : "-");
    return 0;
}
