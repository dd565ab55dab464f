#!/usr/bin/env python3
"""The `docker run -it` case: a Python REPL in a container, driven through a
pseudo-terminal as a person at a keyboard would.

    docker_tty.py docker run -it --rm IMAGE... python3 -i -q

The docker client runs on the slave side of a new pty (its stdin is a
terminal, as `-it` requires). Then: wait for the `>>> ` prompt; start
`time.sleep(60)`; press Ctrl-C; expect `KeyboardInterrupt` and a new prompt
(the REPL survived); `print(6*7)` gives 42; Ctrl-D ends the REPL and the
container exits 0. Prints one line: `PASS ctrl-c->prompt 0.123 s; exit 0`
or `FAIL: <reason>` and the end of the transcript. Every read is bounded.
"""
import os
import pty
import select
import signal
import sys
import time

STEP_TIMEOUT = 30  # the first prompt includes the container's start


class Fail(Exception):
    pass


def main():
    argv = sys.argv[1:]
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    out = bytearray()

    def read_until(marker, timeout=STEP_TIMEOUT, start=None):
        """Read until MARKER appears after offset START; return the offset after it."""
        start = len(out) if start is None else start
        deadline = time.monotonic() + timeout
        while True:
            at = out.find(marker, start)
            if at >= 0:
                return at + len(marker)
            left = deadline - time.monotonic()
            if left <= 0:
                raise Fail(f"no {marker!r} within {timeout} s")
            ready, _, _ = select.select([fd], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the other side closed
                    chunk = b""
                if not chunk:
                    raise Fail(f"the terminal closed before {marker!r}")
                out.extend(chunk)

    status = None
    try:
        read_until(b">>> ")
        pos = len(out)
        # The marker is built at run time so that the echo of the typed line
        # does not match it.
        os.write(fd, b"import time; print('sle' + 'eping'); time.sleep(60)\r")
        read_until(b"sleeping\r\n", start=pos)
        # A person's reaction time before Ctrl-C. Sent within a millisecond
        # of the output, the SIGINT can land after the interpreter's last
        # signal check and before time.sleep's clock_nanosleep() starts: the
        # handler runs, but nothing interrupts the sleep (a CPython race; it
        # happens with no init at all). E2E_TTY_DELAY=0 brings it back.
        time.sleep(float(os.environ.get("E2E_TTY_DELAY", "0.3")))
        pos = len(out)
        t0 = time.monotonic()
        os.write(fd, b"\x03")
        after = read_until(b"KeyboardInterrupt", timeout=10, start=pos)
        read_until(b">>> ", timeout=10, start=after)
        ctrl_c_s = time.monotonic() - t0
        pos = len(out)
        os.write(fd, b"print(6*7)\r")
        after = read_until(b"42\r\n", timeout=10, start=pos)
        read_until(b">>> ", timeout=10, start=after)  # reading input again
        os.write(fd, b"\x04")  # Ctrl-D at the prompt: the REPL exits 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            done, wstatus = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(wstatus)
                break
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    out.extend(os.read(fd, 65536))
                except OSError:
                    pass
        if status is None:
            raise Fail("docker run did not return within 20 s of Ctrl-D")
        if status != 0:
            raise Fail(f"docker run exited {status}, expected 0")
        print(f"PASS Ctrl-C -> KeyboardInterrupt and a new prompt in {ctrl_c_s:.3f} s; REPL went on; exit {status}")
        return 0
    except Fail as e:
        print(f"FAIL: {e}")
        tail = out[-600:].decode("utf-8", "replace")
        for line in tail.splitlines():
            print(f"    tty| {line}")
        return 1
    finally:
        if status is None:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
