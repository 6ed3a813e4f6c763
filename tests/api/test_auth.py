"""API accounts and tokens: sign-up, sign-in, /users/me, expiry, revocation, rate limit, CSRF."""

from __future__ import annotations

import random
import time

import pytest

from tests.support.app import PASSWORD
from tests.support.clients import error_of
from tests.support.samples import event_body


def test_signup_creates_attendee_account(api, app_ctx):
    response = api.post("/api/auth/signup",
                        json={"email": " Ada@Example.ORG ", "name": "  Ada   Lovelace ",
                              "password": PASSWORD})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body == {"id": body["id"], "email": "ada@example.org", "name": "Ada Lovelace",
                    "is_organizer": False}
    assert isinstance(body["id"], int)
    assert "Set-Cookie" not in response.headers


def test_signup_email_taken_is_409(api, make_user):
    user = make_user()
    response = api.post("/api/auth/signup", json={"email": user.email.upper(), "name": "X",
                                                  "password": PASSWORD})
    assert response.status_code == 409
    assert error_of(response)["code"] == "email_taken"


@pytest.mark.parametrize(("body", "field"), [
    ({"email": "not-an-email", "name": "A", "password": PASSWORD}, "email"),
    ({"email": "a@example.org", "name": "", "password": PASSWORD}, "name"),
    ({"email": "a@example.org", "name": "   ", "password": PASSWORD}, "name"),
    ({"email": "a@example.org", "name": "x" * 101, "password": PASSWORD}, "name"),
    ({"email": "a@example.org", "name": "A\x00B", "password": PASSWORD}, "name"),
    ({"email": "a@example.org", "name": "A", "password": "short"}, "password"),
    ({"email": "a@example.org", "name": "A", "password": "x" * 129}, "password"),
    ({"email": "a@example.org", "name": "A", "password": "password1234"}, "password"),
    ({"email": "a@example.org", "name": "A"}, "password"),
    ({"email": "a@example.org", "name": "A", "password": PASSWORD, "is_organizer": True},
     "is_organizer"),
    ({"email": 7, "name": "A", "password": PASSWORD}, "email"),
])
def test_signup_refuses_bad_fields_with_a_clear_message(api, body, field):
    response = api.post("/api/auth/signup", json=body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    assert [f["field"] for f in error["fields"]] == [field]
    assert error["message"].startswith(f"{field}: ")


def varied(n: int) -> str:
    """n characters (some beyond ASCII) with no pattern zxcvbn could guess."""
    rng = random.Random(n)
    return "".join(rng.choice("aébçdêfgħijkłmñoþqrsţuvwxyz0123456789") for _ in range(n))


def test_password_limits_are_12_to_128(api):
    for n, status in ((11, 400), (12, 201), (128, 201), (129, 400)):
        response = api.post("/api/auth/signup", json={
            "email": f"p{n}@example.org", "name": "P", "password": varied(n)})
        assert response.status_code == status, (n, response.get_json())


def test_login_returns_token_and_user_and_sets_no_cookie(api, make_user):
    user = make_user()
    response = api.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"token", "token_type", "expires_in", "user"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 12 * 3600
    assert body["user"] == {"id": user.id, "email": user.email, "name": user.name,
                            "is_organizer": False}
    assert "Set-Cookie" not in response.headers
    me = api.get("/api/users/me", token=body["token"])
    assert me.status_code == 200
    assert me.get_json()["id"] == user.id


@pytest.mark.parametrize("password", ["wrong password!", ""])
def test_login_wrong_password_or_unknown_email_is_401(api, make_user, password):
    user = make_user()
    wrong = api.post("/api/auth/login", json={"email": user.email, "password": password})
    unknown = api.post("/api/auth/login",
                       json={"email": "nobody@example.org", "password": "whatever12345"})
    if password == "":
        assert wrong.status_code == 400  # an empty password is a malformed request
        return
    for response in (wrong, unknown):
        assert response.status_code == 401
        error = error_of(response)
        assert error["code"] == "invalid_credentials"
        assert error["message"] == "Wrong email or password."


def test_users_me_needs_a_token(api):
    response = api.get("/api/users/me")
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", [
    "Bearer not-a-token", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a.b.c", "bearer",
])
def test_bad_authorization_headers_are_401_invalid_token(api, header):
    response = api.get("/api/users/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_token_signed_with_another_key_is_refused(api, app, make_user):
    from itsdangerous import URLSafeTimedSerializer

    from webapp.auth.tokens import SALT

    user = make_user()
    forged = URLSafeTimedSerializer("another-key", salt=SALT).dumps({"u": user.id, "v": 1})
    response = api.get("/api/users/me", token=forged)
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_token"


def test_a_token_with_a_malformed_payload_is_refused(api, app, make_user):
    from itsdangerous import URLSafeTimedSerializer

    from webapp.auth.tokens import SALT

    make_user()
    signer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=SALT)
    for payload in ([1, 1], {"u": "1", "v": 1}, {"u": 1}, "x", {"u": 10**12, "v": 1}):
        response = api.get("/api/users/me", token=signer.dumps(payload))
        assert response.status_code == 401, payload
        assert error_of(response)["code"] == "invalid_token"


def test_token_expires_after_max_age(api, app, make_user, monkeypatch):
    user = make_user()
    real_time = time.time
    # A token issued 12 h and 1 s ago (itsdangerous stamps it with time.time()).
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: real_time() - 12 * 3600 - 1)
    old = api.token(user)
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: real_time() - 12 * 3600 + 60)
    fresh_enough = api.token(user)
    monkeypatch.undo()
    response = api.get("/api/users/me", token=old)
    assert response.status_code == 401
    assert error_of(response)["code"] == "token_expired"
    assert api.get("/api/users/me", token=fresh_enough).status_code == 200


def test_max_age_is_configurable(api, app, make_user):
    app.config["API_TOKEN_MAX_AGE"] = 1
    token = api.token(make_user())
    assert api.get("/api/users/me", token=token).status_code == 200
    time.sleep(2.1)
    assert error_of(api.get("/api/users/me", token=token))["code"] == "token_expired"


def test_logout_revokes_every_token_of_the_person(api, make_user):
    user = make_user()
    first, second = api.token(user), api.token(user)
    other = api.token(make_user())
    assert api.post("/api/auth/logout", token=first).status_code == 204
    for token in (first, second):
        response = api.get("/api/users/me", token=token)
        assert response.status_code == 401
        assert error_of(response)["code"] == "invalid_token"
        assert "revoked" in error_of(response)["message"]
    assert api.get("/api/users/me", token=other).status_code == 200
    assert api.get("/api/users/me", token=api.token(user)).status_code == 200  # sign in again


def test_sign_out_everywhere_from_the_pages_revokes_tokens(api, app, make_user):
    from webapp.auth.services import sign_out_everywhere

    user = make_user()
    token = api.token(user)
    with app.app_context():
        sign_out_everywhere(user.id)  # what sign-out and a password change call
    assert error_of(api.get("/api/users/me", token=token))["code"] == "invalid_token"


def test_logout_without_token_is_401(api):
    assert api.post("/api/auth/logout").status_code == 401


def test_login_rate_limit_answers_429_json(database_url, redis_url, app, make_user):
    from tests.support.app import base_config
    from tests.support.clients import Api
    from webapp import create_app
    from webapp.extensions import db

    victim, bystander = make_user(), make_user()
    limited = create_app({**base_config(database_url, redis_url), "RATELIMIT_ENABLED": True})
    try:
        api = Api(limited)
        statuses = [api.post("/api/auth/login",
                             json={"email": victim.email, "password": "wrong password!"}
                             ).status_code for _ in range(6)]
        assert statuses == [401] * 5 + [429]
        # Even the right password waits from this address: the account is throttled here,
        # not the guess; from another address its owner still gets in.
        response = api.post("/api/auth/login",
                            json={"email": f" {victim.email.upper()}", "password": PASSWORD})
        assert response.status_code == 429
        assert error_of(response)["code"] == "too_many_requests"
        assert int(response.headers["Retry-After"]) > 0
        elsewhere = limited.test_client(use_cookies=False).post(
            "/api/auth/login", json={"email": victim.email, "password": PASSWORD},
            environ_base={"REMOTE_ADDR": "198.51.100.20"})
        assert elsewhere.status_code == 200
        # Another account from the same address is still let in.
        assert api.post("/api/auth/login", json={"email": bystander.email,
                                                 "password": PASSWORD}).status_code == 200
    finally:
        with limited.app_context():
            db.engine.dispose()


# --- CSRF: a token needs none, a cookie always does ------------------------------------

def test_bearer_token_without_cookie_needs_no_csrf(api, make_user, make_event):
    event = make_event()
    token = api.token(make_user())
    response = api.post(f"/api/events/{event.id}/registrations", token=token)
    assert response.status_code == 201


def test_signup_and_login_without_any_cookie_need_no_csrf(api, make_user):
    assert api.post("/api/auth/signup", json={"email": "n@example.org", "name": "N",
                                              "password": PASSWORD}).status_code == 201
    assert api.post("/api/auth/login", json={"email": "n@example.org",
                                             "password": PASSWORD}).status_code == 200


def test_session_cookie_request_needs_csrf_token(signed_in, make_event):
    client, _user = signed_in
    event = make_event()
    refused = client.http.post(f"/api/events/{event.id}/registrations")
    assert refused.status_code == 400
    assert error_of(refused)["code"] == "csrf_failed"
    accepted = client.http.post(f"/api/events/{event.id}/registrations",
                                headers={"X-CSRFToken": client.csrf()})
    assert accepted.status_code == 201
    assert accepted.get_json()["status"] == "confirmed"


def test_session_cookie_reads_need_no_csrf(signed_in):
    client, user = signed_in
    response = client.http.get("/api/users/me")
    assert response.status_code == 200
    assert response.get_json()["id"] == user.id


def test_bearer_token_plus_session_cookie_still_needs_csrf(signed_in, api, make_event):
    client, user = signed_in
    event = make_event()
    token = api.token(user)
    auth = {"Authorization": f"Bearer {token}"}
    refused = client.http.post(f"/api/events/{event.id}/registrations", headers=auth)
    assert refused.status_code == 400
    assert error_of(refused)["code"] == "csrf_failed"
    accepted = client.http.post(f"/api/events/{event.id}/registrations",
                                headers={**auth, "X-CSRFToken": client.csrf()})
    assert accepted.status_code == 201


def test_any_cookie_named_session_makes_csrf_required(api, make_user, make_event):
    """Even an anonymous or forged session cookie: the rule is about what the browser sends."""
    event = make_event()
    token = api.token(make_user())
    response = api.post(f"/api/events/{event.id}/registrations", token=token,
                        headers={"Cookie": "session=anything"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "csrf_failed"
    login = api.post("/api/auth/login", json={"email": "x@example.org", "password": "y" * 12},
                     headers={"Cookie": "remember_token=stale"})
    assert error_of(login)["code"] == "csrf_failed"


def test_token_and_session_of_different_people_are_refused(signed_in, api, make_user):
    client, _user = signed_in
    other_token = api.token(make_user())
    response = client.http.get("/api/users/me",
                               headers={"Authorization": f"Bearer {other_token}"})
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_token"


def test_invalid_token_is_401_even_with_a_valid_session(signed_in):
    client, _user = signed_in
    response = client.http.get("/api/users/me", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


def test_tokens_do_not_sign_in_html_pages(app, api, make_user):
    token = api.token(make_user())
    page = app.test_client(use_cookies=False).get(
        "/dashboard", headers={"Authorization": f"Bearer {token}"})
    assert page.status_code in (302, 303)  # to the sign-in page, as for anyone anonymous


def test_session_cookie_gets_organizer_actions_with_csrf(make_client, make_user):
    organizer = make_user(organizer=True)
    client = make_client()
    client.login(organizer.email)
    response = client.http.post("/api/events", json=event_body(),
                                headers={"X-CSRFToken": client.csrf()})
    assert response.status_code == 201, response.get_json()


def test_the_page_and_the_api_share_one_login_limit(database_url, redis_url, app, make_user):
    """Guessing through both doors does not double the attempts an account gets."""
    from tests.support.app import base_config
    from tests.support.clients import Api, Client
    from webapp import create_app
    from webapp.extensions import db

    victim = make_user()
    limited = create_app({**base_config(database_url, redis_url), "RATELIMIT_ENABLED": True})
    try:
        page, api = Client(limited.test_client()), Api(limited)
        for _ in range(3):
            assert page.login(victim.email, "wrong password!").status_code == 422
        statuses = [api.post("/api/auth/login",
                             json={"email": victim.email, "password": "wrong password!"}
                             ).status_code for _ in range(3)]
        assert statuses == [401, 401, 429]  # 5 per minute across both
        assert page.login(victim.email, PASSWORD).status_code == 429
    finally:
        with limited.app_context():
            db.engine.dispose()
