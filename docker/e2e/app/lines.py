"""Scenario d: write N numbered lines quickly, then say so in a file and wait.

The lines are written with print() (with PYTHONUNBUFFERED=1, which pyinit sets,
that is one write() for the text and one for the newline) and vary in length;
every 250th is 20000 bytes, more than a pipe's atomic PIPE_BUF, so the kernel
may hand it to pyinit in pieces. Every 10th line also goes to stderr.
The test stops the container as soon as /out/written exists and then checks
that every line arrived whole. `expected()` is imported by the checker.
"""
import os
import sys
import time


def line(i):
    n = 20000 if i % 250 == 0 else (i * 37) % 300
    return f"line {i:06d} {'x' * n} end {i:06d}"


def expected(n, stream="stdout"):
    if stream == "stdout":
        return [line(i) for i in range(1, n + 1)]
    return [f"err {i:06d}" for i in range(1, n + 1) if i % 10 == 0]


if __name__ == "__main__":
    n = int(sys.argv[1])
    for i in range(1, n + 1):
        print(line(i))
        if i % 10 == 0:
            print(f"err {i:06d}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # Every write() above has returned: the lines are in the pipe or beyond.
    with open("/out/written", "w") as f:
        f.write(f"{n}\n")
    while True:
        time.sleep(1)
