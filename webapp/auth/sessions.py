"""Signed-in sessions with lifetimes the server enforces: absolute, idle, "keep me signed in".

The session is Flask's signed cookie. Whenever someone is signed in (Flask-Login's
user_logged_in signal, whoever calls login_user) the session gets the time of the
sign-in and a last-seen time. The user loader, through which every sign-in by cookie
passes, refuses a session begun more than SESSION_ABSOLUTE_SECONDS ago or unused for
more than SESSION_IDLE_SECONDS (SESSION_REMEMBER_IDLE_SECONDS with "Keep me signed
in", which also makes the cookie outlive the browser). A refused session is signed
out: pages send the person to /login?next=..., the API answers 401.

Flask-Login's remember cookie is not used: it carries no time of its own, and a
session it would rebuild has none of the times above, so it is refused.
"""

from __future__ import annotations

import time

from flask import current_app, request, session
from flask_login import login_user, user_logged_in

from webapp.auth.models import User
from webapp.auth.services import load_session_user

SIGNED_IN_AT, SEEN_AT, KEEP = "_signed_in_at", "_seen_at", "_keep"
# Last-seen moves at most this often, so the cookie is not rewritten on every response.
TOUCH_SECONDS = 60


def now() -> int:
    """The clock sessions are measured by (tests move it)."""
    return int(time.time())


def init_app(_app) -> None:
    user_logged_in.connect(_stamp)  # connecting the same receiver again changes nothing


def start(user: User, *, keep: bool) -> None:
    """Sign this person in on a fresh session (no fixation). `keep`: "Keep me signed
    in": the longer idle limit and a cookie that outlives the browser."""
    session.clear()
    login_user(user)
    session[KEEP] = bool(keep)
    session.permanent = bool(keep)


def _stamp(_sender, user=None, **_extra) -> None:
    # A sign-in again within a session (a password change keeps its own session) keeps
    # the session's start: the absolute limit counts from the first sign-in.
    if SIGNED_IN_AT not in session:
        moment = now()
        session[SIGNED_IN_AT], session[SEEN_AT], session[KEEP] = moment, moment, False
    if session.get("_remember") == "set":
        session.pop("_remember")  # never a Flask-Login remember cookie


def load_user(session_id: str) -> User | None:
    """Flask-Login's user loader: the person of a live session, else None (signed out)."""
    if not is_alive():
        end()
        return None
    user = load_session_user(session_id)
    if user is not None:
        _touch()
    return user


def is_alive() -> bool:
    """Whether the current session is within its absolute and idle limits."""
    started, seen = session.get(SIGNED_IN_AT), session.get(SEEN_AT)
    if not (isinstance(started, int) and isinstance(seen, int)):
        return False
    config, moment = current_app.config, now()
    idle = config["SESSION_REMEMBER_IDLE_SECONDS" if session.get(KEEP) else
                  "SESSION_IDLE_SECONDS"]
    return moment - started <= config["SESSION_ABSOLUTE_SECONDS"] and moment - seen <= idle


def end() -> None:
    """Sign the session out: forget the person, and delete a left-over remember cookie."""
    if "_user_id" in session:
        session.clear()
    if current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies:
        session["_remember"] = "clear"  # Flask-Login deletes the cookie after the request


def _touch() -> None:
    moment = now()
    if moment - session.get(SEEN_AT, 0) >= TOUCH_SECONDS:
        session[SEEN_AT] = moment
