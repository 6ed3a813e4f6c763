"""Flashed messages show on the page that follows the action, for htmx as without it, never later.

htmx answers a saved form with HX-Location; htmx then GETs the next page as a
fragment of its main area. The message must come with that fragment (swapped
out of band into #messages), not with whatever full page is loaded next.
"""

from __future__ import annotations

import html
import json
import re

from tests.support.clients import CSRF_IN_PAGE
from tests.support.samples import form_data

BASE = "http://localhost"
CREATED = "“Pottery night” is created."
MESSAGES_OOB = re.compile(r'<div id="messages"[^>]*hx-swap-oob="innerHTML"[^>]*>(.*?)</div>',
                          re.S)


def htmx_headers(page: str, target: str, **extra) -> dict:
    """What htmx 2 sends with a request made from `page` for the element `target`."""
    return {"HX-Request": "true", "HX-Current-URL": BASE + page, "HX-Target": target, **extra}


class Browser:
    """Requests as the page's htmx makes them, one CSRF token read once (like a loaded page)."""

    def __init__(self, client) -> None:
        self.http = client.http
        self.token = CSRF_IN_PAGE.search(self.http.get("/").get_data(as_text=True)).group(1)

    def submit(self, page: str, data: dict, *, htmx: bool = True):
        headers = {"X-CSRFToken": self.token}
        if htmx:
            headers.update(htmx_headers(page, "event-form", **{"HX-Trigger": "event-form"}))
        return self.http.post(page, data=data, headers=headers)

    def follow_hx_location(self, response, page: str):
        """The GET htmx makes for an HX-Location answer: the target's content only."""
        location = json.loads(response.headers["HX-Location"])
        return self.http.get(location["path"],
                             headers=htmx_headers(page, location["target"].lstrip("#")))

    def page(self, path: str) -> str:
        return html.unescape(self.http.get(path).get_data(as_text=True))


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def messages_oob(body: str) -> list[str]:
    """The notices of the out-of-band #messages region in an htmx answer (none: [])."""
    found = MESSAGES_OOB.findall(body)
    assert len(found) <= 1, body
    return re.findall(r'<p class="notice[^"]*">(.*?)</p>', found[0]) if found else []


def test_created_shows_with_the_page_htmx_lands_on_and_never_again(organizer, events_of):
    client, user = organizer
    browser = Browser(client)
    response = browser.submit("/organizer/events/new", form_data())
    assert response.status_code == 200
    [event] = events_of(user.id)
    landed = browser.follow_hx_location(response, "/organizer/events/new")
    body = text(landed)
    assert landed.status_code == 200
    assert "<html" not in body
    assert 'id="registration-lists"' in body
    assert messages_oob(body) == [CREATED]
    # Neither the next full page nor the next fragment brings it back.
    assert CREATED not in browser.page("/organizer/")
    assert CREATED not in text(browser.http.get(
        f"/organizer/events/{event.id}",
        headers=htmx_headers(f"/organizer/events/{event.id}", "main")))


def test_saved_never_shows_above_another_events_form_errors(organizer, make_event):
    client, user = organizer
    first, second = make_event(organizer=user), make_event(organizer=user)
    browser = Browser(client)
    page = f"/organizer/events/{first.id}/edit"
    response = browser.submit(page, form_data(title="Renamed"))
    landed = browser.follow_hx_location(response, page)
    assert messages_oob(text(landed)) == ["Saved."]
    # Then the other event's form, sent without JavaScript, with a mistake: a full page.
    refused = browser.submit(f"/organizer/events/{second.id}/edit", form_data(capacity="0"),
                             htmx=False)
    assert refused.status_code == 422
    assert "<html" in text(refused)
    assert "Saved." not in text(refused)


def test_without_javascript_the_message_is_on_the_redirect_target_once(organizer):
    client, _ = organizer
    browser = Browser(client)
    response = browser.submit("/organizer/events/new", form_data(), htmx=False)
    assert response.status_code == 303
    landed = browser.page(response.headers["Location"])
    assert landed.count(CREATED) == 1
    assert 'hx-swap-oob' not in landed  # a full page has the region in place
    assert CREATED not in browser.page(response.headers["Location"])


def test_a_fragment_without_messages_leaves_the_region_alone(organizer, make_event):
    client, user = organizer
    event = make_event(organizer=user)
    browser = Browser(client)
    response = browser.submit(f"/organizer/events/{event.id}/edit", form_data(title=""))
    assert response.status_code == 422
    assert messages_oob(text(response)) == []
    assert text(response).strip().endswith("</form>")
