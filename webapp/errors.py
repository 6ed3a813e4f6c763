"""Why a use case could not be done: a code and a message safe to show, nothing about HTTP.

The web layer alone (webapp/http_errors.py) decides what each error is as a
status, a page and a JSON body.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A use case could not be done; the message is safe to show to the person."""

    code = "invalid"
    message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        if code:
            self.code = code


class Invalid(ServiceError):
    """A value the person sent is wrong (webapp.validation.InvalidInput names the fields)."""

    code, message = "invalid", "Some of the values are not valid."


class NotFound(ServiceError):
    code, message = "not_found", "That was not found."


class Unauthorized(ServiceError):
    """Nobody is signed in, or the credentials are wrong, expired or revoked."""

    code = "unauthorized"
    message = "Sign in first: send Authorization: Bearer <token>."


class Forbidden(ServiceError):
    """Signed in, but not someone who may: an attendee creating an event, a stranger
    editing someone else's."""

    code, message = "forbidden", "You are not allowed to do that."


class EmailNotVerified(Forbidden):
    """REQUIRE_EMAIL_VERIFICATION is on and the person has not followed the link of the
    verification email yet."""

    code = "email_not_verified"
    message = ("Please confirm your email address first: open the link we emailed you. "
               "No email? Ask for a new link.")


class Conflict(ServiceError):
    """The state of things refuses it now: the same request may work another time."""

    code, message = "conflict", "That conflicts with the current state."


class EventFull(Conflict):
    code, message = "event_full", "This event is full."


class AlreadyRegistered(Conflict):
    """The person holds a seat or a waitlist place here, or is taking one right now."""

    code, message = "already_registered", "You are already registered for this event."


class RegistrationClosed(Conflict):
    code, message = "registration_closed", "Registration has closed: this event has started."


class NotRegistered(NotFound):
    """There is no live place of this person to cancel."""

    code, message = "not_registered", "You are not registered for this event."


class Unavailable(ServiceError):
    """Something we depend on failed; trying again may work. The default message says
    nothing was saved: raise it with another message where that is not known."""

    code = "unavailable"
    message = "We could not complete that just now. Nothing was saved; please try again."
    retry_after: int | None = None  # seconds, when a retry has a sensible moment


class Busy(Unavailable):
    """The database could not answer in time: a held lock, a dead or overloaded server."""

    code = "busy"
    message = "We are very busy right now. Please try again in a few seconds."
    retry_after = 2


class OutcomeUnknown(Busy):
    """The connection broke while a change was committing, and nobody could tell since
    whether it was saved. Never says "nothing was saved"."""

    message = ("We could not tell whether that went through. Look at My registrations "
               "in a moment; trying again is safe, it never registers you twice.")


class IdempotencyKeyReused(ServiceError):
    """An Idempotency-Key sent again with a different request."""

    code = "idempotency_key_reused"
    message = ("This Idempotency-Key was already used for a different request. "
               "Use a new key for a new request.")


class Failed(ServiceError):
    """Something unexpected failed and was rolled back: our fault, not the person's."""

    code = "failed"
    message = "Something went wrong on our side. Nothing was saved; please try again."


class RegistrationFailed(Failed):
    code = "registration_failed"
    message = ("Something went wrong and your registration was not saved. "
               "No seat was taken; please try again.")
