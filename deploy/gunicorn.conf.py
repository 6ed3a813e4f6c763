"""gunicorn settings for production: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

Runs in the foreground (systemd supervises it); `--bind` on the command line
overrides the address below. The worker model was measured with
`make bench BENCH_ARGS=--matrix` on the 2-core machine (loadtests/README.md):
gthread, 4 workers per core, 2 threads each. Its floor (/healthz) equals 4 x 8
threads (~2.1k req/s) and its winning registration is ~40 % faster with a lower
tail: fewer threads per process compete for one GIL, so a thread whose SQL
statement returned gets back to work sooner. sync workers registered a little
faster still, but lose keep-alive and ~20 % of the floor.
"""

import os

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", 4 * (os.cpu_count() or 1)))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 2))
# Must stay below the seat hold TTL (SEAT_HOLD_TTL_MS, 60 s) so a hold outlives its request.
timeout = 30
graceful_timeout = 30
keepalive = 5
backlog = 2048
max_requests = 20000
max_requests_jitter = 2000
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
forwarded_allow_ips = "127.0.0.1"
# gunicorn's runtime control socket lives at one path per user
# (~/.gunicorn/gunicorn.ctl), which would collide between instances; we use signals.
control_socket_disable = True


def post_fork(server, worker):
    """Size each worker's SQL pool from its thread count (unless DB_POOL_* are set).

    A request thread can hold two pooled connections at once: its request
    session, and a read snapshot while the seat gate loads an event Redis does
    not know yet. With fewer than 2 x threads, a rush on a cold event waits for
    connections until pool_timeout and fails (seen at 2 workers x 16 threads).
    """
    for name in ("DB_POOL_SIZE", "DB_POOL_OVERFLOW"):
        os.environ.setdefault(name, str(server.cfg.threads))
