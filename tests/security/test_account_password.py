"""Changing the password, on /account and POST /api/users/me/password.

The new password is judged like at sign-up (with the reason), the current one must be
right, and afterwards every other session and every API token is dead while the browser
that changed it stays signed in. Each change is in the audit trail.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.support.app import PASSWORD
from tests.support.audit import changes
from tests.support.clients import Api, Client, error_of, signed_in_client

NEW_PASSWORD = "velvet otter juggles seven lanterns"
WEAK = ["aaaaaaaaaaaa", " " * 16, "123123123123", "password1234"]


def text(response) -> str:
    return response.get_data(as_text=True)


def change_on_page(client: Client, current: str, new: str, *, htmx: bool = False):
    return client.post("/account/password", htmx=htmx,
                       data={"current_password": current, "new_password": new})


def session_version(app, user_id: int) -> int:
    from webapp.auth.models import User
    from webapp.extensions import db

    with app.app_context():
        return db.session.scalar(select(User.session_version).where(User.id == user_id))


def security_kinds(app, user_id: int) -> list[tuple[str, str | None, str | None]]:
    from webapp.auth import audit

    with app.app_context():
        return [(e.kind, e.ip, e.request_id) for e in changes(audit.events_of(user_id))]


def can_sign_in(api: Api, email: str, password: str) -> bool:
    response = api.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code in (200, 401), text(response)
    return response.status_code == 200


@pytest.fixture
def api(app) -> Api:
    return Api(app)


# --- the page --------------------------------------------------------------------------

def test_the_account_page_shows_who_you_are_and_its_forms(app, make_user):
    user = make_user(name="Ada Lovelace")
    client = signed_in_client(app, user.email)
    page = text(client.get("/account"))
    assert "Ada Lovelace" in page and user.email in page
    assert 'action="/account/password"' in page and 'action="/account/delete"' in page
    assert 'href="/api/users/me/export"' in page
    assert 'name="current_password"' in page and 'name="new_password"' in page
    # Reachable from the navigation and the dashboard.
    assert 'href="/account"' in text(client.get("/dashboard"))


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_changing_signs_out_every_other_session_and_token_but_not_this_browser(
        app, make_user, api, htmx):
    user = make_user()
    laptop, phone = signed_in_client(app, user.email), signed_in_client(app, user.email)
    token = api.token(user)
    before = session_version(app, user.id)

    response = change_on_page(laptop, PASSWORD, NEW_PASSWORD, htmx=htmx)

    if htmx:
        assert response.status_code == 200
        assert json.loads(response.headers["HX-Location"])["path"] == "/account"
    else:
        assert response.status_code == 303 and response.headers["Location"] == "/account"
    assert session_version(app, user.id) == before + 1
    page = laptop.get("/account")
    assert page.status_code == 200, "the browser that changed the password was signed out"
    assert "Your password is changed" in text(page)
    assert laptop.is_signed_in()
    assert not phone.is_signed_in(), "another session outlived the password change"
    answer = api.get("/api/users/me", token=token)
    assert answer.status_code == 401 and error_of(answer)["code"] == "invalid_token"
    assert not can_sign_in(api, user.email, PASSWORD)
    assert can_sign_in(api, user.email, NEW_PASSWORD)
    kinds = security_kinds(app, user.id)
    assert [k for k, _ip, _rid in kinds] == ["password_changed"]
    assert kinds[0][1] and kinds[0][2], "the audit row lacks the address or request id"


def test_keep_me_signed_in_survives_the_change_with_the_new_version(app, make_user):
    user = make_user()
    laptop = signed_in_client(app, user.email, remember="y")
    assert laptop.http.get_cookie("session").expires is not None
    assert change_on_page(laptop, PASSWORD, NEW_PASSWORD).status_code == 303
    # Still a cookie that outlives the browser, now at the new version.
    assert laptop.http.get_cookie("session").expires is not None
    assert laptop.is_signed_in()


def test_a_wrong_current_password_is_an_error_at_its_field_and_changes_nothing(
        app, make_user, api):
    user = make_user()
    client = signed_in_client(app, user.email)
    token = api.token(user)
    response = change_on_page(client, "not my password at all", NEW_PASSWORD)
    assert response.status_code == 422
    page = text(response)
    field = page.split('name="current_password"', 1)[1].split("</div>", 1)[0]
    assert "That is not your current password." in field
    assert session_version(app, user.id) == 1
    assert api.get("/api/users/me", token=token).status_code == 200
    assert can_sign_in(api, user.email, PASSWORD)
    assert security_kinds(app, user.id) == []


@pytest.mark.parametrize("weak", [*WEAK, "OWN_EMAIL"])
def test_a_weak_new_password_is_refused_with_the_reason_at_its_field(app, make_user, weak):
    user = make_user(email="grace.hopper@example.org", name="Grace Hopper")
    weak = user.email if weak == "OWN_EMAIL" else weak
    client = signed_in_client(app, user.email)
    response = change_on_page(client, PASSWORD, weak)
    assert response.status_code == 422
    field = text(response).split('name="new_password"', 1)[1].split("</div>", 1)[0]
    assert "too easy to guess" in field or "12 to 128 characters" in field, field
    if weak == user.email:
        assert "It contains your email address or name" in field
    assert session_version(app, user.id) == 1


def test_the_form_needs_a_csrf_token(app, make_user):
    user = make_user()
    client = signed_in_client(app, user.email)
    response = client.post("/account/password", csrf=False,
                           data={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 400
    assert session_version(app, user.id) == 1


# --- the API -------------------------------------------------------------------------

def test_api_change_revokes_every_token_and_session(app, make_user, api):
    user = make_user()
    token, other_token = api.token(user), api.token(user)
    phone = signed_in_client(app, user.email)
    response = api.post("/api/users/me/password", token=token,
                        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 204, text(response)
    assert response.get_data() == b""
    for old in (token, other_token):
        answer = api.get("/api/users/me", token=old)
        assert answer.status_code == 401 and error_of(answer)["code"] == "invalid_token"
    assert not phone.is_signed_in()
    assert not can_sign_in(api, user.email, PASSWORD)
    fresh = api.token(user, NEW_PASSWORD)
    assert api.get("/api/users/me", token=fresh).get_json()["id"] == user.id
    assert [k for k, _ip, _rid in security_kinds(app, user.id)] == ["password_changed"]


def test_api_wrong_current_password_is_401_invalid_credentials(app, make_user, api):
    user = make_user()
    token = api.token(user)
    response = api.post("/api/users/me/password", token=token,
                        json={"current_password": "guess guess guess", "new_password":
                              NEW_PASSWORD})
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_credentials"
    assert api.get("/api/users/me", token=token).status_code == 200  # nothing changed
    assert can_sign_in(api, user.email, PASSWORD)


@pytest.mark.parametrize("weak", [*WEAK, "OWN_EMAIL", "OWN_NAME", "SAME"])
def test_api_weak_new_password_is_400_with_the_reason(app, make_user, api, weak):
    user = make_user(email="alan.turing@example.org", name="Alan Mathison Turing")
    weak = {"OWN_EMAIL": user.email, "OWN_NAME": "Alan Mathison Turing",
            "SAME": PASSWORD}.get(weak, weak)
    token = api.token(user)
    response = api.post("/api/users/me/password", token=token,
                        json={"current_password": PASSWORD, "new_password": weak})
    assert response.status_code == 400, text(response)
    error = error_of(response)
    assert error["code"] in ("invalid_password", "invalid")
    message = error["message"] + json.dumps(error.get("fields"))
    if weak == PASSWORD:
        assert "not your current one" in message
    elif weak in (user.email, "Alan Mathison Turing"):
        assert "It contains your email address or name" in message
    else:
        assert "too easy to guess" in message or "at least 12" in message, message
    assert api.get("/api/users/me", token=token).status_code == 200
    assert session_version(app, user.id) == 1


@pytest.mark.parametrize("body", [{}, {"current_password": PASSWORD},
                                  {"new_password": NEW_PASSWORD},
                                  {"current_password": PASSWORD, "new_password": NEW_PASSWORD,
                                   "extra": 1}])
def test_api_incomplete_body_is_400(app, make_user, api, body):
    user = make_user()
    response = api.post("/api/users/me/password", token=api.token(user), json=body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid"


def test_api_needs_a_caller(api):
    response = api.post("/api/users/me/password",
                        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert response.status_code == 401


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True,
                                         "RATELIMIT_LOGIN_ACCOUNT": "3 per minute"}])
def test_password_guesses_through_a_stolen_session_are_throttled(app, make_user, api):
    """Page and API share one counter per account: the 4th check is 429, whatever door."""
    user = make_user()
    client = signed_in_client(app, user.email)
    token = api.token(user)
    body = {"current_password": "guess number one", "new_password": NEW_PASSWORD}
    assert api.post("/api/users/me/password", token=token, json=body).status_code == 401
    assert change_on_page(client, "guess number two", NEW_PASSWORD).status_code == 422
    assert api.post("/api/users/me/password", token=token, json=body).status_code == 401
    assert change_on_page(client, PASSWORD, NEW_PASSWORD).status_code == 429
    assert api.post("/api/users/me/password", token=token, json=body).status_code == 429
    # Someone else's counter is their own.
    other = make_user()
    response = api.post("/api/users/me/password", token=api.token(other), json=body)
    assert response.status_code == 401
