"""One exception hierarchy for the service layer, mapped once to HTML pages and JSON bodies."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

log = logging.getLogger("turnout.errors")


class ServiceError(Exception):
    """A use case could not be done; the message is safe to show to the person."""

    status = 400
    code = "invalid"
    message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        if code:
            self.code = code


class Invalid(ServiceError):
    status, code, message = 400, "invalid", "Some of the values are not valid."


class NotFound(ServiceError):
    status, code, message = 404, "not_found", "That was not found."


class Forbidden(ServiceError):
    status, code, message = 403, "forbidden", "You are not allowed to do that."


class Conflict(ServiceError):
    status, code, message = 409, "conflict", "That conflicts with the current state."


class EventFull(Conflict):
    code, message = "event_full", "This event is full."


class AlreadyRegistered(Conflict):
    code, message = "already_registered", "You are already registered for this event."


class NotRegistered(NotFound):
    code, message = "not_registered", "You are not registered for this event."


class Unavailable(ServiceError):
    status, code = 503, "unavailable"
    message = "We could not complete that just now. Nothing was saved; please try again."


def wants_json() -> bool:
    return request.path == "/api" or request.path.startswith("/api/") or (
        request.accept_mimetypes.best == "application/json"
    )


def error_body(code: str, message: str, status: int):
    body = {"error": {"code": code, "message": message, "request_id": g.get("request_id")}}
    return jsonify(body), status


def register_handlers(app: Flask) -> None:
    """Map every error to a page or a JSON body with a request id; never a trace."""
    from webapp.htmx import render_error

    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError):
        if wants_json():
            return error_body(exc.code, exc.message, exc.status)
        return render_error(exc.status, exc.message)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError):
        message = "Your form expired or was sent from elsewhere. Reload the page and try again."
        if wants_json():
            return error_body("csrf_failed", message, 400)
        return render_error(400, message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = {
            400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
            405: "method_not_allowed", 409: "conflict", 413: "too_large",
            415: "unsupported_media_type", 429: "too_many_requests",
        }.get(exc.code or 500, "http_error")
        message = exc.description or exc.name
        if exc.code == 429:
            message = "Too many attempts. Please wait a minute and try again."
        if wants_json():
            response = error_body(code, message, exc.code or 500)
        else:
            response = render_error(exc.code or 500, message)
        # Keep headers such as Retry-After and Allow that the exception carries.
        for key, value in exc.get_headers():
            if key.lower() != "content-type":
                response = _with_header(response, key, value)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error", extra={"request_id": g.get("request_id")})
        message = "Something went wrong on our side. Nothing was saved; please try again."
        if wants_json():
            return error_body("internal_error", message, 500)
        return render_error(500, message)


def _with_header(response, key: str, value: str):
    from flask import make_response

    response = make_response(response)
    response.headers[key] = value
    return response
