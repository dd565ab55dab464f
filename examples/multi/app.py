"""The web process: a WSGI app served by gunicorn."""
import os


def app(environ, start_response):
    body = f"hello from worker pid {os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
