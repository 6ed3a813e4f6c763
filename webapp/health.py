"""GET /healthz: the process is up and serving. No database, no Redis, no session.

Load balancers and systemd watchdogs poll it, and the benchmark uses it as the
floor of the same app (the cheapest request Flask can serve through our stack).
"""

from __future__ import annotations

from flask import Blueprint, Response

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return Response("ok", mimetype="text/plain")
