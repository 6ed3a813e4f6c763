"""Who is calling the API, whether it needs a CSRF token, and how much body it may send.

The rules, checked before every /api view:

- `Authorization: Bearer <token>` decides who is calling. A bad, expired or
  revoked token is a 401 even if a session cookie is also sent.
- Without it, the session cookie does (the site's own pages and htmx).
- A state-changing request (POST, PATCH, DELETE) that carries a session or
  remember cookie needs the X-CSRFToken header, bearer token or not: a cookie is
  an ambient credential a browser attaches on its own.
- A request with neither (sign-up, sign-in from a script) has no ambient
  credential to abuse and needs no CSRF token. Sign-in answers with a token in
  the body and sets no cookie, and bodies must be application/json, which a
  cross-site HTML form cannot send.
"""

from __future__ import annotations

from typing import TypeVar

from flask import current_app, request
from flask_login import current_user
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import UnsupportedMediaType

from webapp.api import bp
from webapp.auth.models import User
from webapp.auth.tokens import InvalidToken, bearer_token, user_for_token
from webapp.errors import Unauthorized
from webapp.extensions import csrf
from webapp.validation import validation_error_to_invalid

M = TypeVar("M", bound=BaseModel)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


JSON_ONLY = "Send the body as JSON, with Content-Type: application/json."


def has_ambient_cookie() -> bool:
    config = current_app.config
    names = (config.get("SESSION_COOKIE_NAME", "session"),
             config.get("REMEMBER_COOKIE_NAME", "remember_token"))
    return any(name in request.cookies for name in names)


@bp.before_request
def _guard() -> None:
    # Flask 3.1: a per-request limit; reading a larger body raises 413.
    request.max_content_length = current_app.config["API_MAX_CONTENT_LENGTH"]
    token = bearer_token()
    if token is not None:
        if not token:
            raise InvalidToken("Use the header Authorization: Bearer <token>.")
        user = user_for_token(token)
        # Flask-Login loads the session's user before its request loader; a cookie of
        # someone else (or a stale one) beside the token is refused, never guessed at.
        if not current_user.is_authenticated or current_user.id != user.id:
            raise InvalidToken("Send a bearer token or a session cookie, not both for "
                               "different people.")
    if request.method in UNSAFE_METHODS and has_ambient_cookie():
        csrf.protect()


def signed_in() -> User:
    """The calling person, else 401."""
    if not current_user.is_authenticated:
        raise Unauthorized()
    return current_user._get_current_object()


def json_body(model: type[M]) -> M:
    """The request body validated as `model` (strict JSON types, unknown fields refused).

    :raise UnsupportedMediaType: not application/json.
    :raise InvalidInput: malformed JSON (code invalid_json) or invalid fields (code invalid).
    """
    if not request.is_json:
        raise UnsupportedMediaType(JSON_ONLY)
    raw = request.get_data(cache=False)  # 413 past API_MAX_CONTENT_LENGTH
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise validation_error_to_invalid(exc) from None


def query_args(model: type[M]) -> M:
    """The query string validated as `model` (first value of each name; others ignored)."""
    values = {name: request.args.get(name) for name in model.model_fields if name in request.args}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise validation_error_to_invalid(exc) from None
