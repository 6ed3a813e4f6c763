"""Who is signed in, without a SQL query on every request.

Every page and API call needs its person (id, email, name, organizer flag, when
the address was verified) and must check the session_version its cookie or
token carries. Reading that from SQL was a quarter of the cost of a rejected
registration, so a copy of those six fields lives in Redis for
USER_CACHE_SECONDS (0 switches the copy off). A copy that says "not verified"
may be older than the verification: the one check that cares asks SQL then
(webapp/recovery/services.py require_verified_email).

SQL stays the source of truth:

- a copy is only ever made from a SQL read (lua/remember.lua), and refused
  when a sign-out committed after that read: revoke.lua leaves a "floor", the
  lowest session_version still valid, and remember.lua keeps nothing older;
- sign_out_everywhere() raises the floor before its commit and again after it;
- a cookie or token newer than the copy is checked against SQL, an older one
  is refused; Redis unreachable means SQL, exactly as without the copy.

What is left: if Redis failed both before and after a sign-out's commit, yet
kept its data, the old copy (and with it the old sessions) lasts until it
expires, at most USER_CACHE_SECONDS. The failure is logged.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import cache
from importlib import resources

import redis
from flask import current_app

from webapp.auth.models import User
from webapp.extensions import db, redis_store

log = logging.getLogger("turnout.auth")


@cache
def _source(name: str) -> str:
    return resources.files("webapp.auth").joinpath("lua", f"{name}.lua").read_text()


def _key(user_id: int) -> str:
    return f"turnout:user:{int(user_id)}"


class UserDirectory:
    """The Redis copies of people, behind two scripts (remember, revoke) and one HGETALL."""

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self.client = client
        self.ttl_ms = ttl_seconds * 1000
        self._remember = client.register_script(_source("remember"))
        self._revoke = client.register_script(_source("revoke"))

    def lookup(self, user_id: int) -> User | None:
        """The copy of this person, or None when there is none (or only a floor)."""
        fields = self.client.hgetall(_key(user_id))
        if "v" not in fields:
            return None
        verified = fields.get("ev")  # absent in a copy made before the field existed
        return User(id=user_id, email=fields["email"], name=fields["name"],
                    is_organizer=fields["org"] == "1", session_version=int(fields["v"]),
                    email_verified_at=datetime.fromisoformat(verified) if verified else None)

    def remember(self, user: User) -> bool:
        return bool(self._remember(keys=[_key(user.id)], args=[
            user.session_version, self.ttl_ms,
            "email", user.email, "name", user.name, "org", "1" if user.is_organizer else "0",
            "ev", user.email_verified_at.isoformat() if user.email_verified_at else ""]))

    def revoke(self, user_id: int, floor: int) -> None:
        self._revoke(keys=[_key(user_id)], args=[floor, self.ttl_ms])


def get_directory() -> UserDirectory | None:
    """This process's directory, or None when USER_CACHE_SECONDS is 0."""
    app = current_app
    ttl = app.config["USER_CACHE_SECONDS"]
    if ttl <= 0:
        return None
    directory = app.extensions.get("turnout_users")
    if directory is None:
        directory = UserDirectory(redis_store.client, ttl)
        app.extensions["turnout_users"] = directory
    return directory


def user_at_version(user_id: int, version: int) -> User | None:
    """The person, if their current session_version is `version`; else None (revoked, gone).

    The returned User is a detached copy (id, email, name, is_organizer,
    session_version), whether it came from Redis or from SQL.
    """
    directory = get_directory()
    if directory is not None:
        try:
            copy = directory.lookup(user_id)
        except redis.RedisError as exc:
            log.warning("user directory unavailable, reading SQL", extra={"error": str(exc)})
            directory, copy = None, None
        if copy is not None:
            if copy.session_version == version:
                return copy
            if copy.session_version > version:
                return None  # signed out since this cookie or token was issued
            # The cookie is newer than the copy: SQL decides.
    user = db.session.get(User, user_id)
    if user is None:
        return None
    found = _detached(user)
    if directory is not None:
        try:
            directory.remember(found)
        except redis.RedisError as exc:
            log.warning("user directory unavailable, copy not kept", extra={"error": str(exc)})
    return found if found.session_version == version else None


def revoke(user_id: int, floor: int) -> bool:
    """Refuse every copy of this person below `floor`. False (and logged) if Redis failed."""
    directory = get_directory()
    if directory is None:
        return True
    try:
        directory.revoke(user_id, floor)
        return True
    except redis.RedisError as exc:
        log.error("user directory not updated after a sign-out",
                  extra={"user_id": user_id, "floor": floor, "error": str(exc)})
        return False


def _detached(user: User) -> User:
    return User(id=user.id, email=user.email, name=user.name, is_organizer=user.is_organizer,
                session_version=user.session_version, email_verified_at=user.email_verified_at)
