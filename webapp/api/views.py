"""The endpoints of SPEC.md's "JSON API" table: validate, call one service, answer in JSON."""

from __future__ import annotations

from functools import cache
from typing import Literal

from flask import g, jsonify, request
from pydantic import BaseModel, ConfigDict, Field

from webapp.api import bp
from webapp.api.guard import json_body, query_args, signed_in
from webapp.api.openapi import ID, build_document, operation
from webapp.api.schemas import (
    AttendeeList,
    AttendeeOut,
    CapacityOut,
    EventList,
    EventOut,
    RegistrationList,
    RegistrationOut,
    TokenOut,
    UserOut,
)
from webapp.auth import audit, limits
from webapp.auth import services as auth_services
from webapp.auth.limits import signup_limit
from webapp.auth.models import SecurityKind
from webapp.auth.schemas import LoginIn, SignupIn
from webapp.auth.tokens import issue_token
from webapp.errors import Unauthorized
from webapp.events import services as event_services
from webapp.events.schemas import EventCreate, EventUpdate
from webapp.organizer import services as organizer
from webapp.recovery import services as recovery
from webapp.registrations import queries
from webapp.registrations import services as registrations
from webapp.registrations.idempotency import Retry
from webapp.registrations.models import Status
from webapp.reports.models import Action

FORBIDDEN_NOT_OWNER = "`forbidden`: only this event's organizer may."


def _no_content():
    return "", 204


# --- accounts -----------------------------------------------------------------------

@operation(bp, "/auth/signup", "POST", summary="Create an attendee account", ok=201,
           ok_model=UserOut, body=SignupIn, auth=False,
           errors={409: "`email_taken`: an account with this email exists.",
                   429: "`too_many_requests`: too many sign-ups from this client address."})
@signup_limit()
def signup():
    """Creates an attendee account. It does not sign in: POST /api/auth/login next. With
    REQUIRE_EMAIL_VERIFICATION a link is emailed, and registering waits until it is opened."""
    data = json_body(SignupIn)
    done = recovery.sign_up(data.email, data.name, data.password, tell_owner=False,
                            origin=audit.Origin.of_request())
    return jsonify(UserOut.dump(done.user)), 201


@operation(bp, "/auth/login", "POST", summary="Sign in: get a bearer token", ok=200,
           ok_model=TokenOut, body=LoginIn, auth=False,
           errors={401: "`invalid_credentials`: wrong email or password.",
                   429: "`too_many_requests`: too many sign-in attempts; wait for "
                        "`Retry-After` seconds."})
def login():
    """Answers a bearer token for `Authorization: Bearer <token>`. Sets no cookie.

    The token expires after `expires_in` seconds, and at once when the person signs
    out everywhere or changes password. Failed sign-ins are limited per account and
    client address and per account overall, shared with the sign-in page.
    """
    data = json_body(LoginIn)
    user = limits.sign_in(data.email, data.password, door="api").user
    if user is None:
        raise Unauthorized("Wrong email or password.", code="invalid_credentials")
    issued = issue_token(user)
    return jsonify(TokenOut.dump({"token": issued.token, "expires_in": issued.expires_in,
                                  "user": UserOut.dump(user)}))


@operation(bp, "/auth/logout", "POST", summary="Sign out everywhere", ok=204)
def logout():
    """Revokes every token and session cookie of the caller (all devices)."""
    user_id = signed_in().id
    auth_services.sign_out_everywhere(user_id)
    audit.record(SecurityKind.SIGN_OUT, user_id=user_id, origin=audit.Origin.of_request(),
                 detail="api")
    return _no_content()


@operation(bp, "/users/me", "GET", summary="The signed-in account", ok=200, ok_model=UserOut)
def me():
    """The account the token (or session) belongs to."""
    return jsonify(UserOut.dump(signed_in()))


# --- events ---------------------------------------------------------------------------

@operation(bp, "/events", "GET", summary="Upcoming events, soonest first", ok=200,
           ok_model=EventList, auth=False)
def list_events():
    """Events that have not ended yet, soonest first, with live seat counts. Complete list."""
    return jsonify(EventList.dump(
        {"items": [EventOut.of(e) for e in event_services.upcoming_events()]}))


@operation(bp, f"/events/<{ID}:event_id>", "GET", summary="One event", ok=200,
           ok_model=EventOut, auth=False)
def get_event(event_id: int):
    """The event with its seat counts and organizer."""
    return jsonify(EventOut.of(event_services.get_event(event_id)))


@operation(bp, f"/events/<{ID}:event_id>/capacity", "GET", summary="Seat counts", ok=200,
           ok_model=CapacityOut, auth=False)
def capacity(event_id: int):
    """Capacity, confirmed seats, seats available and people waiting."""
    event = event_services.get_event(event_id)
    return jsonify(CapacityOut.dump({"capacity": event.capacity,
                                     "confirmed": event.confirmed_count,
                                     "available": event.seats_left,
                                     "waitlisted": event.waitlisted_count}))


@operation(bp, "/events", "POST", summary="Create an event (organizers)", ok=201,
           ok_model=EventOut, body=EventCreate,
           errors={403: "`forbidden`: only organizers create events."})
def create_event():
    """Creates an event owned by the caller, who must be an organizer."""
    user = signed_in()
    organizer.require_organizer(user)  # before reading the body: 403, not 400
    return jsonify(EventOut.of(organizer.create_event(user, json_body(EventCreate)))), 201


@operation(bp, f"/events/<{ID}:event_id>", "PATCH", summary="Edit an event (its organizer)",
           ok=200, ok_model=EventOut, body=EventUpdate,
           errors={400: "`capacity_below_confirmed`: capacity under the confirmed count.",
                   403: FORBIDDEN_NOT_OWNER})
def update_event(event_id: int):
    """Changes only the fields sent. Raising capacity promotes from the waitlist in order;
    lowering it below the number of confirmed people is refused."""
    user = signed_in()
    organizer.owned_event(event_id, user)
    data = json_body(EventUpdate)
    return jsonify(EventOut.of(organizer.update_event(event_id, user, data,
                                                  request_id=g.request_id)))


# --- registrations ---------------------------------------------------------------------

@operation(bp, f"/events/<{ID}:event_id>/registrations", "POST",
           summary="Register the caller for the event", ok=201, ok_model=RegistrationOut,
           headers={"Idempotency-Key": "Optional, up to 255 characters. A repeat with the "
                    "same key gets the first answer again and changes nothing; the same key "
                    "on a different request is refused (422 `idempotency_key_reused`)."},
           errors={409: "`event_full` (no seat and no waitlist place), `already_registered` "
                        "(confirmed or waitlisted already), `registration_closed` "
                        "(the event has started).",
                   403: "`email_not_verified`: REQUIRE_EMAIL_VERIFICATION is on and the "
                        "caller has not opened the emailed link yet.",
                   422: "`idempotency_key_reused`: the key was used for another request.",
                   503: "`busy`: the database could not answer in time; see Retry-After. "
                        "The message says whether anything was saved."})
def register(event_id: int):
    """A confirmed seat (`status: confirmed`), else a waitlist place (`status: waitlisted`
    with `position`), else 409 `event_full`. No body."""
    user = signed_in()
    recovery.require_verified_email(user)
    retry = Retry.of(request.headers.get("Idempotency-Key"), request.method, request.path,
                     request.get_data())
    outcome = registrations.register(
        event_id, user.id, request_id=g.request_id, retry=retry,
        # The event, read once the gate let the caller through and before the write:
        # if this fails, nothing was saved; after the commit nothing is read again.
        before_write=lambda: EventOut.of(event_services.get_event(event_id)))
    event = outcome.before  # a replay wrote nothing now: its event is read as it is
    if event is None:
        event = EventOut.of(event_services.get_event(event_id))
    return jsonify(RegistrationOut.answer(outcome, event)), 201


@operation(bp, f"/events/<{ID}:event_id>/registrations/me", "DELETE",
           summary="Cancel the caller's registration", ok=204,
           errors={404: "`not_registered`: the caller has no place at this event."})
def cancel_mine(event_id: int):
    """Frees the seat (the first on the waitlist gets it) or leaves the waitlist."""
    user = signed_in()
    registrations.cancel(event_id, user.id, request_id=g.request_id)
    return _no_content()


@operation(bp, f"/events/<{ID}:event_id>/registrations/<{ID}:user_id>", "DELETE",
           summary="Cancel someone's registration (the event's organizer)", ok=204,
           errors={403: FORBIDDEN_NOT_OWNER,
                   404: "`not_registered`: that person has no place at this event."})
def cancel_theirs(event_id: int, user_id: int):
    """Cancels a person's seat or waitlist place on their behalf; promotes from the waitlist."""
    organizer.owned_event(event_id, signed_in())
    registrations.cancel(event_id, user_id, request_id=g.request_id,
                         action=Action.ORGANIZER_CANCEL)
    return _no_content()


class MyRegistrationsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["confirmed", "waitlisted"] | None = Field(
        default=None, description="Only these; omit for both.")


class EventRegistrationsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["confirmed", "waitlisted", "cancelled"] | None = Field(
        default=None, description="Only these; omit for the live ones (confirmed, then the "
                                  "waitlist in order).")


@operation(bp, "/me/registrations", "GET", summary="The caller's registrations", ok=200,
           ok_model=RegistrationList, query=MyRegistrationsQuery)
def my_registrations():
    """Confirmed and waitlisted places, soonest event first, each with its event and
    (when waitlisted) position."""
    user = signed_in()
    wanted = query_args(MyRegistrationsQuery).status
    rows = queries.live_registrations(user.id, wanted and Status(wanted))
    return jsonify(RegistrationList.dump({"items": [RegistrationOut.of(r) for r in rows]}))


@operation(bp, f"/events/<{ID}:event_id>/registrations", "GET",
           summary="An event's registrations (its organizer)", ok=200, ok_model=AttendeeList,
           query=EventRegistrationsQuery, errors={403: FORBIDDEN_NOT_OWNER})
def event_registrations(event_id: int):
    """Confirmed people in the order they registered, the waitlist in queue order; each
    with the person (id, name, email)."""
    organizer.owned_event(event_id, signed_in())
    wanted = query_args(EventRegistrationsQuery).status
    # Each row's event is the one already loaded (the identity map answers, no query).
    rows = queries.event_registrations(event_id, wanted)
    return jsonify(AttendeeList.dump({"items": [AttendeeOut.of(r) for r in rows]}))


# --- the description of all of the above --------------------------------------------

@cache
def _document() -> dict:
    return build_document()


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 document of this API."""
    return jsonify(_document())
