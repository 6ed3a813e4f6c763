"""The extension objects, created unbound here and bound in create_app()."""

from __future__ import annotations

import redis
from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Deterministic constraint names, so Alembic revisions are stable on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
mail = Mail()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


class RedisClient:
    """One redis-py client per process, built lazily from REDIS_URL.

    A blocking pool makes a burst wait for a free connection instead of failing
    with "Too many connections" (redis-py's default pool raises at 100).
    """

    def __init__(self) -> None:
        self._url: str | None = None
        self._client: redis.Redis | None = None
        self._rq_client: redis.Redis | None = None

    def init_app(self, app: Flask) -> None:
        self._url = app.config["REDIS_URL"]
        self.reset()
        app.extensions["turnout_redis"] = self

    def reset(self) -> None:
        """Forget the clients (after a fork, or for a new app); they are rebuilt on use."""
        self._client = None
        self._rq_client = None

    @property
    def rq_client(self) -> redis.Redis:
        """A client for RQ, which stores pickled/bytes data and wants undecoded replies."""
        if self._rq_client is None:
            self._rq_client = self._connect(max_connections=16)
        return self._rq_client

    @property
    def client(self) -> redis.Redis:
        """The app's client (seat gate, limiter, cache): str replies, a larger pool."""
        if self._client is None:
            self._client = self._connect(max_connections=64, decode_responses=True)
        return self._client

    def _connect(self, **options) -> redis.Redis:
        """A client on its own blocking pool; `options` are what differs between the two."""
        if self._url is None:
            raise RuntimeError("RedisClient used before init_app()")
        pool = redis.BlockingConnectionPool.from_url(
            self._url, timeout=5, socket_connect_timeout=2, socket_timeout=5,
            health_check_interval=30, **options)
        return redis.Redis(connection_pool=pool)


redis_store = RedisClient()
