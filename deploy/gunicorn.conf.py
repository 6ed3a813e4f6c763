"""gunicorn settings for production: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

Runs in the foreground (systemd supervises it); `--bind` on the command line
overrides the address below. gthread with 2 workers per core and 8 threads
each had the best throughput with a bounded tail on a 2-core machine
(shared/research/performance-anchors.md, section 8).
"""

import os

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1)))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 8))
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
