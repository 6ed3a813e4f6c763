"""The security checklist over HTTP: CSRF, redirects, sessions, throttling, headers, errors."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from tests.support.app import PASSWORD, base_config
from tests.support.clients import CSRF_IN_PAGE, Client

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# (method, rule) pairs allowed to skip CSRF, each with the reason; a new route must be
# listed here on purpose (e.g. a bearer-token-only API call that never reads the session).
CSRF_EXEMPT: dict[tuple[str, str], str] = {}
CSRF_MESSAGE = "Your form expired or was sent from elsewhere. Reload the page and try again."
TOO_MANY = "Too many attempts. Please wait a minute and try again."
OPEN_REDIRECT_VECTORS = [
    "https://evil.example",
    "//evil.example",
    "/\\evil.example",
    "////evil.example",
    "%2F%2Fevil.example",
    "javascript:alert(1)",
    "\\\\evil.example",
    "/\t/evil.example",
    "https:/evil.example",
    "http:evil.example",
]


def text(response) -> str:
    return response.get_data(as_text=True)


@contextmanager
def extra_app(database_url, redis_url, **overrides):
    """Another app on the same (already cleaned) databases, e.g. with throttling on."""
    from webapp import create_app
    from webapp.extensions import db

    app = create_app({**base_config(database_url, redis_url), **overrides})
    try:
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()


def signed_in_client(app, email: str) -> Client:
    client = Client(app.test_client())
    assert client.login(email).status_code == 303
    return client


def session_version(app, user_id: int) -> int:
    from webapp.auth.models import User
    from webapp.extensions import db

    with app.app_context():
        return db.session.scalar(select(User.session_version).where(User.id == user_id))


# --- CSRF on every state-changing route ------------------------------------------------

def unsafe_routes(app, values: dict) -> list[tuple[str, str]]:
    """Every (method, url) in the url_map that can change state; a new route joins by itself."""
    adapter = app.url_map.bind("localhost")
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods & UNSAFE_METHODS):
            if (method, rule.rule) in CSRF_EXEMPT:
                continue
            args = {name: values.get(name, 1) for name in rule.arguments}
            found.append((method, adapter.build(rule.endpoint, args, method=method)))
    return sorted(found)


def is_csrf_rejection(response) -> bool:
    if response.status_code != 400:
        return False
    if response.is_json:
        return response.get_json()["error"]["code"] == "csrf_failed"
    return CSRF_MESSAGE in text(response)


def test_every_unsafe_route_needs_a_csrf_token(app, make_user, make_event, counts):
    user = make_user()
    event = make_event(capacity=3)
    routes = unsafe_routes(app, {"event_id": event.id, "user_id": user.id})
    assert {("POST", "/login"), ("POST", "/signup"), ("POST", "/logout"),
            ("POST", f"/events/{event.id}/register"),
            ("POST", f"/events/{event.id}/cancel")} <= set(routes)

    client = signed_in_client(app, user.email)
    for method, url in routes:
        for htmx in (False, True):
            headers = {"HX-Request": "true"} if htmx else {}
            response = client.http.open(url, method=method, headers=headers)
            assert is_csrf_rejection(response), (method, url, htmx, response.status_code)
        # A token for another session is no better than none.
        response = client.http.open(url, method=method,
                                    headers={"X-CSRFToken": Client(app.test_client()).csrf()})
        assert is_csrf_rejection(response), (method, url, "foreign token")
    # Nothing changed: no registration, still signed in on the same session.
    assert counts(event.id)["confirmed"] == 0
    assert counts(event.id)["activity"] == {}
    assert session_version(app, user.id) == 1
    assert client.get("/dashboard").status_code == 200

    for method, url in routes:
        fresh = signed_in_client(app, user.email)
        response = fresh.http.open(url, method=method, headers={"X-CSRFToken": fresh.csrf()})
        assert not is_csrf_rejection(response), (method, url)
        if not url.startswith("/api/"):  # the JSON API may answer 400 for an empty body
            assert response.status_code != 400, (method, url)


def test_the_form_token_works_as_well_as_the_header(signed_in, make_event, counts):
    client, _user = signed_in
    event = make_event()
    response = client.http.post(f"/events/{event.id}/register",
                                data={"csrf_token": client.csrf()})
    assert response.status_code == 303
    assert counts(event.id)["confirmed"] == 1


def test_pages_send_the_token_for_htmx_in_hx_headers(client, make_event):
    event = make_event()
    body = text(client.get(f"/events/{event.id}"))
    assert re.search(r"<body hx-headers='\{\"X-CSRFToken\": \"[^\"]+\"\}'>", body)


# --- Open redirects --------------------------------------------------------------------

@pytest.mark.parametrize("vector", OPEN_REDIRECT_VECTORS)
def test_login_next_never_leaves_the_site(client, make_user, vector):
    user = make_user()
    for response in (
        client.http.post("/login", query_string={"next": vector},
                         data={"email": user.email, "password": PASSWORD,
                               "csrf_token": client.csrf()}),
        client.http.get(f"/login?next={vector}"),  # signed in by now: straight on
        client.http.get("/login", query_string={"next": vector}),
    ):
        assert response.status_code == 303
        assert response.headers["Location"] == "/dashboard", vector


@pytest.mark.parametrize("raw", ["%2F%2Fevil.example", "/%5Cevil.example", "%2F%5Cevil.example",
                                 "/%2Fevil.example", "%09//evil.example", "/%09/evil.example"])
def test_login_next_percent_encoded_in_the_raw_url(client, make_user, raw):
    user = make_user()
    response = client.http.post(f"/login?next={raw}", data={
        "email": user.email, "password": PASSWORD, "csrf_token": client.csrf()})
    assert response.status_code == 303
    assert response.headers["Location"] == "/dashboard", raw


@pytest.mark.parametrize("vector", OPEN_REDIRECT_VECTORS)
def test_signup_next_never_leaves_the_site(client, vector):
    response = client.http.post("/signup", query_string={"next": vector},
                                data={"name": "N", "email": "n@example.org",
                                      "password": PASSWORD, "csrf_token": client.csrf()})
    assert response.status_code == 303
    assert response.headers["Location"] == "/dashboard"


@pytest.mark.parametrize("vector", OPEN_REDIRECT_VECTORS)
def test_login_form_never_carries_a_foreign_next(client, vector):
    body = text(client.get("/login", query_string={"next": vector}))
    assert 'action="/login?next=/dashboard"' in body
    assert "evil" not in body
    assert "javascript" not in body


# --- User enumeration ------------------------------------------------------------------

def normalized_login_page(response, email: str) -> str:
    body = text(response).replace(email, "EMAIL")
    body = re.sub(r'(name="csrf_token" type="hidden" value=")[^"]+"', r'\1TOKEN"', body)
    return re.sub(r'("X-CSRFToken": ")[^"]+"', r'\1TOKEN"', body)


def test_wrong_password_and_unknown_email_look_the_same(make_client, make_user):
    user = make_user(email="known@example.org")
    wrong = make_client().login(user.email, "wrong password 123")
    unknown = make_client().login("unknown@example.org", "wrong password 123")
    assert wrong.status_code == unknown.status_code == 422
    assert "Wrong email or password." in text(wrong)
    assert normalized_login_page(wrong, user.email) == \
        normalized_login_page(unknown, "unknown@example.org")
    assert "TOKEN" in normalized_login_page(wrong, user.email)


# --- Sessions --------------------------------------------------------------------------

def session_data(app, cookie: str) -> dict:
    return dict(app.session_interface.get_signing_serializer(app).loads(cookie))


def test_login_issues_a_fresh_session(app, client, make_client, make_user):
    user = make_user()
    old_token = client.csrf()
    before = client.http.get_cookie("session").value
    assert "csrf_token" in session_data(app, before)
    assert "_user_id" not in session_data(app, before)

    assert client.login(user.email).status_code == 303
    after = client.http.get_cookie("session").value
    assert after != before
    data = session_data(app, after)
    assert data["_user_id"] == f"{user.id}:1"
    assert data.get("csrf_token") != session_data(app, before)["csrf_token"]
    # What was issued before sign-in is worth nothing after it.
    response = client.http.post("/logout", headers={"X-CSRFToken": old_token})
    assert is_csrf_rejection(response)
    replay = make_client()
    replay.http.set_cookie("session", before)
    assert replay.get("/dashboard").status_code == 303


def test_logout_ends_every_session_and_old_cookies_replay_to_nothing(app, make_client,
                                                                     make_user):
    user = make_user()
    laptop, phone = make_client(), make_client()
    assert laptop.login(user.email).status_code == 303
    assert phone.http.post("/login", data={"email": user.email, "password": PASSWORD,
                                           "remember": "y",
                                           "csrf_token": phone.csrf()}).status_code == 303
    laptop_cookie = laptop.http.get_cookie("session").value
    phone_cookie = phone.http.get_cookie("session").value
    assert phone.http.get_cookie("remember_token") is None  # sessions only, no remember cookie
    assert laptop.get("/dashboard").status_code == 200

    assert laptop.post("/logout").status_code == 303
    assert session_version(app, user.id) == 2

    for name, value in (("laptop", laptop_cookie), ("phone", phone_cookie)):
        replay = make_client()
        replay.http.set_cookie("session", value)
        response = replay.get("/dashboard")
        assert response.status_code == 303, name
        assert response.headers["Location"] == "/login?next=/dashboard"
    response = phone.get("/dashboard")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=/dashboard"


def cookie_attributes(response, name: str) -> set[str]:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return {part.strip() for part in header.split(";")[1:]}
    raise AssertionError(f"no {name} cookie set")


def test_cookie_flags(client, make_user):
    user = make_user()
    response = client.http.post("/login", data={"email": user.email, "password": PASSWORD,
                                                "remember": "y", "csrf_token": client.csrf()})
    assert response.status_code == 303
    for name in ("session", "turnout_device"):
        flags = cookie_attributes(response, name)
        assert "HttpOnly" in flags, name
        assert "SameSite=Lax" in flags, name
        assert "Path=/" in flags, name
    assert not any(header.startswith("remember_token=")
                   for header in response.headers.getlist("Set-Cookie"))


def test_secure_cookies_when_behind_tls(database_url, redis_url, app, make_user):
    user = make_user()
    with extra_app(database_url, redis_url, SESSION_COOKIE_SECURE=True) as tls_app:
        http = tls_app.test_client()
        page = http.get("/", base_url="https://localhost").get_data(as_text=True)
        token = CSRF_IN_PAGE.search(page).group(1)
        response = http.post("/login", base_url="https://localhost",
                             headers={"Referer": "https://localhost/login"},
                             data={"email": user.email, "password": PASSWORD,
                                   "remember": "y", "csrf_token": token})
        assert response.status_code == 303
        assert "Secure" in cookie_attributes(response, "session")
        assert "Secure" in cookie_attributes(response, "turnout_device")
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")


# --- Login throttling ------------------------------------------------------------------

def bad_login(client: Client, email: str, **headers):
    return client.http.post("/login", headers=headers,
                            data={"email": email, "password": "wrong password 123",
                                  "csrf_token": client.csrf()})


def test_sixth_bad_login_for_one_account_is_429(database_url, redis_url, app, make_user):
    victim = make_user(email="victim@example.org")
    bystander = make_user(email="bystander@example.org")
    with extra_app(database_url, redis_url, RATELIMIT_ENABLED=True) as limited:
        client = Client(limited.test_client())
        for _ in range(5):
            assert bad_login(client, victim.email).status_code == 422
        response = bad_login(client, "  Victim@Example.org")
        body = text(response)
        assert response.status_code == 429
        assert TOO_MANY in body
        assert "<h1>Slow down</h1>" in body
        assert "Traceback" not in body
        assert int(response.headers["Retry-After"]) > 0
        assert_security_headers(response)
        # Even the right password waits here: the account is throttled from this address,
        # not the guess (tests/security/test_signin_limits.py: other addresses get in).
        assert client.login(victim.email).status_code == 429
        elsewhere = Client(limited.test_client())
        elsewhere.http.environ_base["REMOTE_ADDR"] = "198.51.100.20"
        assert elsewhere.login(victim.email).status_code == 303
        # Another account from the same address is not locked out by this one.
        assert client.login(bystander.email).status_code == 303
        # htmx asks get the same answer as a notice.
        other = Client(limited.test_client())
        response = other.post("/login", htmx=True, data={"email": victim.email,
                                                         "password": PASSWORD})
        assert response.status_code == 429
        assert TOO_MANY in text(response)
        assert "<html" not in text(response)


def test_ip_limit_counts_trusted_forwarded_addresses_apart(database_url, redis_url, app):
    with extra_app(database_url, redis_url, RATELIMIT_ENABLED=True,
                   PROXY_FIX_TRUSTED_HOPS=1) as limited:
        client = Client(limited.test_client())
        for n in range(20):
            response = bad_login(client, f"guess{n}@example.org", **{
                "X-Forwarded-For": "203.0.113.7"})
            assert response.status_code == 422, n
        assert bad_login(client, "guess20@example.org",
                         **{"X-Forwarded-For": "203.0.113.7"}).status_code == 429
        # A spoofed extra hop is ignored: nginx appended the real address last.
        assert bad_login(client, "guess21@example.org",
                         **{"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}).status_code == 429
        assert bad_login(client, "guess22@example.org",
                         **{"X-Forwarded-For": "203.0.113.8"}).status_code == 422


# --- Security headers and error pages ----------------------------------------------------

def assert_security_headers(response) -> None:
    csp = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_security_headers_on_pages_fragments_redirects_and_errors(signed_in, make_event,
                                                                 make_client):
    client, _user = signed_in
    event = make_event(capacity=3)
    anonymous = make_client()
    with client.get("/static/css/turnout.css") as static:
        assert static.status_code == 200
        assert_security_headers(static)
    responses = {
        "index": client.get("/"),
        "event page": client.get(f"/events/{event.id}"),
        "event fragment": client.get(f"/events/{event.id}", htmx=True),
        "register htmx": client.post(f"/events/{event.id}/register", htmx=True),
        "confirmation": client.get(f"/events/{event.id}/confirmation"),
        "confirmation fragment": client.get(f"/events/{event.id}/confirmation", htmx=True),
        "cancel htmx": client.post(f"/events/{event.id}/cancel", htmx=True),
        "register plain": client.post(f"/events/{event.id}/register"),
        "dashboard": client.get("/dashboard"),
        "my events": client.get("/me/events"),
        "login": anonymous.get("/login"),
        "signup": anonymous.get("/signup"),
        "login 422": anonymous.login("nobody@example.org"),
        "signed-out register": anonymous.post(f"/events/{event.id}/register"),
        "404 page": client.get("/events/987654"),
        "404 notice": client.get("/events/987654", htmx=True),
        "404 no route": client.get("/no/such/page"),
        "405": client.get(f"/events/{event.id}/register"),
        "csrf 400": client.post(f"/events/{event.id}/cancel", csrf=False),
    }
    expected = {"register htmx": 200, "register plain": 303, "404 page": 404,
                "login 422": 422, "signed-out register": 303,
                "404 notice": 404, "404 no route": 404, "405": 405, "csrf 400": 400}
    for name, response in responses.items():
        assert response.status_code == expected.get(name, 200), name
        assert_security_headers(response)


def test_pages_need_no_inline_script_or_style(signed_in, make_event, make_client):
    """The CSP forbids inline code, so no page may rely on it."""
    client, _user = signed_in
    anonymous = make_client()
    event = make_event()
    client.post(f"/events/{event.id}/register")
    pages = [(client, path) for path in (
        "/", f"/events/{event.id}", f"/events/{event.id}/confirmation", "/dashboard",
        "/me/events", "/events/987654")]
    pages += [(anonymous, "/login"), (anonymous, "/signup"), (anonymous, f"/events/{event.id}")]
    # The sign-out question page (any GET of /logout) goes last; it keeps the session.
    pages += [(client, "/logout")]
    for who, path in pages:
        response = who.get(path, headers={"Sec-Fetch-Site": "cross-site"})
        assert response.status_code == (404 if path == "/events/987654" else 200), path
        body = text(response)
        assert "<html" in body, path
        scripts = re.findall(r"<script\b[^>]*>", body)
        assert scripts == ['<script src="/static/vendor/htmx-2.0.11.min.js" defer>'], path
        assert "<style" not in body, path
        assert not re.search(r"\sstyle=", body), path
        assert not re.search(r"\son[a-z]+=", body), path
        assert "cdn" not in body.lower(), path


@pytest.fixture
def crashing_app(database_url, redis_url, app):
    """Production-like error handling (not TESTING) and a route that raises."""
    with extra_app(database_url, redis_url, TESTING=False) as crashing:
        @crashing.get("/boom")
        def boom():
            raise RuntimeError("secret internal detail 42")

        yield crashing


def assert_no_trace(body: str) -> None:
    for leak in ("Traceback", "RuntimeError", "secret internal detail 42", 'File "'):
        assert leak not in body


def test_an_unexpected_error_is_a_500_page_with_a_request_id(crashing_app):
    client = Client(crashing_app.test_client())
    response = client.get("/boom")
    body = text(response)
    assert response.status_code == 500
    assert "<h1>Something went wrong</h1>" in body
    assert "Something went wrong on our side. Please try again in a moment." in body
    request_id = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert f"Reference: <code>{request_id}</code>" in body
    assert_no_trace(body)
    assert_security_headers(response)


def test_a_500_keeps_the_proxy_request_id(crashing_app):
    client = Client(crashing_app.test_client())
    response = client.get("/boom", headers={"X-Request-ID": "nginx-req-0001"})
    assert response.headers["X-Request-ID"] == "nginx-req-0001"
    assert "Reference: <code>nginx-req-0001</code>" in text(response)
    forged = client.get("/boom", headers={"X-Request-ID": "<script>x</script>"})
    assert "<script>x" not in text(forged)
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["X-Request-ID"])


def test_a_500_for_htmx_is_a_notice(crashing_app):
    client = Client(crashing_app.test_client())
    response = client.get("/boom", htmx=True)
    body = text(response)
    assert response.status_code == 500
    assert "<html" not in body
    assert response.headers["HX-Retarget"] == "#messages"
    assert f"(reference <code>{response.headers['X-Request-ID']}</code>)" in body
    assert_no_trace(body)
    assert_security_headers(response)


def test_a_500_for_json_is_an_error_body(crashing_app):
    client = Client(crashing_app.test_client())
    response = client.get("/boom", headers={"Accept": "application/json"})
    assert response.status_code == 500
    assert response.get_json() == {"error": {
        "code": "internal_error",
        "message": "Something went wrong on our side. Please try again in a moment.",
        "request_id": response.headers["X-Request-ID"]}}
    assert_no_trace(text(response))
    assert_security_headers(response)


def test_debug_is_off_by_default(crashing_app):
    assert crashing_app.debug is False
    assert crashing_app.config["DEBUG"] is False
    assert crashing_app.testing is False
