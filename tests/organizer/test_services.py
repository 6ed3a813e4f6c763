"""organizer.services: creating and editing events (one transaction), and who may."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.event_data import event_create
from webapp.errors import Forbidden, Invalid, NotFound
from webapp.events.schemas import EventUpdate
from webapp.organizer.services import create_event, owned_event, update_event
from webapp.registrations.services import register
from webapp.validation import InvalidInput


def test_create_event_for_an_organizer(app_ctx, make_user):
    organizer = make_user(organizer=True)
    event = create_event(organizer, event_create(waitlist_enabled=True))
    assert event.id and event.organizer_id == organizer.id
    assert (event.capacity, event.confirmed_count, event.waitlisted_count) == (4, 0, 0)
    assert event.organizer.email == organizer.email
    assert event.waitlist_enabled is True


def test_create_event_refuses_attendees(app_ctx, make_user):
    with pytest.raises(Forbidden):
        create_event(make_user(), event_create())


def test_owned_event_and_update_check_owner_and_existence(app_ctx, make_user, make_event):
    owner, stranger = make_user(organizer=True), make_user(organizer=True)
    event = make_event(organizer=owner)
    assert owned_event(event.id, owner).id == event.id
    with pytest.raises(Forbidden):
        owned_event(event.id, stranger)
    with pytest.raises(Forbidden):
        update_event(event.id, stranger, EventUpdate(title="x"))
    with pytest.raises(NotFound):
        update_event(123_456, owner, EventUpdate(title="x"))
    assert update_event(event.id, owner, EventUpdate(title="  Renamed ")).title == "Renamed"


def test_update_event_capacity_goes_through_the_seats(app_ctx, make_user, make_event):
    owner = make_user(organizer=True)
    event = make_event(organizer=owner, capacity=3)
    for _ in range(2):
        register(event.id, make_user().id)
    with pytest.raises(Invalid) as refused:
        update_event(event.id, owner, EventUpdate(capacity=1, location="Moved"))
    assert refused.value.code == "capacity_below_confirmed"
    unchanged = update_event(event.id, owner, EventUpdate())
    assert (unchanged.capacity, unchanged.location) == (3, "Room 1")
    assert update_event(event.id, owner, EventUpdate(capacity=2)).capacity == 2


def test_update_event_keeps_start_before_end(app_ctx, make_user, make_event):
    owner = make_user(organizer=True)
    event = make_event(organizer=owner)
    with pytest.raises(InvalidInput) as refused:
        update_event(event.id, owner, EventUpdate(ends_at=event.starts_at))
    assert refused.value.fields == [{"field": "ends_at", "message": "must be after starts_at"}]


def test_an_event_cannot_be_moved_into_the_past_and_a_refusal_changes_nothing(
        app_ctx, make_user, make_event, counts):
    """Bug 2 (and one transaction): before, the capacity was written first, in a
    transaction of its own, and a start in the past was accepted after it."""
    owner = make_user(organizer=True)
    event = make_event(organizer=owner, capacity=2)
    past = datetime.now(UTC) - timedelta(hours=1)
    with pytest.raises(InvalidInput) as refused:
        update_event(event.id, owner, EventUpdate(capacity=5, title="Moved", starts_at=past))
    assert refused.value.fields == [{"field": "starts_at", "message": "must be in the future"}]
    with pytest.raises(InvalidInput):
        update_event(event.id, owner, EventUpdate(ends_at=past))
    after = owned_event(event.id, owner)
    assert (after.capacity, after.title, after.starts_at) == (2, event.title, event.starts_at)
    # A value sent unchanged is not a move: an edit form sends every field.
    assert update_event(event.id, owner, EventUpdate(starts_at=event.starts_at,
                                                     title="Kept")).title == "Kept"


def test_the_waitlist_limit_cannot_go_below_the_people_waiting(
        app_ctx, make_user, make_event, counts):
    """Bug 2: before, a limit of 1 with 2 people waiting was accepted."""
    owner = make_user(organizer=True)
    event = make_event(organizer=owner, capacity=1, waitlist_enabled=True)
    for _ in range(3):
        register(event.id, make_user().id)
    assert counts(event.id)["waitlisted"] == 2
    with pytest.raises(Invalid) as refused:
        update_event(event.id, owner, EventUpdate(waitlist_capacity=1))
    assert refused.value.code == "waitlist_capacity_below_waiting"
    assert owned_event(event.id, owner).waitlist_capacity is None
    assert update_event(event.id, owner, EventUpdate(waitlist_capacity=2)).waitlist_capacity == 2
