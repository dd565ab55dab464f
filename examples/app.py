#!/usr/bin/env python3
"""A small job-processing service that behaves like real Python apps do.

The main process starts two worker processes (as gunicorn, celery or
multiprocessing would), then waits. Every worker takes a "job" that lasts
about a second and logs with plain print() calls, never flushing: without
PYTHONUNBUFFERED (which pyinit sets), those lines would sit in an 8 KiB
buffer while stdout is a pipe, and arrive late or not at all.

On SIGTERM (or SIGINT) the main process passes the signal on to its workers
(as gunicorn's arbiter and celery's main process do), every worker finishes
the job in hand and exits 0, and the main process exits 0 once they are all
gone. Under pyinit's default signal scope (`auto`), a main process that
handles the stop signal is trusted to stop its own workers, so they get it
once, from their master, never a second time from the init. Run as PID 1
without an init, nobody reaps what the app leaves behind and nothing writes
its output line by line: without PYTHONUNBUFFERED (which pyinit sets), the
print() lines wait in an 8 KiB buffer while stdout is a pipe.

    python3 examples/app.py [--workers N] [--job-seconds S]
"""

import argparse
import os
import signal
import subprocess
import sys
import time


def worker(name: str, index: int, job_seconds: float, ready_fd: int) -> int:
    stopping = None

    def on_stop(signum, frame):
        # Only note it: print() in a signal handler can interrupt a print()
        # in progress, and the job in hand has to finish first anyway.
        nonlocal stopping
        stopping = signal.Signals(signum).name

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)  # Ctrl-C under `docker run -it`
    # Tell the main process that the handlers are in place: a SIGTERM that
    # came before this would kill the worker outright.
    os.write(ready_fd, b"r")
    os.close(ready_fd)
    # Workers start half a job apart, as real ones rarely run in lockstep.
    time.sleep((index - 1) * job_seconds / 2)
    job = 0
    while not stopping:
        job += 1
        print(f"{name}: job {job} started")
        # time.sleep resumes after the signal handler has run (PEP 475), so
        # the job in hand is completed, as a real job would be.
        time.sleep(job_seconds)
        print(f"{name}: job {job} done")
    when = f"during job {job}; finished it" if job else "before the first job"
    print(f"{name}: {stopping} received {when}, exiting")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--job-seconds", type=float, default=1.0)
    parser.add_argument("--worker-name", help=argparse.SUPPRESS)
    parser.add_argument("--worker-index", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker_name:
        return worker(args.worker_name, args.worker_index, args.job_seconds, args.ready_fd)

    stopping = False

    workers = []

    def on_term(signum, frame):
        nonlocal stopping
        stopping = True
        # The main process spends its time in os.wait(), so a print() here
        # does not cut into another print() of its own.
        print(f"main: {signal.Signals(signum).name} received, passing it to the workers")
        for w in workers:
            if w.returncode is None:
                w.send_signal(signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    print(f"main: pid {os.getpid()}, starting {args.workers} workers")
    ready_r, ready_w = os.pipe()
    workers += [
        subprocess.Popen(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--worker-name",
                f"worker-{i}",
                "--worker-index",
                str(i),
                "--job-seconds",
                str(args.job_seconds),
                "--ready-fd",
                str(ready_w),
            ],
            pass_fds=[ready_w],
        )
        for i in range(1, args.workers + 1)
    ]
    os.close(ready_w)
    # Ready once every worker has its signal handlers (one byte each).
    got = b""
    while len(got) < args.workers:
        chunk = os.read(ready_r, args.workers)
        if not chunk:
            break  # a worker died before it was ready
        got += chunk
    os.close(ready_r)
    print(f"main: ready, workers {' '.join(str(w.pid) for w in workers)}")

    status = 0
    pending = {w.pid: w for w in workers}
    while pending:
        # Reap workers in the order they exit, so none stays a zombie.
        # os.wait() is retried after a signal handler runs, so a SIGTERM
        # here only passes the signal on; the workers then stop.
        pid, wait_status = os.wait()
        w = pending.pop(pid, None)
        if w is None:
            continue
        w.returncode = code = os.waitstatus_to_exitcode(wait_status)
        if code != 0:
            print(f"main: worker {pid} exited with {code}", file=sys.stderr)
            status = 1
    if not stopping:
        print("main: workers exited on their own", file=sys.stderr)
        status = status or 1
    print(f"main: all workers done, exiting with {status}")
    return status


if __name__ == "__main__":
    sys.exit(main())
