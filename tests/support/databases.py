"""Test databases: a private PostgreSQL database per run (named by pid), SQLite files, migrated."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Engine, make_url

from tests.support.processes import ROOT, port_open

LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_server_url() -> str | None:
    """TEST_DATABASE_URL, else the local server when it listens, else None."""
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        return explicit
    if port_open("127.0.0.1", 5432):
        return LOCAL_POSTGRES
    return None


def sqlite_url(path: os.PathLike | str) -> str:
    return f"sqlite:///{path}"


def _admin_engine(server_url: str) -> tuple[URL, Engine]:
    from webapp.config import normalize_database_url

    url = make_url(normalize_database_url(server_url))
    return url, create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")


def create_postgres_database(server_url: str, prefix: str = "turnout_test") -> str:
    """An empty database of this process's own, `<prefix>_<pid>`; its URL.

    Databases of the same prefix left behind by processes that died are dropped
    on the way.
    """
    url, admin = _admin_engine(server_url)
    name = f"{prefix}_{os.getpid()}"
    pattern = prefix.replace("_", "\\_") + "\\_%"
    with admin.connect() as conn:
        for (stale,) in conn.execute(
                text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": pattern}):
            pid = stale.rsplit("_", 1)[-1]
            if pid.isdigit() and not psutil.pid_exists(int(pid)):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{stale}" WITH (FORCE)'))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(database_url: str) -> None:
    url, admin = _admin_engine(database_url)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def postgres_database(server_url: str, prefix: str = "turnout_test", *,
                      keep: bool = False) -> Iterator[str]:
    """A fresh database on `server_url`, dropped afterwards unless `keep`."""
    url = create_postgres_database(server_url, prefix)
    try:
        yield url
    finally:
        if not keep:
            drop_postgres_database(url)


def upgrade_schema(database_url: str) -> None:
    """Build or migrate the schema with the Alembic migrations, as `flask db upgrade` does."""
    from flask_migrate import upgrade

    from tests.support.app import base_config
    from webapp import create_app
    from webapp.extensions import db

    # Nothing here talks to Redis; a closed port makes sure of it.
    app = create_app(base_config(database_url, "redis://127.0.0.1:1/0"))
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()
