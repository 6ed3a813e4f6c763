"""API bearer tokens: signed, expiring, and revoked with the person's sessions.

A token is itsdangerous-signed {"u": user id, "v": session_version} with a
timestamp. It is checked against the user's current session_version on every
request, so sign_out_everywhere() (sign-out, password change) revokes every
token handed out before it, exactly as it does session cookies.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from webapp.auth import directory
from webapp.auth.models import User
from webapp.errors import Unauthorized

SALT = "turnout.api-token.v1"
_MAX_ID = 2**31 - 1


class InvalidToken(Unauthorized):
    code, message = "invalid_token", "The bearer token is not valid. Sign in again for a new one."


class TokenExpired(Unauthorized):
    code, message = "token_expired", "The bearer token has expired. Sign in again for a new one."


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int  # seconds


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def max_age() -> int:
    return int(current_app.config.get("API_TOKEN_MAX_AGE", 12 * 3600))


def issue_token(user: User) -> IssuedToken:
    """A token for this person, valid for API_TOKEN_MAX_AGE seconds or until revoked."""
    token = _serializer().dumps({"u": user.id, "v": user.session_version})
    return IssuedToken(token, max_age())


def user_for_token(token: str) -> User:
    """The person the token belongs to.

    :raise TokenExpired: older than API_TOKEN_MAX_AGE.
    :raise InvalidToken: forged, mangled, or revoked (the person signed out or changed password).
    """
    try:
        payload = _serializer().loads(token, max_age=max_age())
    except SignatureExpired as exc:
        raise TokenExpired() from exc
    except BadSignature as exc:
        raise InvalidToken() from exc
    if not isinstance(payload, dict):
        raise InvalidToken()
    user_id, version = payload.get("u"), payload.get("v")
    if not (isinstance(user_id, int) and isinstance(version, int)
            and 0 < user_id <= _MAX_ID):  # a larger id would overflow PostgreSQL's integer
        raise InvalidToken()
    user = directory.user_at_version(user_id, version)
    if user is None:
        raise InvalidToken("This bearer token was revoked (signed out or password changed). "
                           "Sign in again for a new one.")
    return user


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer <token>` header, "" for another scheme, else None."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return ""
    return token.strip()


def load_token_user(_request) -> User | None:
    """Flask-Login's request loader: the bearer token's owner, for /api/ requests only.

    Pages stay cookie-only. An invalid token loads nobody here; the API refuses
    it with a 401 that says why (webapp.api.guard).
    """
    if not request.path.startswith("/api/"):
        return None
    token = bearer_token()
    if not token:
        return None
    try:
        return user_for_token(token)
    except Unauthorized:
        return None
