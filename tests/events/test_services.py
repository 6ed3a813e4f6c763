"""events.services create/update and the schemas behind them, called directly (forms reuse them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from webapp.errors import Forbidden, Invalid, NotFound
from webapp.events.schemas import EventCreate, EventUpdate
from webapp.validation import InvalidInput, validation_error_to_invalid


def _create(**overrides) -> EventCreate:
    starts = datetime.now(UTC) + timedelta(days=5)
    values = {"title": "Meetup", "starts_at": starts, "ends_at": starts + timedelta(hours=1),
              "location": "Room 2", "capacity": 4}
    values.update(overrides)
    return EventCreate(**values)


def test_create_event_for_an_organizer(app_ctx, make_user):
    from webapp.events.services import create_event

    organizer = make_user(organizer=True)
    event = create_event(organizer.id, _create(waitlist_enabled=True))
    assert event.id and event.organizer_id == organizer.id
    assert (event.capacity, event.confirmed_count, event.waitlisted_count) == (4, 0, 0)
    assert event.organizer.email == organizer.email
    assert event.waitlist_enabled is True


def test_create_event_refuses_attendees_and_unknown_people(app_ctx, make_user):
    from webapp.events.services import create_event

    with pytest.raises(Forbidden):
        create_event(make_user().id, _create())
    with pytest.raises(Forbidden):
        create_event(999_999, _create())


def test_update_event_checks_owner_and_existence(app_ctx, make_user, make_event):
    from webapp.events.services import update_event

    owner = make_user(organizer=True)
    event = make_event(organizer=owner)
    with pytest.raises(Forbidden):
        update_event(event.id, make_user(organizer=True).id, EventUpdate(title="x"))
    with pytest.raises(NotFound):
        update_event(123_456, owner.id, EventUpdate(title="x"))
    assert update_event(event.id, owner.id, EventUpdate(title="  Renamed ")).title == "Renamed"


def test_update_event_capacity_goes_through_resize(app_ctx, make_user, make_event):
    from webapp.events.services import update_event
    from webapp.registrations.services import register

    owner = make_user(organizer=True)
    event = make_event(organizer=owner, capacity=3)
    for _ in range(2):
        register(event.id, make_user().id)
    with pytest.raises(Invalid) as refused:
        update_event(event.id, owner.id, EventUpdate(capacity=1, location="Moved"))
    assert refused.value.code == "capacity_below_confirmed"
    unchanged = update_event(event.id, owner.id, EventUpdate())
    assert (unchanged.capacity, unchanged.location) == (3, "Room 1")
    assert update_event(event.id, owner.id, EventUpdate(capacity=2)).capacity == 2


def test_update_event_keeps_start_before_end(app_ctx, make_user, make_event):
    from webapp.events.services import update_event

    owner = make_user(organizer=True)
    event = make_event(organizer=owner)
    with pytest.raises(InvalidInput) as refused:
        update_event(event.id, owner.id, EventUpdate(ends_at=event.starts_at))
    assert refused.value.fields == [{"field": "ends_at", "message": "must be after starts_at"}]


def test_schemas_accept_python_values_from_forms():
    """Forms pass ints, bools and aware datetimes; naive ones are refused with a clear message."""
    data = _create(capacity=7, waitlist_capacity=0)
    assert data.capacity == 7 and data.waitlist_capacity == 0
    assert data.starts_at.tzinfo is not None
    with pytest.raises(ValidationError) as caught:
        _create(starts_at=datetime(2099, 1, 1, 10, 0))
    invalid = validation_error_to_invalid(caught.value)
    assert invalid.fields[0]["field"] == "starts_at"
    assert "time zone offset" in invalid.message


def test_validation_error_to_invalid_lists_every_field_once():
    with pytest.raises(ValidationError) as caught:
        EventCreate.model_validate({"title": "", "capacity": 0, "bogus": 1})
    invalid = validation_error_to_invalid(caught.value)
    assert isinstance(invalid, Invalid) and invalid.status == 400
    fields = [f["field"] for f in invalid.fields]
    assert fields == ["title", "starts_at", "ends_at", "location", "capacity", "bogus"]
    assert invalid.message.startswith("title: must not be empty; starts_at: is required")


def test_event_update_refuses_null_except_waitlist_capacity():
    assert EventUpdate.model_validate({"waitlist_capacity": None}).changes() == {
        "waitlist_capacity": None}
    for name in ("title", "capacity", "starts_at", "waitlist_enabled", "location"):
        with pytest.raises(ValidationError):
            EventUpdate.model_validate({name: None})
