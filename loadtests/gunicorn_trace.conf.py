"""deploy/gunicorn.conf.py, plus one line per request for loadtests/anatomy.py.

Each worker appends "pid accepted started finished" (epoch seconds) to
$TRACE_DIR/requests.<pid>: when its main thread accepted the connection, when
a pool thread took it up, and when the answer was written. Only for
measurements: it wraps gthread internals (enqueue_req, handle).
"""

import os
import time
from pathlib import Path

_deploy = Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py"
exec(compile(_deploy.read_text(), str(_deploy), "exec"))  # noqa: S102 - our own config file
_deploy_post_fork = post_fork  # noqa: F821 - defined by the exec above


def post_fork(server, worker):
    _deploy_post_fork(server, worker)
    out = (Path(os.environ["TRACE_DIR"]) / f"requests.{os.getpid()}").open("a", buffering=1)
    enqueue, handle = worker.enqueue_req, worker.handle

    def enqueue_req(conn):
        if not hasattr(conn, "accepted_at"):  # its first request on this connection
            conn.accepted_at = time.time()
        enqueue(conn)

    def traced_handle(conn):
        started = time.time()
        try:
            return handle(conn)
        finally:
            out.write(f"{os.getpid()} {conn.accepted_at:.6f} {started:.6f} {time.time():.6f}\n")
            conn.accepted_at = time.time()  # a kept-alive connection's next request

    worker.enqueue_req, worker.handle = enqueue_req, traced_handle
