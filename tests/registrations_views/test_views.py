"""The registration pages over HTTP: every htmx endpoint as a fragment and as a full page."""

from __future__ import annotations

import json
from datetime import timedelta

REGISTER_BUTTON = '<button class="button primary" type="submit">Register</button>'
CANCEL_BUTTON = '<button class="button secondary" type="submit">Cancel registration</button>'
REGISTERED = "<strong>You are already registered</strong>"
FULL = "<strong>This event is full</strong>"
PANEL_OPEN_TAG = '<section id="registration-panel"'
MY_EVENTS_LINK = '<a href="/me/events">My Registered Events</a>'


def text(response) -> str:
    return response.get_data(as_text=True)


def main_of(html: str) -> str:
    """The page's own content, without the navigation (which links everywhere)."""
    return html.split('<main id="main" class="container">', 1)[1].split("</main>", 1)[0]


def assert_fragment(response) -> str:
    body = text(response)
    assert "<html" not in body
    assert "<body" not in body
    assert "HX-Request" in response.vary
    return body


def assert_full_page(response) -> str:
    body = text(response)
    assert body.lstrip().startswith("<!doctype html>")
    assert "<html" in body
    assert "HX-Request" in response.vary
    return body


# --- POST /events/<id>/register ----------------------------------------------------

def test_register_htmx_answers_hx_location_to_the_confirmation(signed_in, make_event, counts):
    client, _user = signed_in
    event = make_event(capacity=2)
    response = client.post(f"/events/{event.id}/register", htmx=True)
    assert response.status_code == 200
    assert "Location" not in response.headers
    location = json.loads(response.headers["HX-Location"])
    assert location == {"path": f"/events/{event.id}/confirmation", "target": "#main"}
    assert text(response) == ""
    assert "HX-Request" in response.vary
    assert counts(event.id)["confirmed"] == 1
    assert counts(event.id)["confirmed_count"] == 1


def test_register_plain_post_is_303_to_the_confirmation(signed_in, make_event, counts):
    client, _user = signed_in
    event = make_event(capacity=2)
    response = client.post(f"/events/{event.id}/register")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/events/{event.id}/confirmation"
    assert "HX-Location" not in response.headers
    assert "HX-Request" in response.vary
    assert counts(event.id)["confirmed"] == 1


def test_register_for_a_full_event_htmx(signed_in, make_event, make_client, make_user, counts):
    client, _user = signed_in
    event = make_event(capacity=1)
    other = make_client()
    other.login(make_user().email)
    assert other.post(f"/events/{event.id}/register").status_code == 303

    response = client.post(f"/events/{event.id}/register", htmx=True)
    body = assert_fragment(response)
    assert response.status_code == 200
    assert "HX-Location" not in response.headers
    assert body.strip().startswith(PANEL_OPEN_TAG)
    assert FULL in body
    assert "Sorry, the last seat just went." in body
    assert REGISTER_BUTTON not in body
    assert counts(event.id)["confirmed"] == 1
    assert counts(event.id)["activity"].get("rejected_full") == 1


def test_register_for_a_full_event_plain(signed_in, make_event, make_client, make_user, counts):
    client, _user = signed_in
    event = make_event(capacity=1)
    other = make_client()
    other.login(make_user().email)
    other.post(f"/events/{event.id}/register")

    response = client.post(f"/events/{event.id}/register")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/events/{event.id}"
    page = text(client.get(response.headers["Location"]))
    assert "Sorry, this event is full." in page
    assert FULL in page
    assert counts(event.id)["confirmed"] == 1


def test_double_register_htmx_says_already_registered_and_keeps_one_row(signed_in, make_event,
                                                                        counts):
    client, _user = signed_in
    event = make_event(capacity=5)
    assert client.post(f"/events/{event.id}/register", htmx=True).headers["HX-Location"]
    response = client.post(f"/events/{event.id}/register", htmx=True)
    body = assert_fragment(response)
    assert response.status_code == 200
    assert "HX-Location" not in response.headers
    assert body.strip().startswith(PANEL_OPEN_TAG)
    assert REGISTERED in body
    assert CANCEL_BUTTON in body
    after = counts(event.id)
    assert (after["confirmed"], after["confirmed_count"], after["waitlisted"]) == (1, 1, 0)


def test_double_register_plain_goes_back_to_the_event(signed_in, make_event, counts):
    client, _user = signed_in
    event = make_event(capacity=5)
    client.post(f"/events/{event.id}/register")
    response = client.post(f"/events/{event.id}/register")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/events/{event.id}"
    assert REGISTERED in text(client.get(f"/events/{event.id}"))
    assert counts(event.id)["confirmed"] == 1


def test_register_for_an_unknown_event_is_404(signed_in):
    client, _user = signed_in
    assert client.post("/events/987654/register").status_code == 404
    response = client.post("/events/987654/register", htmx=True)
    assert response.status_code == 404
    assert "<html" not in text(response)


def test_register_after_the_start_is_closed(signed_in, make_event, counts):
    client, _user = signed_in
    event = make_event(starts_in=timedelta(minutes=-5))
    body = text(client.post(f"/events/{event.id}/register", htmx=True))
    assert "<strong>Registration is closed</strong>" in body
    assert counts(event.id)["confirmed"] == 0


# --- GET /events/<id>/confirmation -----------------------------------------------------

def test_confirmation_full_page(signed_in, make_event):
    client, _user = signed_in
    event = make_event(capacity=2, title="Board games")
    client.post(f"/events/{event.id}/register")
    response = client.get(f"/events/{event.id}/confirmation")
    body = assert_full_page(response)
    assert response.status_code == 200
    assert "<title>Registered: Board games · Turnout</title>" in body
    assert "<h2>You're in!</h2>" in body
    assert "<h1>Board games</h1>" in body
    assert body.count('id="registration-panel"') == 1
    assert REGISTERED in body
    assert CANCEL_BUTTON in body
    assert MY_EVENTS_LINK in main_of(body)


def test_confirmation_htmx_is_the_main_block_only(signed_in, make_event):
    client, _user = signed_in
    event = make_event(capacity=2, title="Board games")
    client.post(f"/events/{event.id}/register", htmx=True)
    response = client.get(f"/events/{event.id}/confirmation", htmx=True)
    body = assert_fragment(response)
    assert response.status_code == 200
    assert "<title>" not in body
    assert 'class="site-header"' not in body
    assert '<main id="main"' not in body
    assert "<h2>You're in!</h2>" in body
    assert "<h1>Board games</h1>" in body
    assert body.count('id="registration-panel"') == 1
    assert REGISTERED in body
    assert CANCEL_BUTTON in body


def test_confirmation_without_a_registration_goes_to_the_event(signed_in, make_event):
    client, _user = signed_in
    event = make_event()
    response = client.get(f"/events/{event.id}/confirmation")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/events/{event.id}"


# --- POST /events/<id>/cancel ---------------------------------------------------------

def test_cancel_htmx_turns_the_panel_back_to_register(signed_in, make_event, counts):
    client, _user = signed_in
    event = make_event(capacity=2)
    client.post(f"/events/{event.id}/register", htmx=True)
    response = client.post(f"/events/{event.id}/cancel", htmx=True)
    body = assert_fragment(response)
    assert response.status_code == 200
    assert body.strip().startswith(PANEL_OPEN_TAG)
    assert REGISTER_BUTTON in body
    assert REGISTERED not in body
    assert "Your registration is cancelled and your seat is free for someone else." in body
    assert "2 seats left." in body
    after = counts(event.id)
    assert (after["confirmed"], after["cancelled"], after["confirmed_count"]) == (0, 1, 0)


def test_cancel_plain_is_303_to_the_event(signed_in, make_event, counts):
    client, _user = signed_in
    event = make_event(capacity=2)
    client.post(f"/events/{event.id}/register")
    response = client.post(f"/events/{event.id}/cancel")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/events/{event.id}"
    assert "HX-Request" in response.vary
    page = text(client.get(f"/events/{event.id}"))
    assert REGISTER_BUTTON in page
    assert "Your registration is cancelled" in page
    assert counts(event.id)["confirmed_count"] == 0


def test_cancel_without_a_registration_says_so(signed_in, make_event, counts):
    client, _user = signed_in
    event = make_event(capacity=2)
    body = text(client.post(f"/events/{event.id}/cancel", htmx=True))
    assert "You are not registered for this event." in body
    assert REGISTER_BUTTON in body
    assert counts(event.id)["cancelled"] == 0


def test_register_again_after_cancelling(signed_in, make_event, counts):
    client, _user = signed_in
    event = make_event(capacity=1)
    client.post(f"/events/{event.id}/register")
    client.post(f"/events/{event.id}/cancel")
    response = client.post(f"/events/{event.id}/register", htmx=True)
    assert json.loads(response.headers["HX-Location"])["path"] == \
        f"/events/{event.id}/confirmation"
    after = counts(event.id)
    assert (after["confirmed"], after["cancelled"], after["confirmed_count"]) == (1, 0, 1)


# --- Signed out ------------------------------------------------------------------------

def test_signed_out_register_plain_goes_to_login_and_back(client, make_user, make_event, counts):
    user = make_user()
    event = make_event()
    response = client.post(f"/events/{event.id}/register",
                           headers={"Referer": f"http://localhost/events/{event.id}"})
    assert response.status_code == 303
    login_url = response.headers["Location"]
    assert login_url == f"/login?next=/events/{event.id}"
    assert counts(event.id)["confirmed"] == 0

    assert "Please sign in first." in text(client.get(login_url))
    response = client.http.post(login_url, data={"email": user.email,
                                                 "password": "correct horse battery",
                                                 "csrf_token": client.csrf()})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/events/{event.id}"
    assert REGISTER_BUTTON in text(client.get(f"/events/{event.id}"))


def test_signed_out_register_htmx_gets_hx_redirect_to_login(client, make_user, make_event):
    user = make_user()
    event = make_event()
    response = client.post(f"/events/{event.id}/register", htmx=True,
                           headers={"HX-Current-URL": f"http://localhost/events/{event.id}"})
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == f"/login?next=/events/{event.id}"
    assert "Location" not in response.headers
    assert "HX-Request" in response.vary
    response = client.login(user.email, next_url=f"/events/{event.id}")
    assert response.headers["Location"] == f"/events/{event.id}"


def test_signed_out_register_from_elsewhere_never_sends_next_off_site(client, make_event):
    event = make_event()
    response = client.post(f"/events/{event.id}/register", htmx=True,
                           headers={"HX-Current-URL": "https://evil.example/events/1"})
    assert response.headers["HX-Redirect"] == "/login?next=/"


def test_signed_out_confirmation_goes_to_login(client, make_event):
    event = make_event()
    response = client.get(f"/events/{event.id}/confirmation")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/login?next=/events/{event.id}/confirmation"


# --- /dashboard and /me/events -------------------------------------------------------

def test_dashboard_links_to_my_registered_events(signed_in):
    client, user = signed_in
    response = client.get("/dashboard")
    body = assert_full_page(response)
    assert response.status_code == 200
    assert MY_EVENTS_LINK in main_of(body)
    assert f"<h1>Hello, {user.name}</h1>" in body


def test_my_events_lists_own_live_registrations_by_event_date(signed_in, make_event,
                                                              make_client, make_user):
    client, _user = signed_in
    third = make_event(starts_in=timedelta(days=30), title="Third by date")
    first = make_event(starts_in=timedelta(days=3), title="First by date")
    second = make_event(starts_in=timedelta(days=12), title="Second by date")
    cancelled = make_event(starts_in=timedelta(days=5), title="Cancelled one")
    someone_elses = make_event(starts_in=timedelta(days=4), title="Someone else's")
    for event in (third, first, second, cancelled):
        assert client.post(f"/events/{event.id}/register").status_code == 303
    assert client.post(f"/events/{cancelled.id}/cancel").status_code == 303
    other = make_client()
    other.login(make_user().email)
    assert other.post(f"/events/{someone_elses.id}/register").status_code == 303

    response = client.get("/me/events")
    assert response.status_code == 200
    page = main_of(assert_full_page(response))
    assert "<h1>My Registered Events</h1>" in page
    titles = [first.title, second.title, third.title]
    positions = [page.index(f'<a href="/events/{e.id}">{e.title}</a>')
                 for e in (first, second, third)]
    assert positions == sorted(positions), titles
    assert page.count('<span class="badge badge-ok">Confirmed</span>') == 3
    assert "Cancelled one" not in page
    assert "Someone else's" not in page

    dashboard = main_of(text(client.get("/dashboard")))
    assert "3 registrations." in dashboard
    assert f'Next up: <a href="/events/{first.id}">First by date</a>.' in dashboard


def test_my_events_empty(signed_in):
    client, _user = signed_in
    assert "You have no registrations yet." in text(client.get("/me/events"))


def test_signed_out_dashboard_and_my_events_redirect_to_login(client):
    for path in ("/dashboard", "/me/events"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["Location"] == f"/login?next={path}"
        response = client.get(path, htmx=True)
        assert response.status_code == 200
        assert response.headers["HX-Redirect"] == f"/login?next={path}"


def test_the_register_form_carries_an_idempotency_key_and_a_resent_form_is_one_click(
        signed_in, make_event, counts):
    """A click whose answer was lost (the network dropped it) is sent again by the browser
    with the same form: the same answer, not "already registered"."""
    import re

    client, _user = signed_in
    event = make_event(capacity=5)
    page = client.get(f"/events/{event.id}").get_data(as_text=True)
    keys = re.findall(r'name="idempotency_key" value="([0-9a-f]{32})"', page)
    assert len(keys) == 1, "the Register form carries one key"
    form = {"idempotency_key": keys[0]}

    first = client.post(f"/events/{event.id}/register", htmx=True, data=form)
    again = client.post(f"/events/{event.id}/register", htmx=True, data=form)

    assert first.headers["HX-Location"] == again.headers["HX-Location"]
    assert "/confirmation" in again.headers["HX-Location"]
    c = counts(event.id)
    assert (c["confirmed"], c["activity"]) == (1, {"confirmed": 1})
    # Another key (a new page, a new click) is another click: already registered.
    other = client.post(f"/events/{event.id}/register", htmx=True,
                        data={"idempotency_key": "f" * 32})
    assert REGISTERED in other.get_data(as_text=True)
