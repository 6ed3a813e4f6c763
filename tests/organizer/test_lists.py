"""The organizer's home, the attendee list and waitlist, CSV exports and cancelling on behalf."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy import text as sql

from webapp.organizer.exports import safe_cell

CSRF_MESSAGE = "Your form expired or was sent from elsewhere. Reload the page and try again."


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def main_of(body: str) -> str:
    return body.split('<main id="main" class="container">', 1)[1].split("</main>", 1)[0]


def rows_of(body: str, prefix: str) -> list[list[str]]:
    """The cells of the table rows whose id starts with `prefix` (attendee-, waitlisted-)."""
    rows = re.findall(rf'<tr id="{prefix}\d+">(.*?)</tr>', body, re.S)
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in
             re.findall(r"<td>(.*?)</td>", row, re.S)] for row in rows]


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))


@pytest.fixture
def full_event(organizer, make_event, register_people):
    """The organizer's event: capacity 2, waitlist on, 2 confirmed then 3 waiting."""
    client, user = organizer
    event = make_event(organizer=user, capacity=2, waitlist_enabled=True, title="Jazz night")
    people = register_people(event, 5)
    return client, event, people


# --- home ---------------------------------------------------------------------------------

def test_home_lists_own_events_with_counts_and_links(organizer, make_event, register_people):
    client, user = organizer
    soon = make_event(organizer=user, capacity=2, waitlist_enabled=True, waitlist_capacity=3,
                      title="Soon", starts_in=timedelta(days=1))
    later = make_event(organizer=user, capacity=10, title="Later",
                       starts_in=timedelta(days=30))
    past = make_event(organizer=user, title="Done", starts_in=timedelta(days=-3))
    make_event(title="Someone else's")
    register_people(soon, 3)

    response = client.get("/organizer/")
    body = main_of(text(response))
    assert response.status_code == 200
    assert "Someone else's" not in body
    assert body.index(">Soon<") < body.index(">Later<") < body.index("Past events") < \
        body.index(">Done<")
    assert "2 / 2 confirmed" in body
    assert "1 waitlisted (limit 3)" in body
    assert "0 / 10 confirmed" in body
    for event in (soon, later, past):
        for url in (f"/organizer/events/{event.id}", f"/organizer/events/{event.id}/edit",
                    f"/organizer/events/{event.id}/attendees.csv",
                    f"/organizer/events/{event.id}/waitlist.csv", f"/events/{event.id}"):
            assert f'href="{url}"' in body
    assert 'href="/organizer/events/new"' in body


def test_home_empty(organizer):
    client, _ = organizer
    assert "You have no upcoming events." in text(client.get("/organizer/"))


def test_home_htmx_is_the_main_block(organizer):
    client, _ = organizer
    response = client.get("/organizer/", htmx=True)
    assert response.status_code == 200
    assert "<html" not in text(response)
    assert "Your events" in text(response)
    assert "HX-Request" in response.vary


def test_organizers_see_the_way_in_attendees_do_not(organizer, make_client, make_user,
                                                    make_event):
    client, user = organizer
    nav = '<a href="/organizer/">Organizer</a>'
    assert nav in text(client.get("/"))
    assert 'href="/organizer/events/new"' in text(client.get("/dashboard"))
    mine = make_event(organizer=user)
    assert f'href="/organizer/events/{mine.id}">Manage this event' in \
        text(client.get(f"/events/{mine.id}"))
    attendee = make_client()
    attendee.login(make_user().email)
    assert nav not in text(attendee.get("/"))
    assert "/organizer/" not in text(attendee.get("/dashboard"))
    assert "Manage this event" not in text(attendee.get(f"/events/{mine.id}"))
    assert attendee.get("/organizer/").status_code == 403


# --- lists --------------------------------------------------------------------------------

def test_lists_in_order_with_registration_times(app, full_event):
    client, event, people = full_event
    # Registration times out of id order: the list follows the time, not the id.
    with app.app_context():
        from webapp.extensions import db

        first = datetime(2030, 1, 1, 9, 0, 5, tzinfo=UTC)
        db.session.execute(sql("UPDATE registrations SET registered_at = :t "
                               "WHERE event_id = :e AND user_id = :u"),
                           [{"t": first + timedelta(minutes=1), "e": event.id, "u": people[0].id},
                            {"t": first, "e": event.id, "u": people[1].id}])
        db.session.commit()
    response = client.get(f"/organizer/events/{event.id}")
    body = text(response)
    assert response.status_code == 200
    assert rows_of(body, "attendee-") == [
        ["1", people[1].name, people[1].email, "2030-01-01 09:00:05 UTC", "Cancel for them"],
        ["2", people[0].name, people[0].email, "2030-01-01 09:01:05 UTC", "Cancel for them"],
    ]
    waiting = rows_of(body, "waitlisted-")
    assert [(r[0], r[1]) for r in waiting] == [("1", people[2].name), ("2", people[3].name),
                                               ("3", people[4].name)]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", r[3]) for r in waiting)
    assert '<time datetime="2030-01-01T09:00:05+00:00">' in body
    assert "2 / 2 confirmed" in body
    assert "3 waiting" in body


def test_lists_when_empty_and_waitlist_off(organizer, make_event):
    client, user = organizer
    event = make_event(organizer=user)
    body = text(client.get(f"/organizer/events/{event.id}"))
    assert "Nobody has registered yet." in body
    assert "Nobody is waiting." in body
    assert "The waitlist is off" in body


def test_lists_page_and_fragment(full_event):
    client, event, _ = full_event
    page = text(client.get(f"/organizer/events/{event.id}"))
    assert "<html" in page
    fragment = client.get(f"/organizer/events/{event.id}", htmx=True)
    assert "<html" not in text(fragment)
    assert 'id="registration-lists"' in text(fragment)


def test_lists_are_for_the_owner_only(full_event, make_client, make_user, client):
    _, event, _ = full_event
    for person in (make_user(organizer=True), make_user()):
        other = make_client()
        other.login(person.email)
        for path in ("", "/attendees.csv", "/waitlist.csv"):
            response = other.get(f"/organizer/events/{event.id}{path}")
            assert response.status_code == 403, path
            assert "@example.org" not in text(response)
    anonymous = make_client()
    response = anonymous.get(f"/organizer/events/{event.id}/attendees.csv")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login?next=")


def test_unknown_event_is_404(organizer):
    client, _ = organizer
    for path in ("", "/attendees.csv", "/waitlist.csv", "/registrations/1/cancel"):
        assert client.get(f"/organizer/events/999999{path}").status_code == 404


# --- CSV ----------------------------------------------------------------------------------

def test_attendees_csv(full_event):
    client, event, people = full_event
    response = client.get(f"/organizer/events/{event.id}/attendees.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="event-{event.id}-attendees.csv"'
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_data().count(b"\r\n") == 3  # RFC 4180 line ends
    rows = read_csv(response)
    assert rows[0] == ["Number", "Name", "Email", "Status", "Registered at (UTC)"]
    assert [r[:4] for r in rows[1:]] == [["1", people[0].name, people[0].email, "confirmed"],
                                         ["2", people[1].name, people[1].email, "confirmed"]]
    for row in rows[1:]:
        assert datetime.fromisoformat(row[4]).utcoffset() == timedelta(0)
        assert row[4].endswith("+00:00")


def test_waitlist_csv_in_queue_order(full_event):
    client, event, people = full_event
    response = client.get(f"/organizer/events/{event.id}/waitlist.csv")
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="event-{event.id}-waitlist.csv"'
    rows = read_csv(response)
    assert rows[0] == ["Position", "Name", "Email", "Status", "Registered at (UTC)"]
    assert [r[:4] for r in rows[1:]] == [
        [str(n), p.name, p.email, "waitlisted"] for n, p in enumerate(people[2:], start=1)]


def test_empty_csv_has_the_header(organizer, make_event):
    client, user = organizer
    event = make_event(organizer=user)
    assert read_csv(client.get(f"/organizer/events/{event.id}/waitlist.csv")) == [
        ["Position", "Name", "Email", "Status", "Registered at (UTC)"]]


def test_csv_cells_cannot_run_formulas(organizer, make_event, make_user, app):
    from webapp.registrations.services import register

    client, user = organizer
    event = make_event(organizer=user, capacity=10)
    sneaky = [
        make_user(name='=HYPERLINK("http://evil.example","click")', email="a@example.org"),
        make_user(name="+1+1", email="-2+3@example.org"),
        make_user(name="@SUM(A1:A9)", email="=cmd@example.org"),
        make_user(name='Quote "me", please', email="plain@example.org"),
    ]
    with app.app_context():
        for person in sneaky:
            register(event.id, person.id)
    rows = read_csv(client.get(f"/organizer/events/{event.id}/attendees.csv"))
    assert [r[1:3] for r in rows[1:]] == [
        ['\'=HYPERLINK("http://evil.example","click")', "a@example.org"],
        ["'+1+1", "'-2+3@example.org"],
        ["'@SUM(A1:A9)", "'=cmd@example.org"],
        ['Quote "me", please', "plain@example.org"],
    ]
    for row in rows[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)


@pytest.mark.parametrize(("value", "expected"), [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'\tx"),
    ("\rx", "'\rx"), ("a=b", "a=b"), ("", ""), (None, ""), (3, "3"), ("O'Brien", "O'Brien"),
])
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


# --- cancelling on behalf -----------------------------------------------------------------

def cancel_url(event, person) -> str:
    return f"/organizer/events/{event.id}/registrations/{person.id}/cancel"


def statuses(app, event_id) -> dict[int, tuple[str, int | None]]:
    from webapp.extensions import db
    from webapp.registrations.models import Registration

    with app.app_context():
        return {r.user_id: (r.status, r.position) for r in db.session.scalars(
            select(Registration).where(Registration.event_id == event_id))}


def test_cancel_on_behalf_promotes_the_head_of_the_waitlist(app, full_event, counts):
    client, event, people = full_event
    response = client.post(cancel_url(event, people[0]))
    assert response.status_code == 303
    assert response.headers["Location"] == f"/organizer/events/{event.id}"
    assert statuses(app, event.id) == {
        people[0].id: ("cancelled", None), people[1].id: ("confirmed", None),
        people[2].id: ("confirmed", None),  # the head of the queue got the seat
        people[3].id: ("waitlisted", 1), people[4].id: ("waitlisted", 2),
    }
    after = counts(event.id)
    assert (after["confirmed_count"], after["confirmed"], after["waitlisted"]) == (2, 2, 2)
    assert after["activity"]["promoted"] == 1
    page = text(client.get(response.headers["Location"]))
    assert (f"{people[0].name}'s registration is cancelled. "
            f"Moved up from the waitlist: {people[2].name}.") in page
    assert [r[1] for r in rows_of(page, "attendee-")] == [people[1].name, people[2].name]
    with app.app_context():
        from webapp.extensions import db

        action = db.session.scalar(sql(
            "SELECT action FROM activity_log WHERE user_id = :u AND outcome = 'cancelled'"),
            {"u": people[0].id})
    assert action == "organizer_cancel"


def test_cancel_a_waitlist_place_closes_the_gap(app, full_event):
    client, event, people = full_event
    response = client.post(cancel_url(event, people[3]))
    assert response.status_code == 303
    assert statuses(app, event.id)[people[4].id] == ("waitlisted", 2)
    assert statuses(app, event.id)[people[2].id] == ("waitlisted", 1)
    assert f"{people[3].name}'s waitlist place is cancelled." in \
        text(client.get(f"/organizer/events/{event.id}"))


def test_cancel_htmx_answers_the_lists_fragment(app, full_event):
    client, event, people = full_event
    response = client.post(cancel_url(event, people[1]), htmx=True)
    body = text(response).strip()
    assert response.status_code == 200
    assert "<html" not in body
    assert body.startswith('<div id="registration-lists"')
    assert f"Moved up from the waitlist: {people[2].name}." in body
    assert [r[1] for r in rows_of(body, "attendee-")] == [people[0].name, people[2].name]
    assert [r[1] for r in rows_of(body, "waitlisted-")] == [people[3].name, people[4].name]
    assert "HX-Request" in response.vary


def test_cancel_links_confirm_first(full_event):
    client, event, people = full_event
    body = client.get(f"/organizer/events/{event.id}").get_data(as_text=True)
    url = cancel_url(event, people[0])
    link = re.search(rf'<a href="{url}" hx-post="{url}"[^>]*>', body).group(0)
    assert 'hx-confirm="Cancel the registration of' in link
    assert 'hx-target="#registration-lists"' in link


def test_cancel_confirm_page_without_javascript(app, full_event):
    client, event, people = full_event
    response = client.get(cancel_url(event, people[0]))
    body = text(response)
    assert response.status_code == 200
    assert f"<strong>{people[0].name}</strong>" in body
    assert "The seat goes to the first person on the waitlist." in body
    assert f'<form method="post" action="{cancel_url(event, people[0])}">' in body
    assert 'name="csrf_token"' in body
    # Looking is not cancelling.
    assert statuses(app, event.id)[people[0].id] == ("confirmed", None)


def test_cancel_someone_without_a_place(app, full_event, make_user):
    client, event, people = full_event
    stranger = make_user()
    assert client.get(cancel_url(event, stranger)).status_code == 404
    response = client.post(cancel_url(event, stranger))
    assert response.status_code == 303
    assert f"{stranger.name} has no seat or waitlist place here any more." in \
        text(client.get(response.headers["Location"]))
    # Twice: the second finds nothing to cancel and says so.
    assert client.post(cancel_url(event, people[0])).status_code == 303
    again = client.post(cancel_url(event, people[0]), htmx=True)
    assert again.status_code == 200
    assert "has no seat or waitlist place here any more." in text(again)
    assert statuses(app, event.id)[people[2].id] == ("confirmed", None)  # one promotion only


def test_cancel_needs_csrf(app, full_event):
    client, event, people = full_event
    for htmx in (False, True):
        response = client.post(cancel_url(event, people[0]), csrf=False, htmx=htmx)
        assert response.status_code == 400
        assert CSRF_MESSAGE in text(response)
    assert statuses(app, event.id)[people[0].id] == ("confirmed", None)


def test_only_the_owner_cancels_on_behalf(app, full_event, make_client, make_user):
    _, event, people = full_event
    for intruder in (make_user(organizer=True), make_user(), people[1]):
        other = make_client()
        other.login(intruder.email)
        assert other.get(cancel_url(event, people[0])).status_code == 403
        assert other.post(cancel_url(event, people[0])).status_code == 403
    response = make_client().post(cancel_url(event, people[0]), htmx=True)
    assert response.headers["HX-Redirect"].startswith("/login")
    assert statuses(app, event.id)[people[0].id] == ("confirmed", None)
