"""What the load tests send and how they judge each answer (shared by Locust, bench and tests).

Every answer is classified by its content, not only its status: an htmx
registration either moves the browser to the confirmation page (HX-Location)
or swaps in a panel that says why not. Anything else is "wrong" and counts as
a failure, even with a 200.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from urllib.parse import urlencode

# Texts people and tests rely on (SPEC, "Pages").
FULL = "This event is full"
JOIN_WAITLIST = "Join waitlist"
ALREADY = "You are already registered"
ON_WAITLIST = re.compile(r"You are number (\d+) on the waitlist")
MY_EVENTS = "My Registered Events"
PANEL = 'id="registration-panel"'
CANCELLED_TEXTS = ("Your registration is cancelled", "You left the waitlist",
                   "You are not registered for this event")

CSRF_IN_PAGE = re.compile(r'"X-CSRFToken": "([^"]+)"')
CSRF_INPUT = re.compile(r'<input[^>]*\bname="csrf_token"[^>]*\bvalue="([^"]+)"')

# Environment variables the scenarios read (the bench and the smoke test set them).
ENV_PREFIX = "TURNOUT_LOAD_"
DEFAULT_PASSWORD = "bench-password-2026"  # noqa: S105 - throwaway accounts of a bench database
EMAIL_FORMAT = "person{:06d}@bench.turnout.test"

# Outcomes of one registration attempt.
CONFIRMED, WAITLISTED, FULL_ANSWER, ALREADY_ANSWER, WRONG = (
    "confirmed", "waitlisted", "full", "already", "wrong")


def setting(name: str, default: str | None = None) -> str:
    """A scenario parameter from the environment (TURNOUT_LOAD_<NAME>)."""
    value = os.environ.get(ENV_PREFIX + name, default)
    if value is None:
        raise RuntimeError(f"set {ENV_PREFIX}{name}")
    return value


def email_of(index: int) -> str:
    return EMAIL_FORMAT.format(index)


def page_csrf(html: str) -> str | None:
    """The token htmx sends as X-CSRFToken (from <body hx-headers=...>)."""
    match = CSRF_IN_PAGE.search(html or "")
    return match.group(1) if match else None


def form_csrf(html: str) -> str | None:
    """The hidden csrf_token of a plain form (the sign-in page)."""
    match = CSRF_INPUT.search(html or "")
    return match.group(1) if match else None


def hx_location_path(headers: Mapping[str, str]) -> str | None:
    raw = _header(headers, "HX-Location")
    if raw is None:
        return None
    raw = raw.strip()
    if raw.startswith("{"):
        try:
            return json.loads(raw).get("path")
        except ValueError:
            return None
    return raw


def classify_htmx_register(status: int, headers: Mapping[str, str], text: str,
                           event_id: int) -> str:
    """The answer to the panel's htmx POST /events/<id>/register, as a person would read it."""
    if status != 200:
        return WRONG
    location = hx_location_path(headers)
    if location is not None:
        return CONFIRMED if location == f"/events/{event_id}/confirmation" else WRONG
    if PANEL not in text:
        return WRONG
    if FULL in text or JOIN_WAITLIST in text:
        return FULL_ANSWER
    if ON_WAITLIST.search(text):
        return WAITLISTED
    if ALREADY in text:
        return ALREADY_ANSWER
    return WRONG


def classify_api_register(status: int, text: str) -> str:
    """The answer to POST /api/events/<id>/registrations (SPEC, JSON API)."""
    try:
        body = json.loads(text or "null")
    except ValueError:
        return WRONG
    if not isinstance(body, dict):
        return WRONG
    if status == 201:
        if body.get("status") == CONFIRMED:
            return CONFIRMED
        if body.get("status") == WAITLISTED and isinstance(body.get("position"), int):
            return WAITLISTED
        return WRONG
    if status == 409:
        code = (body.get("error") or {}).get("code")
        return {"event_full": FULL_ANSWER, "already_registered": ALREADY_ANSWER}.get(code, WRONG)
    return WRONG


def transport_error(response) -> str | None:
    """What went wrong below HTTP (connection refused, reset, timeout), if anything."""
    error = getattr(response, "error", None)
    return f"{type(error).__name__}: {error}" if error else None


def classify_htmx_cancel(status: int, text: str) -> bool:
    return status == 200 and PANEL in text and any(t in text for t in CANCELLED_TEXTS)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


def htmx_sign_in(client, email: str, password: str, page: str, *,
                 close_after: bool = False) -> str | None:
    """Sign in through the real /login form with a Locust FastHttpSession, like a browser.

    Then open `page` and return the CSRF token htmx sends with every request
    (None, with a Locust failure recorded, when anything is off). With
    close_after, the page's connection is closed after the answer, so the next
    request opens a new one: what a browser does once the server has closed an
    idle keep-alive connection (gunicorn after `keepalive` seconds).
    """
    login = client.get("/login", name="GET /login")
    token = form_csrf(login.text or "")
    if token is None:
        return None
    with client.post(
            "/login", name="POST /login", allow_redirects=False, catch_response=True,
            data=urlencode({"email": email, "password": password, "csrf_token": token}),
            headers={"Content-Type": "application/x-www-form-urlencoded"}) as signed:
        if signed.status_code != 303:
            signed.failure(f"sign-in answered {signed.status_code}")
            return None
        signed.success()
    name = "GET /events/[id]" if page.startswith("/events/") else f"GET {page}"
    headers = {"Connection": "close"} if close_after else {}
    with client.get(page, name=name, catch_response=True, headers=headers) as answer:
        text = answer.text or ""
        csrf = page_csrf(text)
        if answer.status_code != 200 or "Sign out" not in text or csrf is None:
            answer.failure(f"{page}: not signed in, or no htmx CSRF token")
            return None
        answer.success()
    return csrf
