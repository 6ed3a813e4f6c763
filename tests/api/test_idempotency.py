"""Idempotency-Key on POST /api/events/<id>/registrations (SPEC "Faults and retries").

A client that got no answer sends the same request again with the same key: it
gets the first answer (same status, same registration id) and nothing changes.
"""

from __future__ import annotations

import pytest

from tests.support.clients import Api, error_of
from tests.support.races import release_together

KEY = "Idempotency-Key"


def post(api: Api, event_id: int, token: str, key: str | None = None):
    return api.post(f"/api/events/{event_id}/registrations", token=token,
                    headers={KEY: key} if key is not None else None)


def test_a_retry_with_the_same_key_gets_the_first_answer_and_changes_nothing(
        api, make_event, make_user, counts):
    event = make_event(capacity=1, waitlist_enabled=True)
    first, second = make_user(), make_user()
    token = api.token(second)
    post(api, event.id, api.token(first))  # the seat goes: `second` is waitlisted

    answer = post(api, event.id, token, "retry-1")
    again = post(api, event.id, token, "retry-1")

    assert answer.status_code == again.status_code == 201
    one, two = answer.get_json(), again.get_json()
    assert (two["id"], two["status"], two["position"]) == (one["id"], "waitlisted", 1)
    assert two["registered_at"] == one["registered_at"]
    c = counts(event.id)
    assert (c["waitlisted"], c["activity"]) == (1, {"confirmed": 1, "waitlisted": 1})


def test_a_retry_after_a_cancellation_does_not_register_again(
        api, make_event, make_user, counts):
    """A late duplicate of the first request must not bring a cancelled place back."""
    event = make_event(capacity=3)
    person = make_user()
    token = api.token(person)
    first = post(api, event.id, token, "once")
    assert api.delete(f"/api/events/{event.id}/registrations/me", token=token
                      ).status_code == 204

    late = post(api, event.id, token, "once")

    assert late.status_code == 201 and late.get_json()["id"] == first.get_json()["id"]
    assert counts(event.id)["cancelled"] == 1 and counts(event.id)["confirmed"] == 0
    # A new key is a new request: it registers again.
    assert post(api, event.id, token, "twice").status_code == 201
    assert counts(event.id)["confirmed"] == 1


def test_a_refusal_is_answered_again_for_its_key(api, make_event, make_user):
    event = make_event(capacity=1)
    winner, loser = make_user(), make_user()
    post(api, event.id, api.token(winner))
    token = api.token(loser)

    refused = post(api, event.id, token, "full-1")
    assert api.delete(f"/api/events/{event.id}/registrations/{winner.id}",
                      token=api.token(_organizer(api, event))).status_code == 204
    again = post(api, event.id, token, "full-1")

    assert error_of(refused)["code"] == error_of(again)["code"] == "event_full"
    assert post(api, event.id, token, "full-2").status_code == 201  # a new key tries anew


def _organizer(api, event):
    from webapp.auth.models import User
    from webapp.extensions import db

    with api.app.app_context():
        return db.session.get(User, event.organizer_id).email


def test_the_same_key_on_a_different_request_is_422(api, make_event, make_user, counts):
    one, two = make_event(capacity=2), make_event(capacity=2)
    token = api.token(make_user())
    assert post(api, one.id, token, "mine").status_code == 201

    reused = post(api, two.id, token, "mine")

    assert reused.status_code == 422
    assert error_of(reused)["code"] == "idempotency_key_reused"
    assert counts(two.id)["confirmed"] == 0


def test_keys_belong_to_their_person(api, make_event, make_user):
    event = make_event(capacity=3)
    a, b = make_user(), make_user()
    first = post(api, event.id, api.token(a), "shared-key")
    other = post(api, event.id, api.token(b), "shared-key")
    assert first.status_code == other.status_code == 201
    assert first.get_json()["id"] != other.get_json()["id"]


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_a_key_out_of_bounds_is_400(api, make_event, make_user, key):
    event = make_event(capacity=3)
    response = post(api, event.id, api.token(make_user()), key)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_idempotency_key"


def test_a_key_of_255_characters_is_kept(api, make_event, make_user):
    event = make_event(capacity=3)
    token = api.token(make_user())
    key = "é" * 255
    first, again = post(api, event.id, token, key), post(api, event.id, token, key)
    assert first.status_code == again.status_code == 201
    assert first.get_json()["id"] == again.get_json()["id"]


def test_the_same_key_sent_twice_at_once_places_the_person_once(
        app, make_event, make_user, counts):
    """A client that retries before the first answer arrives: both get the one place."""
    event = make_event(capacity=5, waitlist_enabled=True)
    api = Api(app)
    people = [make_user() for _ in range(6)]
    tokens = [api.token(p) for p in people]
    calls = [lambda t=t: post(api, event.id, t, "dup") for t in tokens for _ in range(3)]

    answers = release_together(calls, 60)

    by_person: dict[str, set] = {}
    for t, response in zip([t for t in tokens for _ in range(3)], answers, strict=True):
        assert response.status_code == 201, response.get_data(as_text=True)
        by_person.setdefault(t, set()).add(response.get_json()["id"])
    assert all(len(ids) == 1 for ids in by_person.values()), by_person
    c = counts(event.id)
    assert c["confirmed"] + c["waitlisted"] == 6 and c["confirmed"] == 5


def test_the_openapi_document_names_the_header_and_the_statuses(api):
    document = api.get("/api/openapi.json").get_json()
    operation = document["paths"]["/api/events/{event_id}/registrations"]["post"]
    assert any(p["in"] == "header" and p["name"] == KEY for p in operation["parameters"])
    assert {"422", "503"} <= set(operation["responses"])


def test_a_place_is_answered_again_from_sql_when_redis_lost_its_copy(
        api, make_event, make_user, redis_client, counts):
    """Redis keeps copies of answers; the place's answer itself is in SQL, written in
    the transaction that placed the person."""
    event = make_event(capacity=3)
    token = api.token(make_user())
    first = post(api, event.id, token, "durable")
    redis_client.flushdb()

    again = post(api, event.id, token, "durable")

    assert again.status_code == 201 and again.get_json()["id"] == first.get_json()["id"]
    assert counts(event.id)["activity"] == {"confirmed": 1}
    reused = post(api, make_event(capacity=3).id, token, "durable")
    assert error_of(reused)["code"] == "idempotency_key_reused"


def test_keys_older_than_a_day_are_forgotten_by_the_upkeep_round(
        app, api, make_event, make_user):
    from datetime import timedelta

    from sqlalchemy import func, select

    from webapp.database import read_session
    from webapp.registrations.idempotency import KEYS, purge
    from webapp.sqltypes import utcnow
    from workers import maintenance

    event = make_event(capacity=3)
    token = api.token(make_user())
    post(api, event.id, token, "old")

    def kept() -> int:
        with app.app_context(), read_session() as session:
            return session.scalar(select(func.count()).select_from(KEYS))

    with app.app_context():
        assert purge(utcnow() + timedelta(hours=23)) == 0
    maintenance.run_once(app, maintenance.forget_old_keys)
    assert kept() == 1
    with app.app_context():
        assert purge(utcnow() + timedelta(hours=25)) == 1
    assert kept() == 0
