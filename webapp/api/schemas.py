"""The API's answers as pydantic models: every response body is built (and checked) through one.

Request bodies are the feature packages' own schemas (events.schemas, auth.schemas);
openapi.py describes all of them from these same classes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from webapp.validation import UTCDatetime

Status = Literal["confirmed", "waitlisted", "cancelled"]


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")

    @classmethod
    def dump(cls, obj: Any, **extra: Any) -> dict[str, Any]:
        """Validate `obj` (a model instance or dict) as this shape and give JSON-ready data."""
        if extra:
            data = {name: getattr(obj, name) for name in cls.model_fields if hasattr(obj, name)}
            data.update(extra)
            obj = data
        return cls.model_validate(obj).model_dump(mode="json")


class UserOut(Out):
    """A person's account."""

    model_config = ConfigDict(title="User")

    id: int
    email: str
    name: str
    is_organizer: bool


class PersonOut(Out):
    """Who a registration or an event belongs to: id, name and email."""

    model_config = ConfigDict(title="Person")

    id: int
    name: str
    email: str


class TokenOut(Out):
    """A bearer token: send it as `Authorization: Bearer <token>`."""

    model_config = ConfigDict(title="Token")

    token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme's name, not a secret
    expires_in: int = Field(description="Seconds until the token expires.")
    user: UserOut


class EventOut(Out):
    """An event with its live seat counts."""

    model_config = ConfigDict(title="Event")

    id: int
    title: str
    description: str
    starts_at: UTCDatetime
    ends_at: UTCDatetime
    location: str
    capacity: int
    confirmed: int = Field(description="People holding a confirmed seat.")
    seats_left: int
    waitlist_enabled: bool
    waitlist_capacity: int | None = Field(description="null: no limit.")
    waitlisted: int = Field(description="People on the waitlist.")
    organizer: PersonOut

    @classmethod
    def of(cls, event) -> dict[str, Any]:
        return cls.dump(event, confirmed=event.confirmed_count, seats_left=event.seats_left,
                        waitlisted=event.waitlisted_count, organizer=event.organizer)


class EventList(Out):
    model_config = ConfigDict(title="EventList")

    items: list[EventOut]


class CapacityOut(Out):
    """Seat counts only: cheap to poll."""

    model_config = ConfigDict(title="Capacity")

    capacity: int
    confirmed: int
    available: int
    waitlisted: int


class RegistrationOut(Out):
    """A person's place at an event; `position` is set only while waitlisted (1 = next in line)."""

    model_config = ConfigDict(title="Registration")

    id: int
    event_id: int
    user_id: int
    status: Status
    position: Annotated[int, Field(ge=1)] | None
    registered_at: UTCDatetime
    event: EventOut

    @classmethod
    def of(cls, registration) -> dict[str, Any]:
        return cls.dump(registration, event=EventOut.of(registration.event))

    @classmethod
    def answer(cls, outcome, event: dict[str, Any]) -> dict[str, Any]:
        """A registration as its commit returned it (services.Outcome), with `event`
        (EventOut) as read just before: no read after the commit, which could fail and
        turn a saved registration into an error. The counts move by this place unless
        the outcome is an earlier answer given again (its place is counted already)."""
        if not outcome.replayed:
            event = dict(event)
            if outcome.status == "confirmed":
                event["confirmed"] += 1
                event["seats_left"] = max(0, event["seats_left"] - 1)
            else:
                event["waitlisted"] += 1
        return cls.dump({"id": outcome.registration_id, "event_id": outcome.event_id,
                         "user_id": outcome.user_id, "status": str(outcome.status),
                         "position": outcome.position,
                         "registered_at": outcome.registered_at, "event": event})


class AttendeeOut(RegistrationOut):
    """A registration as its event's organizer sees it: with the person."""

    model_config = ConfigDict(title="Attendee")

    user: PersonOut

    @classmethod
    def of(cls, registration) -> dict[str, Any]:
        return cls.dump(registration, event=EventOut.of(registration.event),
                        user=registration.user)


class RegistrationList(Out):
    model_config = ConfigDict(title="RegistrationList")

    items: list[RegistrationOut]


class AttendeeList(Out):
    model_config = ConfigDict(title="AttendeeList")

    items: list[AttendeeOut]


class FieldError(Out):
    field: str = Field(description='The field, e.g. "capacity"; "body" for the body as a whole.')
    message: str


class ErrorDetail(Out):
    model_config = ConfigDict(title="ErrorDetail")

    code: str = Field(description="snake_case, stable: e.g. event_full, already_registered.")
    message: str = Field(description="For people: says what to do.")
    request_id: str | None = Field(description="Quote it when reporting a problem.")
    fields: list[FieldError] | None = Field(
        default=None, description="For invalid input: one entry per field at fault.")


class ErrorOut(Out):
    """Every error: {"error": {"code", "message", "request_id"}}."""

    model_config = ConfigDict(title="Error")

    error: ErrorDetail
