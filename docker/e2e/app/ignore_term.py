"""Scenario c: ignores SIGTERM (says so on stdout) and sleeps forever."""
import os
import signal
import time


def handler(signum, frame):
    os.write(1, f"ignoring signal {signum}\n".encode())


signal.signal(signal.SIGTERM, handler)
print("READY", flush=True)
while True:
    time.sleep(1)
