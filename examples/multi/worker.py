"""The background worker: takes jobs until told to stop, then finishes the
current one (the graceful stop pyinit gives it time for)."""
import logging
import signal
import time
import urllib.error
import urllib.request

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
stopping = False


def stop(signum, _frame):
    global stopping
    logging.info("got %s, finishing the current job", signal.Signals(signum).name)
    stopping = True


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGQUIT, stop)


def ask_web():
    # Under the TOML config, web is ready before the worker starts
    # (depends_on + ready); a Procfile has no readiness, so wait for it here.
    for _ in range(50):
        try:
            with urllib.request.urlopen("http://127.0.0.1:8000/", timeout=2) as r:
                return r.read().decode().strip()
        except (urllib.error.URLError, ConnectionError):
            if stopping:
                return "(not asked: stopping)"
            time.sleep(0.2)
    raise SystemExit("web never answered")


job = 0
while not stopping:
    job += 1
    logging.info("job %d: web says %s", job, ask_web())
    time.sleep(1)
logging.info("worker stopped cleanly after %d jobs", job)
