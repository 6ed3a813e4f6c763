"""Who may call what: every route in the url_map, four identities, one table kept here.

The test walks `app.url_map` (every rule, every method but HEAD and OPTIONS)
and calls each route as anonymous, an attendee, another organizer and the
event's own organizer, with real ids and a valid CSRF token, so each answer
is about authorization alone. A route missing from ROUTES fails the test by
name: adding a route means deciding here who may use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tests.support.app import PASSWORD
from tests.support.clients import Client

ANONYMOUS, ATTENDEE, OTHER_ORGANIZER, OWNER = (
    "anonymous", "attendee", "another organizer", "the event's organizer")
IDENTITIES = (ANONYMOUS, ATTENDEE, OTHER_ORGANIZER, OWNER)

PUBLIC = "public"
SIGNED_IN = "signed in"
ORGANIZER = "organizer"
EVENT_OWNER = "event owner"
ALLOWED = {
    PUBLIC: {ANONYMOUS, ATTENDEE, OTHER_ORGANIZER, OWNER},
    SIGNED_IN: {ATTENDEE, OTHER_ORGANIZER, OWNER},
    ORGANIZER: {OTHER_ORGANIZER, OWNER},
    EVENT_OWNER: {OWNER},
}
SKIPPED_METHODS = {"HEAD", "OPTIONS"}
CONVERTER = re.compile(r"<(?:[^:<>]+:)?([A-Za-z_]\w*)>")
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Access:
    """Who may use a route; `tolerated`: refusals that still mean "let through, but no"
    (e.g. 404 not_registered for someone who holds no place). `consumes_caller`: the
    route deletes whoever calls it, so each call is made by a fresh person (the event's
    organizer stays: they own the world's event and are refused with 409)."""

    level: str
    tolerated: frozenset[int] = field(default_factory=frozenset)
    consumes_caller: bool = False


def access(level: str, *tolerated: int, consumes_caller: bool = False) -> Access:
    return Access(level, frozenset(tolerated), consumes_caller)


# (method, rule) -> who may use it; rules are written without converters ("<event_id>").
ROUTES: dict[tuple[str, str], Access] = {
    ("GET", "/static/<filename>"): access(PUBLIC),
    ("GET", "/healthz"): access(PUBLIC),
    # accounts
    ("GET", "/login"): access(PUBLIC),
    ("POST", "/login"): access(PUBLIC),
    ("GET", "/signup"): access(PUBLIC),
    ("POST", "/signup"): access(PUBLIC),
    ("GET", "/logout"): access(PUBLIC),
    ("POST", "/logout"): access(PUBLIC),
    # recovering an account: the emailed links need no sign-in (400: the matrix's token
    # is not a real one)
    ("GET", "/password/forgot"): access(PUBLIC),
    ("POST", "/password/forgot"): access(PUBLIC),
    ("GET", "/password/reset/<token>"): access(PUBLIC, 400),
    ("POST", "/password/reset/<token>"): access(PUBLIC),
    ("GET", "/verify/<token>"): access(PUBLIC, 400),
    ("POST", "/verify/resend"): access(SIGNED_IN),
    # events and registering
    ("GET", "/"): access(PUBLIC),
    ("GET", "/events/<event_id>"): access(PUBLIC),
    ("POST", "/events/<event_id>/register"): access(SIGNED_IN),
    ("POST", "/events/<event_id>/cancel"): access(SIGNED_IN),
    ("GET", "/events/<event_id>/confirmation"): access(SIGNED_IN),
    ("GET", "/dashboard"): access(SIGNED_IN),
    ("GET", "/me/events"): access(SIGNED_IN),
    # your account (an empty form is a 422, an organizer of a live event a 409)
    ("GET", "/account"): access(SIGNED_IN),
    ("POST", "/account/password"): access(SIGNED_IN),
    ("POST", "/account/delete"): access(SIGNED_IN),
    # organizer pages
    ("GET", "/organizer/"): access(ORGANIZER),
    ("GET", "/organizer/events/new"): access(ORGANIZER),
    ("POST", "/organizer/events/new"): access(ORGANIZER),
    ("GET", "/organizer/events/<event_id>"): access(EVENT_OWNER),
    ("GET", "/organizer/events/<event_id>/edit"): access(EVENT_OWNER),
    ("POST", "/organizer/events/<event_id>/edit"): access(EVENT_OWNER),
    ("GET", "/organizer/events/<event_id>/attendees.csv"): access(EVENT_OWNER),
    ("GET", "/organizer/events/<event_id>/waitlist.csv"): access(EVENT_OWNER),
    ("GET", "/organizer/events/<event_id>/registrations/<user_id>/cancel"):
        access(EVENT_OWNER),
    ("POST", "/organizer/events/<event_id>/registrations/<user_id>/cancel"):
        access(EVENT_OWNER),
    # the JSON API (bearer token)
    ("GET", "/api/openapi.json"): access(PUBLIC),
    ("POST", "/api/auth/signup"): access(PUBLIC),
    ("POST", "/api/auth/login"): access(PUBLIC),
    ("POST", "/api/auth/logout"): access(SIGNED_IN),
    ("POST", "/api/auth/password/forgot"): access(PUBLIC),
    ("POST", "/api/auth/password/reset"): access(PUBLIC),
    ("POST", "/api/users/me/verification"): access(SIGNED_IN),
    ("GET", "/api/users/me"): access(SIGNED_IN),
    ("POST", "/api/users/me/password"): access(SIGNED_IN),
    ("GET", "/api/users/me/export"): access(SIGNED_IN),
    # 409 owns_events for the event's organizer; the others are deleted.
    ("DELETE", "/api/users/me"): access(SIGNED_IN, 409, consumes_caller=True),
    ("GET", "/api/events"): access(PUBLIC),
    ("GET", "/api/events/<event_id>"): access(PUBLIC),
    ("GET", "/api/events/<event_id>/capacity"): access(PUBLIC),
    ("POST", "/api/events"): access(ORGANIZER),
    ("PATCH", "/api/events/<event_id>"): access(EVENT_OWNER),
    ("POST", "/api/events/<event_id>/registrations"): access(SIGNED_IN),
    # 404 not_registered: the caller holds no place (only the world's two people do).
    ("DELETE", "/api/events/<event_id>/registrations/me"): access(SIGNED_IN, 404),
    ("GET", "/api/me/registrations"): access(SIGNED_IN),
    ("GET", "/api/events/<event_id>/registrations"): access(EVENT_OWNER),
    ("DELETE", "/api/events/<event_id>/registrations/<user_id>"): access(EVENT_OWNER),
}

# How each URL parameter is filled in: from the world built for the route.
PARAMETERS = {
    "event_id": lambda world: world.event_id,
    "user_id": lambda world: world.subject_id,
    "filename": lambda world: "css/turnout.css",
    "token": lambda world: "not-a-real-token",
}


@dataclass
class World:
    """Per route: a fresh event of the owner's, full, one person confirmed, one waiting."""

    owner_email: str
    event_id: int
    subject_id: int
    waiter_id: int


def plain(rule: str) -> str:
    """"/events/<int(min=1):event_id>" -> "/events/<event_id>"."""
    return CONVERTER.sub(r"<\1>", rule)


def route_table(app) -> list[tuple[str, str, str]]:
    """(method, plain rule, endpoint) for everything the app answers, in a stable order."""
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - SKIPPED_METHODS):
            found.append((method, plain(rule.rule), rule.endpoint))
    return sorted(found, key=lambda r: (r[1], r[0]))


def test_every_route_is_classified(app):
    present = {(method, rule) for method, rule, _ in route_table(app)}
    missing = sorted(present - ROUTES.keys())
    assert not missing, (
        "routes with no entry in ROUTES (decide who may use them): "
        + ", ".join(f"{method} {rule}" for method, rule in missing))
    stale = sorted(ROUTES.keys() - present)
    assert not stale, ("ROUTES lists routes the app no longer has: "
                       + ", ".join(f"{m} {r}" for m, r in stale))


def test_every_route_answers_each_identity_as_classified(app, make_user, make_event):
    """The whole matrix: routes x identities, each answer checked against ROUTES."""
    from webapp.registrations.services import register

    owner = make_user(organizer=True)
    people = {ATTENDEE: make_user(), OTHER_ORGANIZER: make_user(organizer=True), OWNER: owner}

    def fresh_world() -> World:
        event = make_event(capacity=1, organizer=owner, waitlist_enabled=True)
        subject, waiter = make_user(), make_user()
        with app.app_context():
            assert register(event.id, subject.id).status == "confirmed"
            assert register(event.id, waiter.id).status == "waitlisted"
        return World(owner.email, event.id, subject.id, waiter.id)

    failures: list[str] = []
    unclassified: list[str] = []
    checked = 0
    routes = route_table(app)
    for method, rule, endpoint in routes:
        entry = ROUTES.get((method, rule))
        if entry is None:
            unclassified.append(f"{method} {rule}")
            continue
        world = fresh_world()
        url = build_url(app, rule, endpoint, method, world)
        callers = people
        if entry.consumes_caller:
            callers = {**people, ATTENDEE: make_user(), OTHER_ORGANIZER: make_user(organizer=True)}
        for identity in IDENTITIES:
            user = callers.get(identity)
            for htmx in (False, True) if _is_page(rule) and identity == ANONYMOUS else (False,):
                response = call(app, method, url, user, htmx=htmx)
                problem = judge(entry, identity, rule, response, method, htmx)
                response.close()  # static files answer with an open file
                checked += 1
                if problem:
                    failures.append(f"{method} {url} as {identity}"
                                    f"{' (htmx)' if htmx else ''}: {problem}")
    assert not unclassified, ("routes with no entry in ROUTES: " + ", ".join(unclassified))
    assert not failures, f"{len(failures)} of {checked} answers wrong:\n" + "\n".join(failures)
    assert checked >= 4 * len(routes)


# --- control runs: the matrix can see what it is meant to catch ---------------------------

def test_control_a_new_route_fails_until_classified(app):
    app.add_url_rule("/surprise/<int:event_id>", "surprise", lambda event_id: "hi",
                     methods=["GET", "POST"])
    try:
        test_every_route_is_classified(app)
    except AssertionError as exc:
        assert "GET /surprise/<event_id>" in str(exc)
        assert "POST /surprise/<event_id>" in str(exc)
    else:
        raise AssertionError("an unclassified route went unnoticed")


def test_control_a_missing_owner_check_is_caught(app, make_user, make_event, monkeypatch):
    from webapp.events.services import get_event
    from webapp.organizer import services

    monkeypatch.setattr(services, "owned_event", lambda event_id, user: get_event(event_id))
    try:
        test_every_route_answers_each_identity_as_classified(app, make_user, make_event)
    except AssertionError as exc:
        wrong = str(exc)
    else:
        raise AssertionError("organizer pages open to everyone went unnoticed")
    assert "/attendees.csv as another organizer: expected 403" in wrong
    assert "/attendees.csv as attendee: expected 403" in wrong
    # The API asks the same one check: its organizer routes open up too.
    assert "/registrations as attendee: expected 403" in wrong  # GET /api/events/<id>/...
    # The organizer's own answers change only where a stranger got there first (the
    # stranger's DELETE cancelled the registration the organizer then finds gone).
    assert [line for line in wrong.splitlines() if "as the event's organizer" in line
            and "DELETE /api/" not in line] == []


def _is_page(rule: str) -> bool:
    return not rule.startswith(("/api/", "/static/"))


def build_url(app, rule: str, endpoint: str, method: str, world: World) -> str:
    adapter = app.url_map.bind("localhost")
    for rule_obj in app.url_map.iter_rules(endpoint):
        if plain(rule_obj.rule) == rule:
            break
    unknown = sorted(set(rule_obj.arguments) - PARAMETERS.keys())
    assert not unknown, f"{rule}: add how to fill {unknown} to PARAMETERS"
    values = {name: PARAMETERS[name](world) for name in rule_obj.arguments}
    return adapter.build(endpoint, values, method=method)


def call(app, method: str, url: str, user, *, htmx: bool):
    """One request as `user` (None: anonymous), from a fresh client with a valid CSRF token.

    API routes use a bearer token and no cookie; pages use the session and CSRF.
    """
    headers = {"HX-Request": "true"} if htmx else {}
    if url.startswith("/api/"):
        http = app.test_client()
        if user is not None:
            login = http.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
            assert login.status_code == 200, login.get_data(as_text=True)
            http = app.test_client()  # no cookie from the login: the token alone
            headers["Authorization"] = f"Bearer {login.get_json()['token']}"
        body = {"json": {}} if method in {"POST", "PUT", "PATCH"} else {}
        return http.open(url, method=method, headers=headers, **body)
    client = Client(app.test_client())
    if user is not None:
        assert client.login(user.email).status_code == 303
    if method in UNSAFE_METHODS:
        headers["X-CSRFToken"] = client.csrf()
    return client.http.open(url, method=method, headers=headers)


def judge(entry: Access, identity: str, rule: str, response, method: str,
          htmx: bool) -> str | None:
    """What is wrong with the answer, or None."""
    status = response.status_code
    if status >= 500:
        return f"server error {status}"
    if _csrf_rejected(response):
        return "rejected for CSRF (the matrix sent a valid token)"
    to_login = _goes_to_login(response)
    if identity in ALLOWED[entry.level]:
        if status in (401, 403) or to_login:
            return f"refused ({status}{', to sign-in' if to_login else ''}) but {entry.level} " \
                   f"routes are open to {identity}"
        if status == 404 and 404 not in entry.tolerated:
            return "404 with a real id"
        if method == "GET" and status >= 400 and status not in entry.tolerated:
            return f"a GET for someone allowed answered {status}"
        return None
    if identity == ANONYMOUS:
        if not _is_page(rule):
            return None if status == 401 else f"expected 401, got {status}"
        if htmx:
            return None if status == 200 and to_login else \
                f"expected HX-Redirect to sign-in, got {status} {dict(response.headers)}"
        return None if status in (302, 303) and to_login else \
            f"expected a redirect to sign-in, got {status}"
    return None if status == 403 else f"expected 403 ({entry.level} route), got {status}"


def _goes_to_login(response) -> bool:
    target = response.headers.get("HX-Redirect") or (
        response.headers.get("Location") if response.status_code in (301, 302, 303, 307, 308)
        else None)
    return bool(target) and urlsplit(target).path in ("/login", "/api/auth/login")


def _csrf_rejected(response) -> bool:
    if response.status_code != 400:
        return False
    if response.is_json:
        return (response.get_json().get("error") or {}).get("code") == "csrf_failed"
    return "Your form expired or was sent from elsewhere" in response.get_data(as_text=True)
