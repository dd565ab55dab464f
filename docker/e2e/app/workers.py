"""The docker logs case: 5,000 lines from several worker processes, plus
lines longer than Docker's 16 KiB log-message limit, then exit 0.

    python3 workers.py WORKERS LINES_PER_WORKER

The workers share the main process's stdout (a pipe to pyinit, or with
`docker run --init` straight to Docker) and each writes its lines with one
write() each, as `logging` does; every line is at most 4,000 bytes, under the
pipe's 4,096-byte atomic write, so the kernel never mixes two lines.
The main process writes the long lines (16 KiB + 1 up to 100,000 bytes)
before it starts the workers and after they have all exited, so no other
process writes while they are in the pipe. `expected()` is imported by
check_docker_logs.py.
"""
import os
import sys

LONG = [16 * 1024 + 1, 20000, 40000, 65535, 65537, 100000]


def worker_line(w, i):
    n = (i * 131 + w * 17) % 3900 if i % 50 == 0 else (i * 37 + w) % 200
    return f"w{w} {i:05d} {'x' * n} end w{w} {i:05d}"


def long_line(tag, n):
    head = f"long {tag} {n} "
    return head + "y" * (n - len(head))


def expected(workers, per_worker):
    """(lines of each worker in order, long lines of the main in order)."""
    per = {w: [worker_line(w, i) for i in range(per_worker)] for w in range(workers)}
    main = [long_line("before", n) for n in LONG] + [long_line("after", n) for n in LONG]
    return per, main


def write_line(text):
    data = (text + "\n").encode()
    while data:
        data = data[os.write(1, data):]


if __name__ == "__main__":
    workers, per_worker = int(sys.argv[1]), int(sys.argv[2])
    for n in LONG:
        write_line(long_line("before", n))
    pids = []
    for w in range(workers):
        pid = os.fork()
        if pid == 0:
            for i in range(per_worker):
                write_line(worker_line(w, i))
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        if status != 0:
            sys.exit(f"worker {pid} ended with wait status {status}")
    for n in LONG:
        write_line(long_line("after", n))
