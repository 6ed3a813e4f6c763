"""The event list and the event page, as a full page and as the htmx panel fragment."""

from __future__ import annotations

from datetime import timedelta

REGISTER_BUTTON = '<button class="button primary" type="submit">Register</button>'
CANCEL_BUTTON = '<button class="button secondary" type="submit">Cancel registration</button>'
REGISTERED = "<strong>You are already registered</strong>"
FULL = "<strong>This event is full</strong>"
PANEL_OPEN_TAG = '<section id="registration-panel"'


def text(response) -> str:
    return response.get_data(as_text=True)


def main_of(html: str) -> str:
    """The page's own content, without the navigation (which links everywhere)."""
    return html.split('<main id="main" class="container">', 1)[1].split("</main>", 1)[0]


# --- / -----------------------------------------------------------------------------

def test_index_lists_upcoming_events_soonest_first_with_seats_left(client, make_event,
                                                                   make_client, make_user):
    later = make_event(capacity=5, starts_in=timedelta(days=20), title="Later event")
    soon = make_event(capacity=3, starts_in=timedelta(days=2), title="Soon event")
    middle = make_event(capacity=1, starts_in=timedelta(days=9), title="Middle event")
    make_event(starts_in=timedelta(days=-3), title="Past event")
    # One seat of "Soon" taken, "Middle" full.
    for event in (soon, middle):
        other = make_client()
        other.login(make_user().email)
        assert other.post(f"/events/{event.id}/register").status_code == 303

    response = client.get("/")
    assert response.status_code == 200
    page = main_of(text(response))
    assert "Past event" not in page
    positions = [page.index(f">{e.title}</a>") for e in (soon, middle, later)]
    assert positions == sorted(positions)
    assert f'<a href="/events/{soon.id}">Soon event</a>' in page
    assert "2 of 3 seats left" in page
    assert "5 of 5 seats left" in page
    assert 'class="badge badge-full">Full</span>' in page
    assert page.count("seats left") == 2


def test_index_without_events_says_so(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "No upcoming events yet." in text(response)


# --- /events/<id> ---------------------------------------------------------------

def test_event_page_full_page_shows_details_and_panel(client, make_event, make_user):
    organizer = make_user(name="Olivia Host", email="olivia@example.org", organizer=True)
    event = make_event(capacity=4, title="Pottery night", location="Studio 9",
                       organizer=organizer)
    response = client.get(f"/events/{event.id}")
    body = text(response)
    assert response.status_code == 200
    assert "<html" in body
    assert "<h1>Pottery night</h1>" in body
    assert "<dd>Studio 9</dd>" in body
    assert "Olivia Host" in body
    assert '<a href="mailto:olivia@example.org">olivia@example.org</a>' in body
    assert body.count('id="registration-panel"') == 1
    assert REGISTER_BUTTON in body
    assert "4 seats left · you will be asked to sign in first." in body
    assert "HX-Request" in response.vary


def test_event_page_as_htmx_fragment_is_the_panel_alone(client, make_event):
    event = make_event(capacity=4, title="Pottery night")
    response = client.get(f"/events/{event.id}", htmx=True)
    body = text(response).strip()
    assert response.status_code == 200
    assert "<html" not in body
    assert body.startswith(PANEL_OPEN_TAG)
    assert body.endswith("</section>")
    assert body.count('id="registration-panel"') == 1
    assert "Pottery night" not in body
    assert REGISTER_BUTTON in body
    assert "HX-Request" in response.vary


def test_history_restore_gets_the_full_page(client, make_event):
    event = make_event()
    response = client.get(f"/events/{event.id}", htmx=True,
                          headers={"HX-History-Restore-Request": "true"})
    assert "<html" in text(response)


def test_panel_open_for_a_signed_in_person(signed_in, make_event):
    client, _user = signed_in
    event = make_event(capacity=1)
    for htmx in (False, True):
        body = text(client.get(f"/events/{event.id}", htmx=htmx))
        assert REGISTER_BUTTON in body
        assert f'hx-post="/events/{event.id}/register"' in body
        assert f'action="/events/{event.id}/register" method="post"' in body
        assert "1 seat left." in body
        assert REGISTERED not in body
        assert FULL not in body


def test_panel_registered(signed_in, make_event):
    client, _user = signed_in
    event = make_event(capacity=3)
    assert client.post(f"/events/{event.id}/register").status_code == 303
    for htmx in (False, True):
        body = text(client.get(f"/events/{event.id}", htmx=htmx))
        assert REGISTERED in body
        assert CANCEL_BUTTON in body
        assert f'hx-post="/events/{event.id}/cancel"' in body
        assert REGISTER_BUTTON not in body


def test_panel_full_for_someone_else(signed_in, make_event, make_client, make_user):
    client, _user = signed_in
    event = make_event(capacity=1)
    other = make_client()
    other.login(make_user().email)
    assert other.post(f"/events/{event.id}/register").status_code == 303
    for htmx in (False, True):
        body = text(client.get(f"/events/{event.id}", htmx=htmx))
        assert FULL in body
        assert REGISTER_BUTTON not in body
        assert CANCEL_BUTTON not in body
    # The one who holds the last seat still sees their own registration, not "full".
    assert REGISTERED in text(other.get(f"/events/{event.id}", htmx=True))


def test_panel_full_for_anonymous(client, make_event, make_client, make_user):
    event = make_event(capacity=1)
    other = make_client()
    other.login(make_user().email)
    other.post(f"/events/{event.id}/register")
    body = text(client.get(f"/events/{event.id}", htmx=True))
    assert FULL in body
    assert REGISTER_BUTTON not in body


def test_panel_closed_once_the_event_started(signed_in, make_event):
    client, _user = signed_in
    event = make_event(starts_in=timedelta(hours=-1))
    body = text(client.get(f"/events/{event.id}", htmx=True))
    assert "<strong>Registration is closed</strong>" in body
    assert REGISTER_BUTTON not in body


def test_unknown_event_is_a_404_page(client):
    response = client.get("/events/987654")
    body = text(response)
    assert response.status_code == 404
    assert "<html" in body
    assert "<h1>Not found</h1>" in body
    assert "That event does not exist." in body


def test_unknown_event_as_htmx_is_a_notice(client):
    response = client.get("/events/987654", htmx=True)
    body = text(response)
    assert response.status_code == 404
    assert "<html" not in body
    assert "That event does not exist." in body
    assert response.headers["HX-Retarget"] == "#messages"


def test_non_numeric_event_id_is_a_404(client):
    assert client.get("/events/abc").status_code == 404
