"""Sign-up, sign-in and sign-out pages over HTTP."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.support.app import PASSWORD

EMOJI_128 = "🎉🦊🌍🚲🎻🍕🧭🌵🪁🐙🎲🚀" * 10 + "🎉🦊🌍🚲🎻🍕🧭🌵"  # varied: a repeat is refused


def text(response) -> str:
    return response.get_data(as_text=True)


def user_row(app, email: str):
    from webapp.auth.models import User
    from webapp.extensions import db

    with app.app_context():
        return db.session.scalar(select(User).where(User.email == email))


def user_count(app) -> int:
    from webapp.auth.models import User
    from webapp.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def signup(client, email: str, password: str, name: str = "Sam Signup", next_url: str = ""):
    path = "/signup" + (f"?next={next_url}" if next_url else "")
    return client.http.post(path, data={"name": name, "email": email, "password": password,
                                        "csrf_token": client.csrf()})


def is_signed_in(client) -> bool:
    return client.get("/dashboard").status_code == 200


# --- Sign in -------------------------------------------------------------------------

def test_login_page(client):
    response = client.get("/login")
    body = text(response)
    assert response.status_code == 200
    assert "<h1>Sign in</h1>" in body
    assert 'name="csrf_token"' in body
    assert 'action="/login?next=/dashboard"' in body


def test_login_lands_on_the_dashboard(client, make_user):
    user = make_user()
    response = client.login(user.email)
    assert response.status_code == 303
    assert response.headers["Location"] == "/dashboard"
    assert is_signed_in(client)


def test_login_email_is_case_insensitive(client, make_user):
    user = make_user(email="mixed@example.org")
    assert client.login("  MIXED@Example.ORG ").status_code == 303
    assert is_signed_in(client)
    assert user.email == "mixed@example.org"


def test_login_follows_a_local_next(client, make_user):
    user = make_user()
    response = client.login(user.email, next_url="/me/events")
    assert response.headers["Location"] == "/me/events"


def test_wrong_password_is_refused_with_422(client, make_user):
    user = make_user()
    response = client.login(user.email, "not the right password")
    assert response.status_code == 422
    assert "Wrong email or password." in text(response)
    assert not is_signed_in(client)


def test_signed_in_visit_to_login_goes_on(signed_in):
    client, _user = signed_in
    response = client.get("/login?next=/me/events")
    assert response.status_code == 303
    assert response.headers["Location"] == "/me/events"


# --- Sign up -------------------------------------------------------------------------

def test_signup_creates_the_account_and_signs_in(app, client):
    response = signup(client, "New.Person@Example.org", PASSWORD, name="  New   Person ")
    assert response.status_code == 303
    assert response.headers["Location"] == "/dashboard"
    user = user_row(app, "new.person@example.org")
    assert user is not None
    assert user.name == "New Person"
    assert user.is_organizer is False
    assert user.password_hash.startswith("scrypt:")
    assert PASSWORD not in user.password_hash
    page = text(client.get("/dashboard"))
    assert "Welcome to Turnout, New Person." in page


def test_signup_follows_a_local_next(client, make_event):
    event = make_event()
    response = signup(client, "next@example.org", PASSWORD, next_url=f"/events/{event.id}")
    assert response.headers["Location"] == f"/events/{event.id}"


def test_signup_with_a_taken_email_does_not_say_so(app, client, make_user):
    """The page never confirms an account (tests/security/test_signup.py has the rest)."""
    make_user(email="taken@example.org")
    for email in ("taken@example.org", "TAKEN@example.org"):
        response = signup(client, email, PASSWORD)
        assert response.status_code == 200
        assert "Check your email" in text(response)
        assert "already exists" not in text(response)
    assert user_count(app) == 1
    assert not is_signed_in(client)


@pytest.mark.parametrize("password, message", [
    ("a" * 11, "Field must be between 12 and 128 characters long."),
    ("🎉" * 129, "Field must be between 12 and 128 characters long."),
    ("password1234", "Password: too easy to guess. This is a very common password."),
    ("PassWord1234", "Password: too easy to guess. This is similar to a commonly used password."),
])
def test_signup_refuses_bad_passwords(app, client, password, message):
    response = signup(client, "policy@example.org", password)
    assert response.status_code == 422
    assert message in text(response)
    assert user_row(app, "policy@example.org") is None
    assert not is_signed_in(client)


def test_signup_accepts_a_128_character_emoji_password_without_truncation(app, client,
                                                                        make_client):
    assert len(EMOJI_128) == 128
    response = signup(client, "emoji@example.org", EMOJI_128)
    assert response.status_code == 303
    assert user_row(app, "emoji@example.org").password_hash.startswith("scrypt:")
    fresh = make_client()
    assert fresh.login("emoji@example.org", EMOJI_128[:-1]).status_code == 422
    assert fresh.login("emoji@example.org", EMOJI_128).status_code == 303


def test_signup_refuses_a_bad_email_and_an_empty_name(app, client):
    response = signup(client, "not-an-email", PASSWORD)
    assert response.status_code == 422
    response = signup(client, "ok@example.org", PASSWORD, name="   ")
    assert response.status_code == 422
    assert "This field is required." in text(response)
    assert user_count(app) == 0


# --- Sign out ------------------------------------------------------------------------

def test_logout_signs_out_and_goes_to_the_events(signed_in):
    client, _user = signed_in
    response = client.post("/logout")
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert "You are signed out on every device." in text(client.get("/"))
    assert not is_signed_in(client)


@pytest.mark.parametrize("fetch_site", [None, "same-origin", "none", "cross-site"])
def test_get_logout_only_asks(app, signed_in, fetch_site):
    """A link, an image or a prefetch must not sign people out, from any site: it asks."""
    client, user = signed_in
    headers = {"Sec-Fetch-Site": fetch_site} if fetch_site else {}
    response = client.get("/logout", headers=headers)
    assert response.status_code == 200
    body = text(response)
    assert '<form method="post" action="/logout">' in body
    assert 'name="csrf_token"' in body
    assert "Sign out on every device" in body
    assert is_signed_in(client)
    assert user_row(app, user.email).session_version == 1


def test_get_logout_when_signed_out_goes_home(client):
    response = client.get("/logout")
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
