"""Scenarios b and e: a plain script with no signal handlers.

Under `pyinit -r TERM:INT` the stop becomes a KeyboardInterrupt and the
`finally:` runs. As PID 1 without an init, the kernel drops SIGTERM (no
handler installed), so the runtime has to SIGKILL it and `finally:` never runs.
"""
import time

try:
    print("READY", flush=True)
    while True:
        time.sleep(1)
finally:
    print("cleanup done", flush=True)
