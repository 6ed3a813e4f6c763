"""gunicorn settings for production: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

Runs in the foreground (systemd supervises it); `--bind` on the command line
overrides the address below. The worker model was measured on the 2-core machine (loadtests/README.md,
"Choosing the gunicorn workers"): gthread, 2 workers per core, 4 threads each.
With the one-statement winning path, the rush of 1,000 clicks is answered
sooner by a few processes with more threads than by many with two: 4 x 4 had a
rush p99 of ~2.3 s where 8 x 2 had ~3.6 s (fewer processes competing for two
cores, and a thread waiting on Redis or SQL lets a sibling run), with the same
floor (/healthz ~3.2k req/s) and full-event rejections (~0.6-0.7k req/s)
within the machine's noise. sync workers lose keep-alive and ~20 % of the floor.
"""

import os

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1)))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 4))
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
