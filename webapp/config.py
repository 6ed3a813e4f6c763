"""Settings from the environment, with safe defaults for a local run."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

INSTANCE_DIR = Path(os.environ.get("TURNOUT_INSTANCE", Path.cwd() / "instance"))


def env_bool(name: str, default: bool) -> bool:
    """Read a yes/no setting: 1/true/yes/on and 0/false/no/off."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def env_int_list(name: str, default: list[int]) -> list[int]:
    """A comma-separated list of whole numbers, e.g. MAIL_RETRY_INTERVALS=30,60,300."""
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    return [int(part) for part in raw.split(",") if part.strip()]


def normalize_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever spelling the URL uses."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


SECRET_KEY_MIN_BYTES = 32
# Values people copy from examples and tutorials without changing them.
_PLACEHOLDERS = ("change-me", "changeme", "change_me", "replace-me", "your-secret",
                 "secret-key-here")
GENERATE_KEY_HINT = "python3 -c 'import secrets; print(secrets.token_hex(32))'"


def secret_key_problem(key: str | None) -> str | None:
    """Why this SECRET_KEY must not sign production sessions and tokens, else None."""
    if not key:
        return "SECRET_KEY is not set"
    lowered = key.lower()
    if any(mark in lowered for mark in _PLACEHOLDERS):
        return "SECRET_KEY is the placeholder of an example file"
    if len(key.encode()) < SECRET_KEY_MIN_BYTES:
        return f"SECRET_KEY is shorter than {SECRET_KEY_MIN_BYTES} bytes"
    return None


def _environment() -> str:
    """production or development. Setting SECRET_KEY says this is a deployment (then it
    must be strong); without it the key is generated and kept, as `make run` needs.
    TURNOUT_ENV=production (deploy/turnout.env.example) makes a missing key fatal too."""
    explicit = (os.environ.get("TURNOUT_ENV") or "").strip().lower()
    if explicit in ("production", "development"):
        return explicit
    return "production" if os.environ.get("SECRET_KEY") else "development"


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one kept in the instance folder.

    A generated key is stored so that sessions survive a restart of `make run`;
    production sets SECRET_KEY explicitly.
    """
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    path = INSTANCE_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        path.write_text(key)
        path.chmod(0o600)
        return key


def from_env() -> dict:
    """The whole configuration, read once when the app is built."""
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{INSTANCE_DIR / 'turnout.db'}"
    return {
        "TURNOUT_ENV": _environment(),
        # In production, create_app refuses a missing, placeholder or short key.
        "SECRET_KEY": (os.environ.get("SECRET_KEY") if _environment() == "production"
                       else _secret_key()),
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(database_url),
        # Per process: one connection per gunicorn thread (8) plus headroom. With
        # 2 workers per core, 4 workers use at most 4 x 16 connections (PostgreSQL: 100).
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "pool_pre_ping": env_bool("DB_POOL_PRE_PING", True),
            "pool_size": env_int("DB_POOL_SIZE", 8),
            "max_overflow": env_int("DB_POOL_OVERFLOW", 8),
            # Waiting for a free connection is bounded like every other wait (503 busy).
            "pool_timeout": env_int("DB_POOL_TIMEOUT_SECONDS", 5),
        },
        # Bounded waits on PostgreSQL (webapp/database.py configure): pretix also gives up
        # on a lock after 3 s. A seat hold (SEAT_HOLD_TTL_MS) outlives them all.
        "DB_LOCK_TIMEOUT_MS": env_int("DB_LOCK_TIMEOUT_MS", 2_000),
        "DB_STATEMENT_TIMEOUT_MS": env_int("DB_STATEMENT_TIMEOUT_MS", 10_000),
        "DB_CONNECT_TIMEOUT_SECONDS": env_int("DB_CONNECT_TIMEOUT_SECONDS", 3),
        # After a lock wait on an event timed out, its attempts are answered 503 busy at
        # once for this long (webapp/registrations/stalls.py), one probe at a time after.
        "STALL_SECONDS": env_int("STALL_SECONDS", 2),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        # Sessions: HttpOnly and SameSite by default; Secure where TLS ends in front of us.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env_bool("SESSION_COOKIE_SECURE", False),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": env_bool("SESSION_COOKIE_SECURE", False),
        # Flask's own bound on a session cookie's signature: at least the longest idle time
        # (SESSION_REMEMBER_IDLE_SECONDS); webapp/auth/sessions.py enforces the real limits.
        "PERMANENT_SESSION_LIFETIME": env_int("SESSION_LIFETIME_SECONDS", 14 * 24 * 3600),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "PASSWORD_HASH_METHOD": os.environ.get("PASSWORD_HASH_METHOD", "scrypt"),
        # zxcvbn's score a new password needs (0-4; webapp/auth/passwords.py).
        "PASSWORD_MIN_SCORE": env_int("PASSWORD_MIN_SCORE", 3),
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", "127.0.0.1"),
        "MAIL_PORT": env_int("MAIL_PORT", 8025),
        "MAIL_USE_TLS": env_bool("MAIL_USE_TLS", False),
        "MAIL_USE_SSL": env_bool("MAIL_USE_SSL", False),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME"),
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD"),
        "MAIL_DEFAULT_SENDER": os.environ.get("MAIL_DEFAULT_SENDER",
                                              "Turnout <noreply@turnout.local>"),
        # Outgoing email (webapp/mail): links in emails point at PUBLIC_URL.
        "PUBLIC_URL": os.environ.get("PUBLIC_URL", "http://127.0.0.1:5000"),
        # Accounts (webapp/recovery): a new account must follow the link of a verification
        # email before registering; sign-up and "forgot password" are throttled per client
        # address (429), and account emails per address and kind (silently: no more are sent).
        "REQUIRE_EMAIL_VERIFICATION": env_bool("REQUIRE_EMAIL_VERIFICATION", False),
        "RATELIMIT_SIGNUP": os.environ.get("RATELIMIT_SIGNUP", "10 per hour"),
        "RATELIMIT_PASSWORD_FORGOT": os.environ.get("RATELIMIT_PASSWORD_FORGOT", "10 per hour"),
        "RATELIMIT_ACCOUNT_MAIL": os.environ.get("RATELIMIT_ACCOUNT_MAIL", "3 per hour"),
        "MAIL_TIMEOUT_SECONDS": env_int("MAIL_TIMEOUT_SECONDS", 10),
        # Flask-Mail would not send while TESTING; an outbox row marked sent must have been.
        "MAIL_SUPPRESS_SEND": False,
        "MAIL_JOB_TIMEOUT_SECONDS": env_int("MAIL_JOB_TIMEOUT_SECONDS", 60),
        # A claim outlives the job's timeout, so a live sender is never doubled.
        "MAIL_SEND_LEASE_SECONDS": env_int("MAIL_SEND_LEASE_SECONDS", 120),
        # The longest interval bounds how late an email goes out after an SMTP outage ends
        # (webapp/mail/services.py, delivery_bound_seconds: 210 s with these defaults).
        "MAIL_RETRY_INTERVALS": env_int_list("MAIL_RETRY_INTERVALS", [30, 60, 120]),
        "MAIL_MAX_ATTEMPTS": env_int("MAIL_MAX_ATTEMPTS", 10),
        "OUTBOX_GRACE_SECONDS": env_int("OUTBOX_GRACE_SECONDS", 60),
        "OUTBOX_SWEEP_INTERVAL_SECONDS": env_int("OUTBOX_SWEEP_INTERVAL_SECONDS", 30),
        "WORKER_FORK": env_bool("WORKER_FORK", False),
        # The worker runs only on CPU time the web processes leave (workers/__main__.py).
        "WORKER_IDLE_PRIORITY": env_bool("WORKER_IDLE_PRIORITY", True),
        "RATELIMIT_ENABLED": env_bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_LOGIN_ACCOUNT": os.environ.get("RATELIMIT_LOGIN_ACCOUNT", "5 per minute"),
        "RATELIMIT_LOGIN_IP": os.environ.get("RATELIMIT_LOGIN_IP", "20 per minute"),
        # Sign-in (webapp/auth/limits.py): RATELIMIT_LOGIN_ACCOUNT counts failures per account
        # and client address (or per known browser), RATELIMIT_LOGIN_ACCOUNT_TOTAL failures per
        # account from everywhere (ASVS: at most 100 an hour); a browser that signed in keeps
        # a device cookie that spares it the account-wide ceiling.
        "RATELIMIT_LOGIN_ACCOUNT_TOTAL": os.environ.get("RATELIMIT_LOGIN_ACCOUNT_TOTAL",
                                                        "50 per hour"),
        "LOGIN_DEVICE_COOKIE_SECONDS": env_int("LOGIN_DEVICE_COOKIE_SECONDS", 180 * 24 * 3600),
        # Session lifetimes, enforced on the server (webapp/auth/sessions.py); "Keep me
        # signed in" raises the idle limit and makes the cookie outlive the browser.
        "SESSION_ABSOLUTE_SECONDS": env_int("SESSION_ABSOLUTE_SECONDS", 30 * 24 * 3600),
        "SESSION_IDLE_SECONDS": env_int("SESSION_IDLE_SECONDS", 12 * 3600),
        "SESSION_REMEMBER_IDLE_SECONDS": env_int("SESSION_REMEMBER_IDLE_SECONDS", 7 * 24 * 3600),
        # The cookie is written when the session changes (last-seen: once a minute at most).
        "SESSION_REFRESH_EACH_REQUEST": False,
        # Copies of signed-in people in Redis (webapp/auth/directory.py); 0 = read SQL each time.
        "USER_CACHE_SECONDS": env_int("USER_CACHE_SECONDS", 1800),
        # JSON API: bearer tokens live 12 h (sign-out revokes them sooner); bodies stay small.
        "API_TOKEN_MAX_AGE": env_int("API_TOKEN_MAX_AGE", 12 * 3600),
        "API_MAX_CONTENT_LENGTH": env_int("API_MAX_CONTENT_LENGTH", 64 * 1024),
        # Every other request body (the pages' forms): a sign-up or an event is a few KB;
        # past this Flask answers 413 before reading the body.
        "MAX_CONTENT_LENGTH": env_int("MAX_CONTENT_LENGTH", 128 * 1024),
        # The seat gate: hold TTL must outlive the slowest request (gunicorn timeout 30 s).
        "SEAT_GATE_ENABLED": env_bool("SEAT_GATE_ENABLED", True),
        "SEAT_HOLD_TTL_MS": env_int("SEAT_HOLD_TTL_MS", 60_000),
        # A hold older than this may be a dead attempt's: it no longer makes the gate say
        # "full" (SQL is asked), so a dead hold's false "full" lasts this long at most.
        "SEAT_HOLD_TRUST_MS": env_int("SEAT_HOLD_TRUST_MS", 3_000),
        # Rejected attempts reach the activity log through Redis (webapp/reports/journal.py).
        "ACTIVITY_JOURNAL": env_bool("ACTIVITY_JOURNAL", True),
        "ACTIVITY_DRAIN_THREAD": env_bool("ACTIVITY_DRAIN_THREAD", True),
        "ACTIVITY_FLUSH_MS": env_int("ACTIVITY_FLUSH_MS", 20),
        "ACTIVITY_ORPHAN_MS": env_int("ACTIVITY_ORPHAN_MS", 10_000),
        "ACTIVITY_DRAIN_INTERVAL_SECONDS": env_int("ACTIVITY_DRAIN_INTERVAL_SECONDS", 5),
        "RECONCILE_INTERVAL_SECONDS": env_int("RECONCILE_INTERVAL_SECONDS", 60),
        "SQLITE_BUSY_TIMEOUT_MS": env_int("SQLITE_BUSY_TIMEOUT_MS", 10_000),
        "PROXY_FIX_TRUSTED_HOPS": env_int("PROXY_FIX_TRUSTED_HOPS", 0),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        # Test-only switches; create_app refuses them outside TESTING.
        "TESTING": env_bool("TURNOUT_TESTING", False),
    }
