"""People signed in to a live server through the real /login form, with htmx's CSRF token."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

from tests.support.app import PASSWORD
from tests.support.clients import CSRF_IN_PAGE
from tests.support.races import HTTP_TIMEOUT as TIMEOUT

CSRF_INPUT = re.compile(r'<input[^>]*\bname="csrf_token"[^>]*>')
VALUE = re.compile(r'\bvalue="([^"]+)"')


@dataclass
class Person:
    """One signed-in browser: its cookies and the CSRF token its pages carry."""

    email: str
    http: requests.Session
    csrf: str


def form_csrf(html: str) -> str:
    tag = CSRF_INPUT.search(html)
    assert tag, "no csrf_token hidden input on the page"
    return VALUE.search(tag.group(0)).group(1)


def page_csrf(html: str) -> str:
    match = CSRF_IN_PAGE.search(html)
    assert match, "no X-CSRFToken in the page's hx-headers"
    return match.group(1)


def sign_in(base_url: str, email: str, event_id: int, password: str = PASSWORD) -> Person:
    """Sign in through the form, then open the event page and take its htmx CSRF token."""
    http = requests.Session()
    login = http.get(f"{base_url}/login", timeout=TIMEOUT)
    assert login.status_code == 200, login.text
    signed = http.post(f"{base_url}/login", timeout=TIMEOUT, allow_redirects=False,
                       data={"email": email, "password": password,
                             "csrf_token": form_csrf(login.text)})
    assert signed.status_code == 303, (signed.status_code, signed.text[:500])
    page = http.get(f"{base_url}/events/{event_id}", timeout=TIMEOUT)
    assert page.status_code == 200, page.text[:500]
    assert "Sign out" in page.text, "the session cookie did not sign the person in"
    return Person(email, http, page_csrf(page.text))


def sign_in_all(base_url: str, emails: list[str], event_id: int) -> list[Person]:
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(lambda e: sign_in(base_url, e, event_id), emails))


def same_person_tabs(person: Person, base_url: str, event_id: int, tabs: int) -> list[Person]:
    """The same signed-in person in several tabs: one cookie, one connection per tab."""
    copies = []
    for _ in range(tabs):
        http = requests.Session()
        http.cookies.update(person.http.cookies)
        page = http.get(f"{base_url}/events/{event_id}", timeout=TIMEOUT)  # opens the connection
        assert page.status_code == 200 and "Register" in page.text, page.text[:500]
        copies.append(Person(person.email, http, page_csrf(page.text)))
    return copies


def click_register(person: Person, base_url: str, event_id: int) -> Callable[[], requests.Response]:
    """The panel's htmx POST, ready to be released with the others."""
    def click() -> requests.Response:
        return person.http.post(f"{base_url}/events/{event_id}/register", timeout=TIMEOUT,
                                headers={"HX-Request": "true", "X-CSRFToken": person.csrf,
                                         "HX-Current-URL": f"{base_url}/events/{event_id}"})

    return click
