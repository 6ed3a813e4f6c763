"""event_registrations(): the organizer's lists, in order, with the people loaded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, text

from webapp.errors import Invalid


@pytest.fixture
def busy_event(app, make_event, make_user):
    """Capacity 2, waitlist on: 2 confirmed, 3 waiting, 1 cancelled; registered_at shuffled."""
    from webapp.extensions import db
    from webapp.registrations.services import cancel, register

    event = make_event(capacity=2, waitlist_enabled=True)
    people = [make_user() for _ in range(6)]
    with app.app_context():
        for person in people:
            register(event.id, person.id)
        cancel(event.id, people[5].id)  # was waitlisted 4th
        # The second confirmed person "registered" first: order is by time, not by id.
        base = datetime(2030, 1, 1, tzinfo=UTC)
        db.session.execute(text("UPDATE registrations SET registered_at = :t "
                                "WHERE event_id = :e AND user_id = :u"),
                           [{"t": base + timedelta(seconds=2), "e": event.id, "u": people[0].id},
                            {"t": base, "e": event.id, "u": people[1].id}])
        db.session.commit()
    return event, people


def ids(rows) -> list[int]:
    return [r.user_id for r in rows]


def test_confirmed_in_registration_order(app_ctx, busy_event):
    from webapp.registrations.queries import event_registrations

    event, people = busy_event
    rows = event_registrations(event.id, "confirmed")
    assert ids(rows) == [people[1].id, people[0].id]
    assert {r.status for r in rows} == {"confirmed"}


def test_confirmed_ties_break_by_id(app_ctx, busy_event):
    from webapp.extensions import db
    from webapp.registrations.queries import event_registrations

    event, people = busy_event
    db.session.execute(text("UPDATE registrations SET registered_at = :t WHERE event_id = :e"),
                       {"t": datetime(2030, 1, 1, tzinfo=UTC), "e": event.id})
    db.session.commit()
    assert ids(event_registrations(event.id, "confirmed")) == [people[0].id, people[1].id]


def test_waitlist_in_queue_order(app_ctx, busy_event):
    from webapp.registrations.queries import event_registrations

    event, people = busy_event
    rows = event_registrations(event.id, "waitlisted")
    assert ids(rows) == [people[2].id, people[3].id, people[4].id]
    assert [r.position for r in rows] == [1, 2, 3]


def test_none_means_the_live_ones_confirmed_first(app_ctx, busy_event):
    from webapp.registrations.queries import event_registrations

    event, people = busy_event
    assert ids(event_registrations(event.id)) == [
        people[1].id, people[0].id, people[2].id, people[3].id, people[4].id]


def test_cancelled_ones_on_request(app_ctx, busy_event):
    from webapp.registrations.queries import event_registrations

    event, people = busy_event
    assert ids(event_registrations(event.id, "cancelled")) == [people[5].id]


def test_users_are_loaded_with_the_rows(app_ctx, busy_event):
    from webapp.extensions import db
    from webapp.registrations.queries import event_registrations

    event, people = busy_event
    rows = event_registrations(event.id)
    assert all("user" not in inspect(r).unloaded for r in rows)
    db.session.expunge_all()  # no lazy load possible any more
    assert [r.user.email for r in rows][:2] == [people[1].email, people[0].email]


def test_only_that_event(app_ctx, busy_event, make_event):
    from webapp.registrations.queries import event_registrations

    other = make_event()
    assert event_registrations(other.id) == []
    assert event_registrations(999999) == []


def test_unknown_status_is_invalid(app_ctx, busy_event):
    from webapp.registrations.queries import event_registrations

    event, _ = busy_event
    with pytest.raises(Invalid) as caught:
        event_registrations(event.id, "pending")
    assert caught.value.code == "invalid_status"
