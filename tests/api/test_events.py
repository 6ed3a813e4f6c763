"""API events: list, detail, capacity, create (organizers) and edit (their own)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.clients import error_of
from tests.support.samples import event_body

EVENT_KEYS = {"id", "title", "description", "starts_at", "ends_at", "location", "capacity",
              "confirmed", "seats_left", "waitlist_enabled", "waitlist_capacity", "waitlisted",
              "organizer"}


def test_list_is_soonest_first_and_complete(api, make_event):
    later = make_event(starts_in=timedelta(days=9))
    sooner = make_event(starts_in=timedelta(days=2))
    make_event(starts_in=timedelta(days=-3))  # ended: not listed
    response = api.get("/api/events")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"items"}
    assert [e["id"] for e in body["items"]] == [sooner.id, later.id]
    assert all(set(e) == EVENT_KEYS for e in body["items"])


def test_list_is_empty_items_when_no_events(api):
    assert api.get("/api/events").get_json() == {"items": []}


def test_event_detail_shape(api, app, make_user, make_event):
    organizer = make_user(organizer=True, name="Olga Organizer")
    event = make_event(capacity=3, organizer=organizer, waitlist_enabled=True,
                       waitlist_capacity=2)
    token = api.token(make_user())
    api.post(f"/api/events/{event.id}/registrations", token=token)
    body = api.get(f"/api/events/{event.id}").get_json()
    assert set(body) == EVENT_KEYS
    assert body["id"] == event.id
    assert (body["capacity"], body["confirmed"], body["seats_left"], body["waitlisted"]) == (
        3, 1, 2, 0)
    assert body["waitlist_enabled"] is True
    assert body["waitlist_capacity"] == 2
    assert body["organizer"] == {"id": organizer.id, "name": "Olga Organizer",
                                 "email": organizer.email}
    starts = datetime.fromisoformat(body["starts_at"])
    assert body["starts_at"].endswith("+00:00")
    assert starts.utcoffset() == timedelta(0)
    assert abs(starts - event.starts_at) < timedelta(seconds=1)


def test_event_detail_404(api):
    response = api.get("/api/events/424242")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_capacity(api, make_user, make_event):
    event = make_event(capacity=1, waitlist_enabled=True)
    for _ in range(3):
        api.post(f"/api/events/{event.id}/registrations", token=api.token(make_user()))
    response = api.get(f"/api/events/{event.id}/capacity")
    assert response.status_code == 200
    assert response.get_json() == {"capacity": 1, "confirmed": 1, "available": 0,
                                   "waitlisted": 2}
    assert api.get("/api/events/999999/capacity").status_code == 404


# --- create ----------------------------------------------------------------------------

def test_organizer_creates_event(api, make_user):
    organizer = make_user(organizer=True)
    token = api.token(organizer)
    body = event_body(title="  Launch  ", waitlist_enabled=True, waitlist_capacity=5,
                      starts_at="2099-06-01T18:00:00+02:00",
                      ends_at="2099-06-01T20:30:00+02:00")
    response = api.post("/api/events", token=token, json=body)
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert set(created) == EVENT_KEYS
    assert created["title"] == "Launch"
    assert created["starts_at"] == "2099-06-01T16:00:00+00:00"
    assert created["ends_at"] == "2099-06-01T18:30:00+00:00"
    assert (created["capacity"], created["confirmed"], created["seats_left"]) == (10, 0, 10)
    assert created["waitlist_enabled"] is True and created["waitlist_capacity"] == 5
    assert created["organizer"]["id"] == organizer.id
    assert api.get(f"/api/events/{created['id']}").get_json() == created


def test_attendee_cannot_create_event(api, make_user):
    response = api.post("/api/events", token=api.token(make_user()), json=event_body())
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert api.get("/api/events").get_json() == {"items": []}


def test_create_event_needs_a_token(api):
    response = api.post("/api/events", json=event_body())
    assert response.status_code == 401


@pytest.mark.parametrize(("overrides", "field", "words"), [
    ({"title": ""}, "title", "must not be empty"),
    ({"title": "   "}, "title", "must not be empty"),
    ({"title": "x" * 201}, "title", "at most 200"),
    ({"title": "a\nb"}, "title", "one line"),
    ({"description": "x" * 5001}, "description", "at most 5000"),
    ({"location": ""}, "location", "must not be empty"),
    ({"capacity": 0}, "capacity", "1 or more"),
    ({"capacity": -5}, "capacity", "1 or more"),
    ({"capacity": 100_001}, "capacity", "100,000 or less"),
    ({"capacity": "10"}, "capacity", "whole number"),
    ({"capacity": 10.5}, "capacity", "whole number"),
    ({"capacity": 10.0}, "capacity", "whole number"),
    ({"capacity": True}, "capacity", "whole number"),
    ({"capacity": None}, "capacity", "whole number"),
    ({"waitlist_enabled": "yes"}, "waitlist_enabled", "true or false"),
    ({"waitlist_enabled": 1}, "waitlist_enabled", "true or false"),
    ({"waitlist_capacity": -1}, "waitlist_capacity", "0 or more"),
    ({"starts_at": "2099-06-01T18:00:00"}, "starts_at", "time zone offset"),
    ({"ends_at": "2099-06-01 20:00"}, "ends_at", "time zone offset"),
    ({"starts_at": "tomorrow"}, "starts_at", "ISO 8601"),
    ({"starts_at": 4102444800}, "starts_at", "ISO 8601"),
    ({"starts_at": "2001-01-01T00:00:00+00:00"}, "starts_at", "in the future"),
    ({"starts_at": "9999-12-31T23:00:00-05:00"}, "starts_at", "out of range"),
    ({"organizer_id": 1}, "organizer_id", "not a known field"),
    ({"confirmed_count": 3}, "confirmed_count", "not a known field"),
])
def test_create_event_validation(api, make_user, overrides, field, words):
    token = api.token(make_user(organizer=True))
    response = api.post("/api/events", token=token, json=event_body(**overrides))
    assert response.status_code == 400, response.get_json()
    error = error_of(response)
    assert error["code"] == "invalid"
    assert error["fields"][0]["field"] == field
    assert words in error["fields"][0]["message"]
    assert words in error["message"]
    assert api.get("/api/events").get_json() == {"items": []}


def test_create_event_end_must_follow_start(api, make_user):
    token = api.token(make_user(organizer=True))
    body = event_body()
    response = api.post("/api/events", token=token, json={**body, "ends_at": body["starts_at"]})
    error = error_of(response)
    assert response.status_code == 400
    assert error["fields"] == [{"field": "ends_at", "message": "must be after starts_at"}]


def test_create_event_missing_fields_are_all_named(api, make_user):
    token = api.token(make_user(organizer=True))
    response = api.post("/api/events", token=token, json={})
    error = error_of(response)
    assert {f["field"] for f in error["fields"]} == {"title", "starts_at", "ends_at",
                                                     "location", "capacity"}
    assert all(f["message"] == "is required" for f in error["fields"])


def test_capacity_bounds_accepted(api, make_user):
    token = api.token(make_user(organizer=True))
    for capacity in (1, 100_000):
        response = api.post("/api/events", token=token, json=event_body(capacity=capacity))
        assert response.status_code == 201
        assert response.get_json()["capacity"] == capacity


# --- edit ------------------------------------------------------------------------------

def test_organizer_edits_own_event_partially(api, make_user, make_event):
    organizer = make_user(organizer=True)
    event = make_event(organizer=organizer, capacity=5)
    token = api.token(organizer)
    response = api.patch(f"/api/events/{event.id}", token=token,
                         json={"title": "New title", "location": "Hall B"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["title"], body["location"], body["capacity"]) == ("New title", "Hall B", 5)
    assert body["description"] == "A test event."


def test_patch_empty_body_changes_nothing(api, make_user, make_event):
    organizer = make_user(organizer=True)
    event = make_event(organizer=organizer)
    before = api.get(f"/api/events/{event.id}").get_json()
    response = api.patch(f"/api/events/{event.id}", token=api.token(organizer), json={})
    assert response.status_code == 200
    assert response.get_json() == before


def test_other_organizer_cannot_edit(api, make_user, make_event):
    event = make_event()
    response = api.patch(f"/api/events/{event.id}", token=api.token(make_user(organizer=True)),
                         json={"title": "Mine now"})
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert api.get(f"/api/events/{event.id}").get_json()["title"] == event.title


def test_attendee_cannot_edit_and_unknown_event_is_404(api, make_user, make_event):
    event = make_event()
    token = api.token(make_user())
    assert api.patch(f"/api/events/{event.id}", token=token, json={}).status_code == 403
    assert api.patch("/api/events/987654", token=token, json={}).status_code == 404
    assert api.patch(f"/api/events/{event.id}", json={}).status_code == 401


def test_capacity_below_confirmed_is_refused_and_changes_nothing(api, make_user, make_event):
    organizer = make_user(organizer=True)
    event = make_event(organizer=organizer, capacity=5)
    for _ in range(3):
        api.post(f"/api/events/{event.id}/registrations", token=api.token(make_user()))
    response = api.patch(f"/api/events/{event.id}", token=api.token(organizer),
                         json={"capacity": 2, "title": "Should not stick"})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "capacity_below_confirmed"
    assert "3" in error["message"]
    after = api.get(f"/api/events/{event.id}").get_json()
    assert (after["capacity"], after["title"]) == (5, event.title)
    ok = api.patch(f"/api/events/{event.id}", token=api.token(organizer), json={"capacity": 3})
    assert ok.status_code == 200
    assert ok.get_json()["seats_left"] == 0


def test_waitlist_limit_below_the_waiting_and_a_start_in_the_past_are_400(
        api, make_user, make_event):
    """Bug 2 through the API: SPEC's waitlist_capacity_below_waiting; a move to the past."""
    organizer = make_user(organizer=True)
    event = make_event(organizer=organizer, capacity=1, waitlist_enabled=True)
    for _ in range(3):
        api.post(f"/api/events/{event.id}/registrations", token=api.token(make_user()))
    token = api.token(organizer)
    response = api.patch(f"/api/events/{event.id}", token=token,
                         json={"waitlist_capacity": 1, "title": "Should not stick"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "waitlist_capacity_below_waiting"
    past = api.patch(f"/api/events/{event.id}", token=token,
                     json={"starts_at": "2020-01-01T10:00:00+00:00"})
    assert past.status_code == 400
    assert error_of(past)["fields"] == [{"field": "starts_at", "message": "must be in the future"}]
    after = api.get(f"/api/events/{event.id}").get_json()
    assert (after["waitlist_capacity"], after["title"]) == (None, event.title)
    assert api.patch(f"/api/events/{event.id}", token=token,
                     json={"waitlist_capacity": 2}).status_code == 200


def test_raising_capacity_promotes_from_waitlist_in_order(api, make_user, make_event):
    organizer = make_user(organizer=True)
    event = make_event(organizer=organizer, capacity=1, waitlist_enabled=True)
    people = [make_user() for _ in range(4)]
    for person in people:
        api.post(f"/api/events/{event.id}/registrations", token=api.token(person))
    response = api.patch(f"/api/events/{event.id}", token=api.token(organizer),
                         json={"capacity": 3})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["confirmed"], body["waitlisted"]) == (3, 1)
    listing = api.get(f"/api/events/{event.id}/registrations", token=api.token(organizer))
    items = listing.get_json()["items"]
    assert [(i["user_id"], i["status"], i["position"]) for i in items] == [
        (people[0].id, "confirmed", None), (people[1].id, "confirmed", None),
        (people[2].id, "confirmed", None), (people[3].id, "waitlisted", 1)]


def test_waitlist_settings_change_alone(api, make_user, make_event):
    organizer = make_user(organizer=True)
    event = make_event(organizer=organizer, capacity=2)
    token = api.token(organizer)
    body = api.patch(f"/api/events/{event.id}", token=token,
                     json={"waitlist_enabled": True, "waitlist_capacity": 4}).get_json()
    assert (body["capacity"], body["waitlist_enabled"], body["waitlist_capacity"]) == (2, True, 4)
    body = api.patch(f"/api/events/{event.id}", token=token,
                     json={"waitlist_capacity": None}).get_json()
    assert body["waitlist_capacity"] is None and body["waitlist_enabled"] is True


def test_patch_keeps_start_before_end_across_partial_updates(api, make_user, make_event):
    organizer = make_user(organizer=True)
    event = make_event(organizer=organizer)
    token = api.token(organizer)
    too_late = (event.ends_at + timedelta(hours=1)).isoformat()
    response = api.patch(f"/api/events/{event.id}", token=token, json={"starts_at": too_late})
    assert response.status_code == 400
    assert error_of(response)["fields"] == [{"field": "ends_at",
                                             "message": "must be after starts_at"}]
    both = {"starts_at": (event.ends_at + timedelta(hours=1)).isoformat(),
            "ends_at": (event.ends_at + timedelta(hours=3)).isoformat()}
    moved = api.patch(f"/api/events/{event.id}", token=token, json=both)
    assert moved.status_code == 200
    assert datetime.fromisoformat(moved.get_json()["starts_at"]) > event.ends_at


@pytest.mark.parametrize(("body", "field"), [
    ({"title": None}, "title"),
    ({"capacity": None}, "capacity"),
    ({"waitlist_enabled": None}, "waitlist_enabled"),
    ({"starts_at": None}, "starts_at"),
    ({"capacity": 0}, "capacity"),
    ({"organizer_id": 5}, "organizer_id"),
    ({"starts_at": "2099-01-01T10:00:00"}, "starts_at"),
])
def test_patch_validation(api, make_user, make_event, body, field):
    organizer = make_user(organizer=True)
    event = make_event(organizer=organizer)
    response = api.patch(f"/api/events/{event.id}", token=api.token(organizer), json=body)
    assert response.status_code == 400
    assert error_of(response)["fields"][0]["field"] == field


def test_times_with_offsets_round_trip_in_utc(api, make_user):
    token = api.token(make_user(organizer=True))
    created = api.post("/api/events", token=token, json=event_body(
        starts_at="2098-03-01T09:00:00-05:00", ends_at="2098-03-01T10:00:00.250000-05:00")
    ).get_json()
    assert created["starts_at"] == "2098-03-01T14:00:00+00:00"
    assert created["ends_at"] == "2098-03-01T15:00:00.250000+00:00"
    assert datetime.fromisoformat(created["ends_at"]).tzinfo is not None
    assert datetime.fromisoformat(created["starts_at"]) == datetime(2098, 3, 1, 14, tzinfo=UTC)
