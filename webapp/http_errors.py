"""The web layer's one answer to every error: a status, and a page, a notice or a JSON body.

Domain errors (webapp/errors.py) carry a code and a message; their HTTP status
is decided here alone, by the table below (the nearest class wins).
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify, make_response, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from webapp import errors
from webapp.database import unavailable
from webapp.extensions import db
from webapp.htmx import render_error
from webapp.validation import InvalidInput

log = logging.getLogger("turnout.errors")

STATUS: dict[type[errors.ServiceError], int] = {
    errors.ServiceError: 400,
    errors.Invalid: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.IdempotencyKeyReused: 422,
    errors.Failed: 500,
    errors.Unavailable: 503,
}

_HTTP_CODES = {
    400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "too_large",
    415: "unsupported_media_type", 422: "unprocessable", 429: "too_many_requests",
}
TOO_MANY = "Too many attempts. Please wait {wait} and try again."


def too_many(exc: HTTPException) -> str:
    """The 429 message, with the wait its Retry-After names (a minute when it names none)."""
    seconds = dict(exc.get_headers()).get("Retry-After", "60")
    seconds = int(seconds) if str(seconds).isdigit() else 60
    if seconds <= 60:
        wait = "a minute"
    elif seconds < 3600:
        wait = f"{-(-seconds // 60)} minutes"
    else:
        wait = "an hour"
    return TOO_MANY.format(wait=wait)
CSRF_FAILED = "Your form expired or was sent from elsewhere. Reload the page and try again."
# Not "nothing was saved": an unexpected error may come after a commit (SPEC: a 500 says
# so only when it is known).
INTERNAL = "Something went wrong on our side. Please try again in a moment."


def status_of(exc: errors.ServiceError) -> int:
    """The HTTP status of a domain error: that of its nearest class in STATUS."""
    return next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)


def wants_json() -> bool:
    return request.path == "/api" or request.path.startswith("/api/") or (
        request.accept_mimetypes.best == "application/json"
    )


def error_body(code: str, message: str, status: int, **extra) -> Response:
    """{"error": {code, message, request_id, ...}} with the status."""
    body = {"code": code, "message": message, "request_id": g.get("request_id"), **extra}
    response = jsonify({"error": body})
    response.status_code = status
    return response


def json_error(exc: errors.ServiceError) -> Response:
    extra = {"fields": exc.fields} if isinstance(exc, InvalidInput) else {}
    response = error_body(exc.code, exc.message, status_of(exc), **extra)
    if isinstance(exc, errors.Unauthorized):
        challenge = 'Bearer realm="turnout"'
        if exc.code != "unauthorized":
            challenge += ', error="invalid_token"'
        response.headers["WWW-Authenticate"] = challenge
    return with_retry_after(response, exc)


def with_retry_after(response: Response, exc: errors.ServiceError) -> Response:
    """Retry-After on a 503 whose error names a sensible moment to try again."""
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _answer(code: str, message: str, status: int) -> Response:
    if wants_json():
        return error_body(code, message, status)
    return render_error(status, message)


def register_handlers(app: Flask) -> None:
    """Map every error to a page, an htmx notice or a JSON body with a request id; never
    a trace."""

    @app.errorhandler(errors.ServiceError)
    def _service_error(exc: errors.ServiceError):
        if wants_json():
            return json_error(exc)
        return with_retry_after(make_response(render_error(status_of(exc), exc.message)), exc)

    @app.errorhandler(CSRFError)
    def _csrf_error(_exc: CSRFError):
        return _answer("csrf_failed", CSRF_FAILED, 400)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        message = too_many(exc) if status == 429 else (exc.description or exc.name)
        response = make_response(_answer(_HTTP_CODES.get(status, "http_error"), message, status))
        # Keep headers such as Retry-After and Allow that the exception carries.
        for key, value in exc.get_headers():
            if key.lower() != "content-type":
                response.headers[key] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if unavailable(exc):  # the database did not answer in time: busy, not broken
            log.warning("database unavailable", extra={
                "request_id": g.get("request_id"), "error": str(exc).splitlines()[0]})
            return _service_error(errors.Busy())
        log.exception("unhandled error", extra={"request_id": g.get("request_id")})
        return _answer("internal_error", INTERNAL, 500)

    @app.teardown_appcontext
    def _end_session(_exc):
        # Registered after Flask-SQLAlchemy's, so it runs first: a connection cut by a
        # database that went away must not turn an answer already made into a 500.
        try:
            db.session.remove()
        except Exception:
            log.warning("could not close the database session", exc_info=True)
