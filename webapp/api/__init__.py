"""The JSON API under /api: thin views over the same services the pages call."""

from flask import Blueprint

from webapp.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api")
# Flask-WTF's global check is off here; webapp.api.guard applies it to every request
# that carries a cookie (see guard.py for the rules).
csrf.exempt(bp)


from webapp.api import account, guard, recovery, views  # noqa: E402,F401
