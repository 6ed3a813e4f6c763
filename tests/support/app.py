"""The suite's settings and apps: base_config, a fresh app on clean data, a second app."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from tests.support.processes import ROOT

__all__ = ["FAST_HASH", "PASSWORD", "ROOT", "base_config", "clean_database", "dispose",
           "fresh_app", "isolate_environment", "other_app"]

PASSWORD = "correct horse battery"
FAST_HASH = "scrypt:1024:8:1"  # tests make many accounts; production uses the default cost
TABLES = ("security_events", "idempotency_keys", "outbox", "activity_log", "registrations",
          "events", "users")


def isolate_environment() -> None:
    """Settings read by create_app() must not come from the developer's shell.

    Call it before webapp is imported: the instance folder is read at import.
    """
    for name in ("DATABASE_URL", "SECRET_KEY", "SEAT_GATE_ENABLED"):
        os.environ.pop(name, None)
    os.environ.setdefault("TURNOUT_INSTANCE", tempfile.mkdtemp(prefix="turnout-instance-"))


def base_config(database_url: str, redis_url: str) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "RATELIMIT_ENABLED": False,
        "PASSWORD_HASH_METHOD": FAST_HASH,
        "MAIL_SUPPRESS_SEND": False,
        # Rejections wait in the Redis journal until a test reads the activity log
        # (settle_activity); tests of the drain thread itself switch it on.
        "ACTIVITY_DRAIN_THREAD": False,
    }


def clean_database() -> None:
    """Empty every table of the app in context (ids start at 1 again on PostgreSQL)."""
    from webapp.extensions import db

    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names


def fresh_app(database_url: str, redis_url: str, overrides: dict | None = None):
    """An app on a clean database and an empty Redis database; no app context left pushed."""
    from webapp import create_app
    from webapp.extensions import redis_store
    from webapp.reports.journal import Journal

    app = create_app({**base_config(database_url, redis_url), **(overrides or {})})
    with app.app_context():
        clean_database()
        redis_store.client.flushdb()
    Journal.reset()  # rejections a previous test never read belong to its (gone) events
    return app


def dispose(app) -> None:
    """Close the app's pooled SQL connections."""
    from webapp.extensions import db

    with app.app_context():
        db.engine.dispose()


@contextmanager
def other_app(base, database_url: str, redis_url: str, **overrides) -> Iterator:
    """A second app on the same databases with some settings changed.

    The Redis client is one per process (extensions.redis_store), so building an
    app re-points it; afterwards it is pointed back at `base`'s Redis.
    """
    from webapp import create_app
    from webapp.extensions import redis_store

    new = create_app({**base_config(database_url, redis_url), **overrides})
    try:
        yield new
    finally:
        dispose(new)
        redis_store.init_app(base)
