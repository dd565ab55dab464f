"""A minimal WSGI app for gunicorn under pyinit.

It logs with `logging`, not print(): every record is one write(), so the
lines of several workers sharing gunicorn's stderr never run into each other.
"""

import logging
import os

logging.basicConfig(
    level=logging.INFO,
    format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
)
log = logging.getLogger("app")


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    log.info("%s %s", environ.get("REQUEST_METHOD", "GET"), path)
    body = f"hello from worker {os.getpid()}\n".encode()
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]
