"""Dates the calendar cannot hold, on the organizer's form: a 422 with the message on the field."""

from __future__ import annotations

import pytest

from tests.support.forms import NEW, edit_url, field_errors, text
from tests.support.samples import form_data, utc

TOO_LATE = "Is out of range (the year must be 9998 or earlier)."
TOO_EARLY = "Is out of range (before the year 1 in UTC)."

OUT_OF_RANGE = [
    # UTC-12: the end of 9999 is in 10000 in UTC (this was an OverflowError, a 500)
    ({"starts_at": "9999-12-31T18:00", "ends_at": "9999-12-31T20:00", "timezone": "Etc/GMT+12"},
     {"starts_at": [TOO_LATE], "ends_at": [TOO_LATE]}),
    ({"starts_at": "9999-01-01T10:00", "ends_at": "9999-01-01T12:00", "timezone": "UTC"},
     {"starts_at": [TOO_LATE], "ends_at": [TOO_LATE]}),
    # 9998 as typed, 9999 in UTC
    ({"starts_at": "9998-12-31T20:00", "ends_at": "9998-12-31T22:00", "timezone": "Etc/GMT+12"},
     {"starts_at": [TOO_LATE], "ends_at": [TOO_LATE]}),
    ({"ends_at": "9999-12-31T23:59", "timezone": "Etc/GMT+12"}, {"ends_at": [TOO_LATE]}),
    # UTC+14: the first hours of year 1 are in year 0 in UTC
    ({"starts_at": "0001-01-01T05:00", "ends_at": "0001-01-01T06:00", "timezone": "Etc/GMT-14"},
     {"starts_at": [TOO_EARLY], "ends_at": [TOO_EARLY]}),
]


@pytest.mark.parametrize(("overrides", "errors"), OUT_OF_RANGE)
def test_create_refuses_dates_out_of_range_on_their_fields(organizer, events_of, overrides,
                                                          errors):
    client, user = organizer
    for htmx in (False, True):
        response = client.post(NEW, data=form_data(**overrides), htmx=htmx)
        assert response.status_code == 422
        assert field_errors(text(response)) == errors
    assert events_of(user.id) == []


@pytest.mark.parametrize(("overrides", "errors"), OUT_OF_RANGE)
def test_edit_refuses_dates_out_of_range_on_their_fields(organizer, make_event, load_event,
                                                        overrides, errors):
    client, user = organizer
    event = make_event(organizer=user)
    for htmx in (False, True):
        response = client.post(edit_url(event), data=form_data(**overrides), htmx=htmx)
        assert response.status_code == 422
        assert field_errors(text(response)) == errors
    assert load_event(event.id).starts_at == event.starts_at


def test_the_last_year_the_calendar_holds_is_accepted(organizer, events_of):
    client, user = organizer
    response = client.post(NEW, data=form_data(
        starts_at="9998-12-31T10:00", ends_at="9998-12-31T12:00", timezone="Etc/GMT-14"))
    assert response.status_code == 303
    [event] = events_of(user.id)
    assert event.starts_at == utc(9998, 12, 30, 20)
    assert client.get(f"/organizer/events/{event.id}").status_code == 200
    assert client.get(f"/events/{event.id}").status_code == 200
    assert client.get(edit_url(event)).status_code == 200
