"""A scheduler: enqueues periodic work."""
import signal
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
n = 0
while True:
    n += 1
    print(f"tick {n}")
    time.sleep(2)
