"""Organizer fixtures: a signed-in organizer, reading events back from SQL."""

from __future__ import annotations

import pytest


@pytest.fixture
def organizer(client, make_user):
    """A client signed in as a fresh organizer: (client, user)."""
    user = make_user(organizer=True, name="Olivia Host")
    assert client.login(user.email).status_code == 303
    return client, user


@pytest.fixture
def load_event(app):
    """load_event(event_id) -> Event as SQL holds it now (None if absent)."""
    from webapp.database import read_session
    from webapp.events.models import Event

    def load(event_id: int):
        with app.app_context(), read_session() as s:
            return s.get(Event, event_id)

    return load


@pytest.fixture
def events_of(app):
    """events_of(organizer_id) -> their events, oldest id first."""
    from sqlalchemy import select

    from webapp.database import read_session
    from webapp.events.models import Event

    def read(organizer_id: int):
        with app.app_context(), read_session() as s:
            return list(s.scalars(select(Event).where(Event.organizer_id == organizer_id)
                                  .order_by(Event.id)))

    return read


@pytest.fixture
def register_people(app, make_user):
    """register_people(event, n) -> users, registered one after another (the real service)."""
    from webapp.registrations.services import register

    def run(event, n: int, **user_fields):
        users = [make_user(**user_fields) for _ in range(n)]
        with app.app_context():
            for user in users:
                register(event.id, user.id)
        return users

    return run
