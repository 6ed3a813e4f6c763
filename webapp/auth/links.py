"""The signed links of account emails: reset a password (1 hour, once), verify an address.

Tokens are made when the email is composed, by the worker, so no link is ever
stored. A reset token carries the session_version the person had when it was
made; the reset bumps that version (auth.services.set_password), which makes
the token, and every other one made before, useless. A verification token is
bound to the person and the address it was sent to.

They live here, beside the API tokens, and not in webapp/recovery, because the
mail composer (below recovery) makes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from webapp.errors import Invalid

RESET_SALT = "turnout.password-reset.v1"
VERIFY_SALT = "turnout.verify-email.v1"
RESET_MAX_AGE = 3600
VERIFY_MAX_AGE = 7 * 24 * 3600
_MAX_ID = 2**31 - 1


class InvalidLink(Invalid):
    """A reset or verification token that is forged, mangled, expired or already used."""

    code = "invalid_token"
    message = ("This link is not valid any more: it has expired or was already used. "
               "Ask for a new one.")


@dataclass(frozen=True)
class ResetClaim:
    user_id: int
    session_version: int


@dataclass(frozen=True)
class VerifyClaim:
    user_id: int
    email: str


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def reset_max_age() -> int:
    return RESET_MAX_AGE  # SPEC: a reset link expires after 1 hour


def verify_max_age() -> int:
    return VERIFY_MAX_AGE


def reset_token(user_id: int, session_version: int) -> str:
    return _serializer(RESET_SALT).dumps({"u": user_id, "v": session_version})


def verify_token(user_id: int, email: str) -> str:
    return _serializer(VERIFY_SALT).dumps({"u": user_id, "e": email})


def _payload(token: str, salt: str, max_age: int) -> dict:
    """The signed payload, if the signature holds and it is younger than max_age."""
    if not isinstance(token, str) or not token or len(token) > 1000:
        raise InvalidLink()
    try:
        payload = _serializer(salt).loads(token, max_age=max_age)
    except BadSignature as exc:  # SignatureExpired is a BadSignature too
        raise InvalidLink() from exc
    user_id = payload.get("u") if isinstance(payload, dict) else None
    if not isinstance(user_id, int) or isinstance(user_id, bool) or not 0 < user_id <= _MAX_ID:
        raise InvalidLink()
    return payload


def read_reset_token(token: str) -> ResetClaim:
    """Who the reset token is for, and at which session_version it was made.

    :raise InvalidLink: forged, mangled or older than PASSWORD_RESET_MAX_AGE. Whether it
      was used already is for the caller to find out (the version moved on).
    """
    payload = _payload(token, RESET_SALT, reset_max_age())
    version = payload.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidLink()
    return ResetClaim(payload["u"], version)


def read_verify_token(token: str) -> VerifyClaim:
    """Who the verification token is for, and the address it was sent to.

    :raise InvalidLink: forged, mangled or older than EMAIL_VERIFICATION_MAX_AGE.
    """
    payload = _payload(token, VERIFY_SALT, verify_max_age())
    email = payload.get("e")
    if not isinstance(email, str) or not email:
        raise InvalidLink()
    return VerifyClaim(payload["u"], email)
