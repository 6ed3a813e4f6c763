"""Sign-in throttling behind both sign-in doors (the /login page and POST /api/auth/login).

OWASP's answer to slow brute force without letting an attacker lock the owner out,
on counters in Redis (lua/login_take.lua, lua/login_refund.lua):

- per client address, every attempt counts (RATELIMIT_LOGIN_IP);
- per account and client address, failures count (RATELIMIT_LOGIN_ACCOUNT): failures
  from an attacker's address do not stop the owner signing in from theirs;
- per account over every address, failures count (RATELIMIT_LOGIN_ACCOUNT_TOTAL):
  guessing from many addresses stays bounded;
- a browser that signed in to the account before holds a signed device cookie; its
  attempts for that account skip both account counters above and have a counter of
  their own (RATELIMIT_LOGIN_ACCOUNT), so the owner's known browsers get in while the
  account is under attack.

An account is its normalized address (services.normalize_email), so every spelling of
one address shares its counters; an address that does not parse is its own account.
An attempt is counted before the password is checked, on all its counters or none in
one script, so parallel guesses cannot slip past, and is given back when it succeeds:
only failures stay counted. Every success, failure and refusal goes to the audit trail.

The other account doors (end of this module) use Flask-Limiter's shared limits, so
a page and its API endpoint count against one limit: sign-up and "forgot password"
per client address, password checks of a signed-in person (change, delete) per
account, and emails about an account per address and kind, silently (past the
limit none are sent, and the person asking is not told: no enumeration).
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources

import redis
from flask import Response, current_app, request
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import parse, parse_many
from sqlalchemy import select
from werkzeug.exceptions import TooManyRequests

from webapp.auth import audit, services
from webapp.auth.models import SecurityKind, User
from webapp.errors import Invalid
from webapp.extensions import db, limiter, redis_store

log = logging.getLogger("turnout.auth")

DEVICE_COOKIE = "turnout_device"
DEVICE_SALT = "turnout.login-device.v1"
_MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class Counter:
    """One attempt counter: what the audit trail calls it, its Redis key, its setting."""

    name: str
    key: str
    setting: str
    failures_only: bool  # given back when the attempt succeeds


@dataclass(frozen=True)
class Attempt:
    """Who a sign-in attempt is for, and from where."""

    account: str  # the normalized address, or "raw:" and what was typed (lower-cased, escaped)
    address: str | None  # the normalized address when it parses
    user_id: int | None  # the account's owner, when the address has one
    device: str | None  # the id of a valid device cookie naming that owner


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: the person (None: wrong email or password) and the
    device id their browser keeps in its device cookie."""

    user: User | None
    device: str | None = None


# --- the one guarded credential check ------------------------------------------------

def sign_in(email: str, password: str, *, door: str) -> SignIn:
    """Check credentials under the sign-in limits and record the outcome.

    `door` ("page" or "api") goes into the audit trail. Never records the password.

    :raise TooManyRequests: a limit is reached (429 with Retry-After); recorded as
      SIGN_IN_THROTTLED, and the password is not checked.
    """
    attempt = attempt_for(email, request.cookies.get(DEVICE_COOKIE))
    origin = audit.Origin.of_request()
    taken = take(attempt, client=request.remote_addr or "", door=door)
    user = services.authenticate(email, password)
    if user is None:
        audit.record(SecurityKind.SIGN_IN_FAILED, user_id=attempt.user_id,
                     email=attempt.address or attempt.account.removeprefix("raw:"),
                     origin=origin, detail=door)
        return SignIn(None)
    refund(taken)
    audit.record(SecurityKind.SIGN_IN, user_id=user.id, email=user.email, origin=origin,
                 detail=door)
    return SignIn(user, attempt.device or secrets.token_urlsafe(16))  # a known browser stays one


def attempt_for(email: object, device_cookie: str | None) -> Attempt:
    """The account an attempt names (every spelling of an address is one account) and
    the device id of a device cookie that names the same account's owner."""
    raw = email if isinstance(email, str) else ""
    try:
        address = services.normalize_email(raw)
    except Invalid:
        # Escaped: what was typed may hold NUL or lone surrogates, which neither a hash
        # nor PostgreSQL (the audit trail) accepts.
        typed = raw.strip().lower().encode("unicode_escape").decode("ascii")
        return Attempt("raw:" + typed, None, None, None)
    user_id = db.session.scalar(select(User.id).where(User.email == address))
    device = read_device_cookie(device_cookie)
    if device is None or user_id is None or device[0] != user_id:
        return Attempt(address, address, user_id, None)
    return Attempt(address, address, user_id, device[1])


# --- counters -------------------------------------------------------------------------

def counters(attempt: Attempt, client: str) -> list[Counter]:
    """The counters an attempt falls under (see the module's docstring)."""
    account = hashlib.sha256(attempt.account.encode()).hexdigest()[:32]  # no address in Redis
    found = [Counter("ip", f"turnout:login:ip:{client}", "RATELIMIT_LOGIN_IP", False)]
    if attempt.device is not None:
        found.append(Counter("device", f"turnout:login:{account}:device:{attempt.device}",
                             "RATELIMIT_LOGIN_ACCOUNT", True))
    else:
        found.append(Counter("account+ip", f"turnout:login:{account}:ip:{client}",
                             "RATELIMIT_LOGIN_ACCOUNT", True))
        found.append(Counter("account", f"turnout:login:{account}:all",
                             "RATELIMIT_LOGIN_ACCOUNT_TOTAL", True))
    return found


@cache
def _windows(value: str) -> tuple[tuple[int, int], ...]:
    """ "5 per minute; 50 per hour" -> ((5, 60), (50, 3600)): limit and window in seconds."""
    return tuple((item.amount, item.get_expiry()) for item in parse_many(value))


@cache
def _source(name: str) -> str:
    return resources.files("webapp.auth").joinpath("lua", f"{name}.lua").read_text()


class _Scripts:
    def __init__(self, client: redis.Redis) -> None:
        self.take = client.register_script(_source("login_take"))
        self.refund = client.register_script(_source("login_refund"))


def _scripts() -> _Scripts:
    scripts = current_app.extensions.get("turnout_login_limits")
    if scripts is None:
        scripts = current_app.extensions["turnout_login_limits"] = _Scripts(redis_store.client)
    return scripts


def take(attempt: Attempt, *, client: str, door: str) -> list[str]:
    """Count the attempt on all its counters; the keys to give back if it succeeds.

    :raise TooManyRequests: a counter is at its limit (nothing is counted then).
    """
    config = current_app.config
    if not config["RATELIMIT_ENABLED"]:
        return []
    keys, args, names, refundable = [], [], [], []
    for counter in counters(attempt, client):
        for limit, window in _windows(config[counter.setting]):
            keys.append(f"{counter.key}:{window}")
            args += [limit, window * 1000]
            names.append(counter.name)
            if counter.failures_only:
                refundable.append(keys[-1])
    try:
        breached, wait_ms = _scripts().take(keys=keys, args=args)
    except redis.RedisError as exc:
        if not config.get("RATELIMIT_SWALLOW_ERRORS", True):
            raise
        log.warning("sign-in limits unavailable, attempt let through",
                    extra={"error": str(exc)})
        return []
    if breached:
        retry_after = max(1, math.ceil(int(wait_ms) / 1000))
        audit.record(SecurityKind.SIGN_IN_THROTTLED, user_id=attempt.user_id,
                     email=attempt.address or attempt.account.removeprefix("raw:"),
                     origin=audit.Origin.of_request(),
                     detail=f"{door}: {names[int(breached) - 1]} limit")
        raise TooManyRequests(retry_after=retry_after)
    return refundable


def refund(keys: list[str]) -> None:
    """A success is not a failure: give back what take() counted on the account."""
    if not keys:
        return
    try:
        _scripts().refund(keys=keys)
    except redis.RedisError as exc:
        log.warning("sign-in counters not given back", extra={"error": str(exc)})


# --- the device cookie ----------------------------------------------------------------

def _device_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=DEVICE_SALT)


def read_device_cookie(value: str | None) -> tuple[int, str] | None:
    """(user id, device id) of a device cookie we signed and that has not expired."""
    if not value:
        return None
    try:
        payload = _device_serializer().loads(
            value, max_age=current_app.config["LOGIN_DEVICE_COOKIE_SECONDS"])
    except BadSignature:  # SignatureExpired included
        return None
    if not isinstance(payload, dict):
        return None
    user_id, device = payload.get("u"), payload.get("d")
    if not (isinstance(user_id, int) and 0 < user_id <= _MAX_ID and isinstance(device, str)
            and 0 < len(device) <= 64):
        return None
    return user_id, device


def set_device_cookie(response: Response, signed: SignIn) -> Response:
    """Give this browser (again) the device cookie of the person who just signed in."""
    if signed.user is None or signed.device is None:
        return response
    config = current_app.config
    response.set_cookie(
        DEVICE_COOKIE, _device_serializer().dumps({"u": signed.user.id, "d": signed.device}),
        max_age=config["LOGIN_DEVICE_COOKIE_SECONDS"], path="/", httponly=True,
        secure=config["SESSION_COOKIE_SECURE"], samesite="Lax")
    return response


# --- the other account doors ------------------------------------------------------------

SIGNUP_SCOPE, FORGOT_SCOPE = "signup", "password-forgot"
PASSWORD_CHECK_SCOPE = "password-check"  # noqa: S105 - a counter's name


def signup_limit(**options) -> Callable:
    """RATELIMIT_SIGNUP per client address, shared by the sign-up page and the API."""
    return limiter.shared_limit(lambda: current_app.config["RATELIMIT_SIGNUP"], SIGNUP_SCOPE,
                                **options)


def forgot_limit(**options) -> Callable:
    """RATELIMIT_PASSWORD_FORGOT per client address, shared by the page and the API."""
    return limiter.shared_limit(lambda: current_app.config["RATELIMIT_PASSWORD_FORGOT"],
                                FORGOT_SCOPE, **options)


def password_check_limit(**options) -> Callable:
    """RATELIMIT_LOGIN_ACCOUNT per signed-in person on a view that checks their password
    (change, delete): a stolen session must not become a way to guess it. Anonymous
    requests are not counted: they are refused (401 or a redirect) without a check."""
    return limiter.shared_limit(lambda: current_app.config["RATELIMIT_LOGIN_ACCOUNT"],
                                PASSWORD_CHECK_SCOPE,
                                key_func=lambda: f"password-check:{current_user.id}",
                                exempt_when=lambda: not current_user.is_authenticated,
                                **options)


def allow_account_mail(kind: str, address: str) -> bool:
    """Whether one more email of this kind may go to this address now; counts it if so.

    Each kind has its own budget: three sign-ups tried with someone's address must
    not stop their own password reset. Redis down: allowed (as every limit here).
    """
    config = current_app.config
    if not config.get("RATELIMIT_ENABLED", True):
        return True
    try:
        return limiter.limiter.hit(parse(config["RATELIMIT_ACCOUNT_MAIL"]),
                                   "account-mail", str(kind), address)
    except Exception as exc:
        log.warning("account mail limit unavailable; allowed", extra={"error": str(exc)})
        return True
