"""Creating and editing events through the organizer form: happy paths, every refusal, htmx."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest

from tests.support.forms import NEW, edit_url, field_errors, input_value, text
from tests.support.samples import YEAR, form_data, last_sunday_of_march, utc

CSRF_MESSAGE = "Your form expired or was sent from elsewhere. Reload the page and try again."


# --- create -------------------------------------------------------------------------------

def test_new_event_form_page(organizer):
    client, _ = organizer
    response = client.get(NEW)
    body = text(response)
    assert response.status_code == 200
    assert "<html" in body
    assert '<form id="event-form" method="post" action="/organizer/events/new"' in body
    assert 'hx-post="/organizer/events/new"' in body
    assert 'name="csrf_token"' in body
    assert 'type="datetime-local"' in body
    assert '<option selected value="UTC">UTC</option>' in body
    assert '<option value="Europe/Berlin">Europe/Berlin</option>' in body
    assert '<option value="America/New_York">America/New York</option>' in body


def test_create_event_plain_post_redirects_to_its_lists(organizer, events_of):
    client, user = organizer
    response = client.post(NEW, data=form_data())
    [event] = events_of(user.id)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/organizer/events/{event.id}"
    assert event.title == "Pottery night"
    assert event.description == "Bring an apron.\n\nClay is provided."
    assert event.starts_at == utc(YEAR, 6, 1, 18)
    assert event.ends_at == utc(YEAR, 6, 1, 20, 30)
    assert event.location == "Studio 9"
    assert (event.capacity, event.confirmed_count) == (12, 0)
    assert event.waitlist_enabled is True
    assert (event.waitlist_capacity, event.waitlisted_count) == (5, 0)
    page = text(client.get(response.headers["Location"]))
    assert "“Pottery night” is created." in page
    assert "0 / 12 confirmed" in page


def test_create_event_htmx_answers_hx_location(organizer, events_of):
    client, user = organizer
    response = client.post(NEW, data=form_data(), htmx=True)
    [event] = events_of(user.id)
    assert response.status_code == 200
    assert f'"path": "/organizer/events/{event.id}"' in response.headers["HX-Location"]
    assert response.get_data() == b""
    # Where HX-Location lands: the main area alone.
    landed = client.get(f"/organizer/events/{event.id}", htmx=True)
    assert "<html" not in text(landed)
    assert 'id="registration-lists"' in text(landed)


def test_create_with_a_time_zone_stores_utc(organizer, events_of):
    client, user = organizer
    response = client.post(NEW, data=form_data(
        starts_at=f"{YEAR}-07-01T18:00", ends_at=f"{YEAR}-07-01T21:00",
        timezone="Europe/Berlin"))
    assert response.status_code == 303
    [event] = events_of(user.id)
    assert event.starts_at == utc(YEAR, 7, 1, 16)  # CEST is UTC+2
    assert event.ends_at == utc(YEAR, 7, 1, 19)


def test_create_without_waitlist_and_no_limit(organizer, events_of):
    client, user = organizer
    data = form_data(waitlist_capacity="", description="")
    del data["waitlist_enabled"]  # an unticked checkbox is not sent
    assert client.post(NEW, data=data).status_code == 303
    [event] = events_of(user.id)
    assert event.waitlist_enabled is False
    assert event.waitlist_capacity is None
    assert event.description == ""


def test_values_are_trimmed(organizer, events_of):
    client, user = organizer
    assert client.post(NEW, data=form_data(title="  Jam  ", location=" Hall ",
                                           capacity=" 7 ")).status_code == 303
    [event] = events_of(user.id)
    assert (event.title, event.location, event.capacity) == ("Jam", "Hall", 7)


LONG = "x" * 201
REFUSALS = [
    ({"title": ""}, "title", "Must not be empty."),
    ({"title": "   "}, "title", "Must not be empty."),
    ({"title": LONG}, "title", "Must be at most 200 characters."),
    ({"title": "Two\nlines"}, "title", "Must be one line without control characters."),
    ({"description": "y" * 5001}, "description", "Must be at most 5000 characters."),
    ({"description": "bell\x07"}, "description", "Must not contain control characters."),
    ({"location": ""}, "location", "Must not be empty."),
    ({"location": "z" * 201}, "location", "Must be at most 200 characters."),
    ({"starts_at": ""}, "starts_at", "Please fill this in."),
    ({"starts_at": None}, "starts_at", "Please fill this in."),
    ({"starts_at": "next friday"}, "starts_at", "Enter a date and time, e.g. 2026-12-01 18:00."),
    ({"starts_at": f"{YEAR}-02-30T18:00"}, "starts_at",
     "Enter a date and time, e.g. 2026-12-01 18:00."),
    ({"starts_at": "2001-01-01T10:00", "ends_at": "2001-01-01T12:00"}, "starts_at",
     "Must be in the future."),
    ({"ends_at": ""}, "ends_at", "Please fill this in."),
    ({"ends_at": f"{YEAR}-06-01T17:00"}, "ends_at", "Must be after the start."),
    ({"ends_at": f"{YEAR}-06-01T18:00"}, "ends_at", "Must be after the start."),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone", "Choose a time zone from the list."),
    ({"capacity": ""}, "capacity", "Please fill this in."),
    ({"capacity": "0"}, "capacity", "Must be 1 or more."),
    ({"capacity": "-3"}, "capacity", "Must be 1 or more."),
    ({"capacity": "100001"}, "capacity", "Must be 100,000 or less."),
    ({"capacity": "9999999999999"}, "capacity", "Must be 100,000 or less."),
    ({"capacity": "ten"}, "capacity", "Must be a whole number."),
    ({"capacity": "2.5"}, "capacity", "Must be a whole number."),
    ({"waitlist_capacity": "-1"}, "waitlist_capacity", "Must be 0 or more."),
    ({"waitlist_capacity": "lots"}, "waitlist_capacity", "Must be a whole number."),
]


@pytest.mark.parametrize(("overrides", "field", "message"), REFUSALS,
                         ids=[f"{f}:{m}" for _, f, m in REFUSALS])
def test_each_invalid_value_is_refused_next_to_its_field(app, organizer, events_of, overrides,
                                                         field, message):
    client, user = organizer
    response = client.post(NEW, data=form_data(**overrides))
    body = text(response)
    assert response.status_code == 422
    assert field_errors(body) == {field: [message]}
    assert "Please correct the fields marked below." in body
    assert events_of(user.id) == []


def test_many_errors_at_once_and_the_values_are_kept(organizer, events_of):
    client, user = organizer
    response = client.post(NEW, data=form_data(
        title="", capacity="0", ends_at="whenever", location="Hall <b>7</b>",
        description="Keep me", timezone="Europe/Paris", starts_at=f"{YEAR}-06-01T18:00"))
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert field_errors(html.unescape(body)) == {
        "title": ["Must not be empty."], "capacity": ["Must be 1 or more."],
        "ends_at": ["Enter a date and time, e.g. 2026-12-01 18:00."]}
    # What was typed comes back, escaped.
    assert input_value(body, "location") == "Hall &lt;b&gt;7&lt;/b&gt;"
    assert input_value(body, "ends_at") == "whenever"
    assert input_value(body, "starts_at") == f"{YEAR}-06-01T18:00"
    assert input_value(body, "capacity") == "0"
    assert ">\r\nKeep me</textarea>" in body
    assert '<option selected value="Europe/Paris">Europe/Paris</option>' in body
    assert re.search(r'<input checked id="waitlist_enabled" name="waitlist_enabled"', body)
    assert events_of(user.id) == []


def test_a_time_skipped_by_a_clock_change_is_refused(organizer, events_of):
    client, user = organizer
    gap = last_sunday_of_march(YEAR)  # Europe/Berlin jumps 02:00 -> 03:00
    response = client.post(NEW, data=form_data(
        starts_at=f"{gap}T02:30", ends_at=f"{gap}T05:00", timezone="Europe/Berlin"))
    assert response.status_code == 422
    assert field_errors(text(response)) == {"starts_at": [
        f"{gap} 02:30 does not exist in Europe/Berlin (the clocks change then). "
        "Choose another time."]}
    assert events_of(user.id) == []


def test_invalid_form_htmx_is_the_form_fragment_with_422(organizer):
    client, _ = organizer
    response = client.post(NEW, data=form_data(title=""), htmx=True)
    body = text(response).strip()
    assert response.status_code == 422
    assert "<html" not in body
    assert body.startswith('<form id="event-form"')
    assert body.endswith("</form>")
    assert field_errors(body) == {"title": ["Must not be empty."]}
    assert "HX-Request" in response.vary


def test_create_needs_csrf(organizer, events_of):
    client, user = organizer
    for htmx in (False, True):
        response = client.post(NEW, data=form_data(), csrf=False, htmx=htmx)
        assert response.status_code == 400
        assert CSRF_MESSAGE in text(response)
    assert events_of(user.id) == []


def test_attendees_cannot_create_events(signed_in, events_of):
    client, user = signed_in
    assert client.get(NEW).status_code == 403
    response = client.post(NEW, data=form_data())
    assert response.status_code == 403
    assert "Only organizers can create and manage events." in text(response)
    assert events_of(user.id) == []


def test_signed_out_goes_to_sign_in(client):
    response = client.get(NEW)
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=/organizer/events/new"
    response = client.post(NEW, data=form_data(), htmx=True)
    assert response.headers["HX-Redirect"].startswith("/login")


# --- edit ---------------------------------------------------------------------------------

def test_edit_form_is_filled_with_the_event(organizer, make_event):
    client, user = organizer
    event = make_event(organizer=user, title="Film club", capacity=30, waitlist_enabled=True,
                       waitlist_capacity=4, starts_at=utc(YEAR, 5, 2, 19, 30),
                       ends_at=utc(YEAR, 5, 2, 22))
    response = client.get(edit_url(event))
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert input_value(body, "title") == "Film club"
    assert input_value(body, "starts_at") == f"{YEAR}-05-02T19:30"
    assert input_value(body, "ends_at") == f"{YEAR}-05-02T22:00"
    assert input_value(body, "capacity") == "30"
    assert input_value(body, "waitlist_capacity") == "4"
    assert '<option selected value="UTC">UTC</option>' in body
    assert f'action="/organizer/events/{event.id}/edit"' in body


def test_edit_saves_the_changes(organizer, make_event, load_event):
    client, user = organizer
    starts = utc(YEAR, 5, 2, 19, 30).replace(second=42)  # seconds the form never shows
    event = make_event(organizer=user, capacity=10, starts_at=starts,
                       ends_at=starts + timedelta(hours=2))
    response = client.post(edit_url(event), data=form_data(
        title="Renamed", location="Big hall", capacity="40", waitlist_capacity="",
        starts_at=f"{YEAR}-05-02T19:30", ends_at=f"{YEAR}-05-03T01:00",
        description="New words"))
    assert response.status_code == 303
    assert response.headers["Location"] == f"/organizer/events/{event.id}"
    saved = load_event(event.id)
    assert (saved.title, saved.location, saved.description) == ("Renamed", "Big hall",
                                                                "New words")
    assert saved.capacity == 40
    assert saved.waitlist_enabled is True
    assert saved.waitlist_capacity is None
    assert saved.starts_at == starts  # unchanged to the minute: kept to the second
    assert saved.ends_at == utc(YEAR, 5, 3, 1)
    assert "Saved." in text(client.get(response.headers["Location"]))


def test_edit_with_nothing_changed(organizer, make_event, load_event):
    client, user = organizer
    event = make_event(organizer=user)
    body = client.get(edit_url(event)).get_data(as_text=True)
    data = {name: html.unescape(input_value(body, name) or "")
            for name in ("title", "starts_at", "ends_at", "location", "capacity",
                         "waitlist_capacity")}
    data.update(description=event.description, timezone="UTC")
    response = client.post(edit_url(event), data=data)
    assert response.status_code == 303
    assert "Nothing changed." in text(client.get(response.headers["Location"]))
    assert load_event(event.id).updated_at == event.updated_at


def test_edit_times_in_another_zone(organizer, make_event, load_event):
    client, user = organizer
    event = make_event(organizer=user, capacity=3)
    response = client.post(edit_url(event), data=form_data(
        starts_at=f"{YEAR}-01-10T09:00", ends_at=f"{YEAR}-01-10T10:00",
        timezone="America/New_York", capacity="3"))
    assert response.status_code == 303
    assert load_event(event.id).starts_at == utc(YEAR, 1, 10, 14)  # EST is UTC-5


def test_capacity_below_the_confirmed_count_is_refused(organizer, make_event, register_people,
                                                       load_event, counts):
    client, user = organizer
    event = make_event(organizer=user, capacity=5)
    register_people(event, 3)
    response = client.post(edit_url(event), data=form_data(capacity="2", title="Not saved"))
    body = text(response)
    assert response.status_code == 422
    assert field_errors(body) == {"capacity": [
        "Capacity cannot be lower than the 3 people already confirmed. "
        "Cancel registrations first."]}
    assert input_value(body, "capacity") == "2"
    saved = load_event(event.id)
    assert (saved.capacity, saved.title) == (5, event.title)  # nothing at all was saved
    assert counts(event.id)["confirmed"] == 3
    # Exactly the confirmed count is fine.
    assert client.post(edit_url(event), data=form_data(capacity="3")).status_code == 303
    assert load_event(event.id).capacity == 3


def test_a_waitlist_limit_below_the_people_waiting_is_refused(
        organizer, make_event, register_people, load_event):
    """Bug 2 on the form: the refusal sits next to the waitlist field, nothing is saved."""
    client, user = organizer
    event = make_event(organizer=user, capacity=1, waitlist_enabled=True)
    register_people(event, 4)  # one seat, three waiting
    response = client.post(edit_url(event), data=form_data(
        capacity="1", waitlist_enabled="y", waitlist_capacity="2", title="Not saved"))
    assert response.status_code == 422
    assert field_errors(text(response)) == {"waitlist_capacity": [
        "Waitlist capacity cannot be lower than the 3 people already waiting."]}
    saved = load_event(event.id)
    assert (saved.waitlist_capacity, saved.title) == (None, event.title)


def test_raising_capacity_promotes_from_the_waitlist(organizer, make_event, register_people,
                                                     counts):
    client, user = organizer
    event = make_event(organizer=user, capacity=1, waitlist_enabled=True)
    register_people(event, 3)
    assert counts(event.id)["waitlisted"] == 2
    response = client.post(edit_url(event), data=form_data(capacity="2"))
    assert response.status_code == 303
    assert (counts(event.id)["confirmed"], counts(event.id)["waitlisted"]) == (2, 1)


def test_edit_end_before_the_stored_start_is_refused(organizer, make_event, load_event):
    client, user = organizer
    event = make_event(organizer=user, starts_at=utc(YEAR, 5, 2, 19),
                       ends_at=utc(YEAR, 5, 2, 21))
    response = client.post(edit_url(event), data=form_data(
        starts_at=f"{YEAR}-05-02T19:00", ends_at=f"{YEAR}-05-02T18:00"))
    assert response.status_code == 422
    assert field_errors(text(response)) == {"ends_at": ["Must be after the start."]}
    assert load_event(event.id).ends_at == utc(YEAR, 5, 2, 21)


def test_edit_refusals_are_the_same_as_create(organizer, make_event, load_event):
    client, user = organizer
    event = make_event(organizer=user, capacity=4)
    response = client.post(edit_url(event), data=form_data(title="", capacity="abc"))
    assert response.status_code == 422
    assert field_errors(text(response)) == {"title": ["Must not be empty."],
                                            "capacity": ["Must be a whole number."]}
    assert load_event(event.id).capacity == 4


def test_a_started_event_can_still_be_renamed(organizer, make_event, load_event):
    client, user = organizer
    event = make_event(organizer=user, starts_in=timedelta(hours=-1))
    body = client.get(edit_url(event)).get_data(as_text=True)
    response = client.post(edit_url(event), data=form_data(
        title="Renamed after the start", capacity=str(event.capacity), waitlist_capacity="",
        starts_at=input_value(body, "starts_at"), ends_at=input_value(body, "ends_at")))
    assert response.status_code == 303
    assert load_event(event.id).title == "Renamed after the start"


def test_edit_htmx_fragment_and_hx_location(organizer, make_event):
    client, user = organizer
    event = make_event(organizer=user)
    bad = client.post(edit_url(event), data=form_data(capacity="0"), htmx=True)
    assert bad.status_code == 422
    assert text(bad).strip().startswith('<form id="event-form"')
    good = client.post(edit_url(event), data=form_data(), htmx=True)
    assert f'"path": "/organizer/events/{event.id}"' in good.headers["HX-Location"]


def test_only_the_owner_edits(make_client, make_user, make_event, load_event):
    owner = make_user(organizer=True)
    event = make_event(organizer=owner, title="Mine")
    for intruder, why in (
            (make_user(organizer=True), "Only this event&#39;s organizer can do that."),
            (make_user(), "Only organizers can create and manage events.")):
        client = make_client()
        client.login(intruder.email)
        assert client.get(edit_url(event)).status_code == 403
        response = client.post(edit_url(event), data=form_data(title="Hijacked"))
        assert response.status_code == 403
        assert why in response.get_data(as_text=True)
    assert load_event(event.id).title == "Mine"


def test_edit_needs_csrf(organizer, make_event, load_event):
    client, user = organizer
    event = make_event(organizer=user, title="Mine")
    response = client.post(edit_url(event), data=form_data(title="Changed"), csrf=False)
    assert response.status_code == 400
    assert load_event(event.id).title == "Mine"


def test_edit_an_unknown_event_is_404(organizer):
    client, _ = organizer
    assert client.get("/organizer/events/999999/edit").status_code == 404
    assert client.post("/organizer/events/999999/edit", data=form_data()).status_code == 404
