"""The waitlist in the browser: Join waitlist, the position, leaving, promotion, "full"."""

import pytest


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def full_event(make_event, make_user, app):
    """An event with 1 seat, taken, and a waitlist of 2."""
    from webapp.registrations import services

    event = make_event(capacity=1, waitlist_enabled=True, waitlist_capacity=2)
    with app.app_context():
        services.register(event.id, make_user().id)
    return event


def test_full_event_with_open_waitlist_offers_join_waitlist(signed_in, full_event):
    client, _user = signed_in
    for htmx in (False, True):
        body = text(client.get(f"/events/{full_event.id}", htmx=htmx))
        assert ">Join waitlist</button>" in body
        assert "This event is full" not in body
        assert ">Register</button>" not in body
        assert ("<html" in body) is not htmx


def test_joining_shows_the_position_and_a_way_to_leave(signed_in, full_event, counts):
    client, _user = signed_in
    response = client.post(f"/events/{full_event.id}/register", htmx=True)
    body = text(response)
    assert response.status_code == 200
    assert "HX-Location" not in response.headers  # no confirmation page for a waitlist place
    assert "You are number 1 on the waitlist" in body
    assert ">Leave waitlist</button>" in body
    assert 'id="registration-panel"' in body and "<html" not in body
    assert counts(full_event.id)["waitlisted"] == 1

    page = text(client.get(f"/events/{full_event.id}"))
    assert "You are number 1 on the waitlist" in page
    mine = text(client.get("/me/events"))
    assert "Waitlist #1" in mine

    left = client.post(f"/events/{full_event.id}/cancel", htmx=True)
    assert "You left the waitlist." in text(left)
    assert ">Join waitlist</button>" in text(left)
    assert counts(full_event.id)["waitlisted"] == 0


def test_plain_form_join_redirects_to_the_event_page(signed_in, full_event):
    client, _user = signed_in
    response = client.post(f"/events/{full_event.id}/register")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/events/{full_event.id}"
    assert "You are number 1 on the waitlist" in text(client.get(f"/events/{full_event.id}"))


def test_when_the_waitlist_is_full_too_the_event_is_full(make_client, make_user, full_event):
    clients = []
    for _ in range(3):
        c = make_client()
        c.login(make_user().email)
        clients.append(c)
    for c in clients[:2]:
        assert "on the waitlist" in text(c.post(f"/events/{full_event.id}/register", htmx=True))
    third = clients[2]
    assert "This event is full" in text(third.get(f"/events/{full_event.id}"))
    assert "Join waitlist" not in text(third.get(f"/events/{full_event.id}"))
    response = third.post(f"/events/{full_event.id}/register", htmx=True)
    assert "This event is full" in text(response)


def test_the_promoted_person_sees_registered_next_time(make_client, make_user, make_event,
                                                        counts):
    event = make_event(capacity=1, waitlist_enabled=True)
    seated, waiting = make_client(), make_client()
    seated.login(make_user().email)
    waiting.login(make_user().email)
    assert seated.post(f"/events/{event.id}/register", htmx=True).headers["HX-Location"]
    assert "number 1" in text(waiting.post(f"/events/{event.id}/register", htmx=True))

    assert ">Register</button>" not in text(seated.post(f"/events/{event.id}/cancel", htmx=True))

    page = text(waiting.get(f"/events/{event.id}"))
    assert "You are already registered" in page
    assert "Cancel registration" in page
    state = counts(event.id)
    assert (state["confirmed"], state["waitlisted"], state["confirmed_count"]) == (1, 0, 1)
    assert state["activity"]["promoted"] == 1
