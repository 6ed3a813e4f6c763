"""Bug 4: every answer of the panel updates the seat figure beside it (out of band), so the
panel and the details never disagree ("This event is full" beside "1 of 1 seats left")."""

from __future__ import annotations

import re


def seat_figure(html: str, event_id: int) -> tuple[str, bool]:
    """The seat figure's text, and whether it is an out-of-band swap."""
    found = re.search(rf'<span id="seats-{event_id}" class="[^"]*"( hx-swap-oob="true")?>'
                      r"([^<]*)</span>", html)
    assert found, f"no seat figure for event {event_id} in:\n{html}"
    return found.group(2), bool(found.group(1))


def test_a_refused_click_says_full_beside_the_panel_too(
        signed_in, make_event, make_client, make_user):
    client, _user = signed_in
    event = make_event(capacity=1)
    assert seat_figure(client.get(f"/events/{event.id}").get_data(as_text=True),
                       event.id) == ("1 of 1 seats left", False)
    other = make_client()
    other.login(make_user().email)
    assert other.post(f"/events/{event.id}/register").status_code == 303

    answer = client.post(f"/events/{event.id}/register", htmx=True).get_data(as_text=True)
    assert "<strong>This event is full</strong>" in answer
    assert seat_figure(answer, event.id) == ("Full", True)


def test_every_panel_answer_carries_the_figure(signed_in, make_event, make_user, make_client):
    client, _user = signed_in
    event = make_event(capacity=3, waitlist_enabled=True)
    client.post(f"/events/{event.id}/register")
    again = client.post(f"/events/{event.id}/register", htmx=True).get_data(as_text=True)
    assert "You are already registered" in again
    assert seat_figure(again, event.id) == ("2 of 3 seats left", True)
    left = client.post(f"/events/{event.id}/cancel", htmx=True).get_data(as_text=True)
    assert seat_figure(left, event.id) == ("3 of 3 seats left", True)
    # A waitlist place: the event is full, and the figure says so.
    small = make_event(capacity=1, waitlist_enabled=True)
    other = make_client()
    other.login(make_user().email)
    other.post(f"/events/{small.id}/register")
    joined = client.post(f"/events/{small.id}/register", htmx=True).get_data(as_text=True)
    assert "You are number 1 on the waitlist" in joined
    assert seat_figure(joined, small.id) == ("Full", True)
