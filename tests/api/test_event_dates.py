"""Dates the calendar cannot hold, in the JSON API: a 400 naming the field, never a 500."""

from __future__ import annotations

import pytest

from tests.support.clients import error_of
from tests.support.samples import event_body

TOO_LATE = "is out of range (the year must be 9998 or earlier)"
TOO_EARLY = "is out of range (before the year 1 in UTC)"

OUT_OF_RANGE = [
    ("9999-12-31T18:00:00-12:00", TOO_LATE),  # 10000 in UTC
    ("9999-12-31T23:59:59.999999+00:00", TOO_LATE),
    ("9999-01-01T00:00:00+05:00", TOO_LATE),  # 9998 in UTC, 9999 as written
    ("9998-12-31T22:00:00-05:00", TOO_LATE),  # 9999 in UTC
    ("0001-01-01T05:00:00+14:00", TOO_EARLY),  # year 0 in UTC
    ("0001-01-01T00:00:00+00:01", TOO_EARLY),
]


@pytest.mark.parametrize(("field", "value", "message"), [
    (field, value, message) for field in ("starts_at", "ends_at")
    for value, message in OUT_OF_RANGE])
def test_create_refuses_dates_out_of_range(api, make_user, field, value, message):
    token = api.token(make_user(organizer=True))
    response = api.post("/api/events", token=token, json=event_body(**{field: value}))
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    assert error["fields"] == [{"field": field, "message": message}]
    assert error["message"] == f"{field}: {message}."
    assert api.get("/api/events").get_json() == {"items": []}


@pytest.mark.parametrize(("field", "value", "message"), [
    (field, value, message) for field in ("starts_at", "ends_at")
    for value, message in OUT_OF_RANGE])
def test_patch_refuses_dates_out_of_range(api, make_user, make_event, field, value, message):
    organizer = make_user(organizer=True)
    event = make_event(organizer=organizer)
    before = api.get(f"/api/events/{event.id}").get_json()
    response = api.patch(f"/api/events/{event.id}", token=api.token(organizer),
                         json={field: value})
    assert response.status_code == 400
    assert error_of(response)["fields"] == [{"field": field, "message": message}]
    assert api.get(f"/api/events/{event.id}").get_json() == before


def test_the_last_year_is_accepted(api, make_user):
    token = api.token(make_user(organizer=True))
    response = api.post("/api/events", token=token, json=event_body(
        starts_at="9998-12-31T10:00:00-12:00", ends_at="9998-12-31T11:00:00-12:00"))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["ends_at"] == "9998-12-31T23:00:00+00:00"
