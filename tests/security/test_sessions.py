"""Session lifetimes enforced on the server (issue 16): run alone with
`pytest tests/security/test_sessions.py`.

A session ends SESSION_ABSOLUTE_SECONDS after sign-in however busy it is, and after
SESSION_IDLE_SECONDS unused (SESSION_REMEMBER_IDLE_SECONDS with "Keep me signed in").
Cookies are replayed as an attacker would: captured, then presented later (the clock
of webapp/auth/sessions.py moved), or re-signed with older times by the app's own
session serializer. Flask-Login's remember cookie no longer restores anyone.
"""

from __future__ import annotations

import pytest

from tests.support.app import PASSWORD
from tests.support.clients import Client

HOUR, DAY = 3600, 24 * 3600


class Clock:
    """The sessions module's clock, moved by the test."""

    def __init__(self, monkeypatch) -> None:
        import webapp.auth.sessions as sessions

        self.real = sessions.now
        self.offset = 0
        monkeypatch.setattr(sessions, "now", lambda: self.real() + self.offset)

    def advance(self, seconds: int) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


def sign_in(app, email: str, *, keep: bool = False) -> Client:
    client = Client(app.test_client())
    data = {"email": email, "password": PASSWORD, "csrf_token": client.csrf()}
    if keep:
        data["remember"] = "y"
    assert client.http.post("/login", data=data).status_code == 303
    return client


def cookie(client: Client) -> str:
    return client.http.get_cookie("session").value


def session_data(app, value: str) -> dict:
    return dict(app.session_interface.get_signing_serializer(app).loads(value))


def resigned(app, value: str, **changes) -> str:
    """The same session, signed again by the app with some values changed."""
    data = {**session_data(app, value), **changes}
    return app.session_interface.get_signing_serializer(app).dumps(data)


def replay(app, value: str, path: str = "/dashboard"):
    """A new browser presenting a captured session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", value)
    return thief.get(path)


def assert_sent_to_sign_in(response, path: str = "/dashboard") -> None:
    assert response.status_code == 303, response.status_code
    assert response.headers["Location"] == f"/login?next={path}"


def set_cookie_headers(response, name: str = "session") -> list[str]:
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]


# --- idle -------------------------------------------------------------------------------------

def test_the_issues_13_day_old_unused_cookie_is_refused(app, make_user):
    user = make_user()
    for keep in (False, True):
        value = cookie(sign_in(app, user.email, keep=keep))
        moment = session_data(app, value)["_seen_at"]
        old = resigned(app, value, _signed_in_at=moment - 13 * DAY, _seen_at=moment - 13 * DAY)
        assert_sent_to_sign_in(replay(app, old))


def test_idle_limits_with_and_without_keep_me_signed_in(app, make_user):
    user = make_user()
    for keep, idle in ((False, 12 * HOUR), (True, 7 * DAY)):
        value = cookie(sign_in(app, user.email, keep=keep))
        moment = session_data(app, value)["_seen_at"]
        within = resigned(app, value, _signed_in_at=moment - idle, _seen_at=moment - idle + 60)
        assert replay(app, within).status_code == 200, keep
        beyond = resigned(app, value, _signed_in_at=moment - idle - 120,
                          _seen_at=moment - idle - 60)
        assert_sent_to_sign_in(replay(app, beyond))


def test_a_captured_cookie_replayed_after_the_idle_limit_is_refused(app, make_user, clock):
    user = make_user()
    captured = cookie(sign_in(app, user.email))
    clock.advance(12 * HOUR - 120)
    assert replay(app, captured).status_code == 200
    clock.advance(240)  # 12 h and 2 min since it was last used
    assert_sent_to_sign_in(replay(app, captured))


def test_use_keeps_a_session_alive_and_moves_last_seen_once_a_minute(app, make_user, clock):
    user = make_user()
    client = sign_in(app, user.email)
    first = session_data(app, cookie(client))["_seen_at"]
    assert client.get("/dashboard").status_code == 200  # the page's new CSRF token is saved
    response = client.get("/dashboard")
    assert response.status_code == 200
    assert set_cookie_headers(response) == []  # not rewritten on every response
    clock.advance(59)
    assert set_cookie_headers(client.get("/dashboard")) == []
    clock.advance(2)
    response = client.get("/dashboard")
    assert len(set_cookie_headers(response)) == 1
    assert session_data(app, cookie(client))["_seen_at"] == first + 61
    for _ in range(3):  # busy for 3 x 11 h: more than the idle limit in all, never idle
        clock.advance(11 * HOUR)
        assert client.get("/dashboard").status_code == 200


# --- absolute -----------------------------------------------------------------------------------

def test_an_active_session_ends_at_the_absolute_limit(app, make_user, clock):
    user = make_user()
    client = sign_in(app, user.email, keep=True)
    captured = cookie(client)
    for _ in range(4):  # used every 6 days: never idle for the 7 days allowed
        clock.advance(6 * DAY)
        assert client.get("/dashboard").status_code == 200
    clock.advance(30 * DAY - 4 * 6 * DAY - 120)
    assert client.get("/dashboard").status_code == 200
    clock.advance(240)
    assert_sent_to_sign_in(client.get("/dashboard"))
    assert_sent_to_sign_in(replay(app, captured))


def test_the_absolute_limit_holds_for_a_cookie_signed_with_an_old_start(app, make_user):
    user = make_user()
    value = cookie(sign_in(app, user.email, keep=True))
    moment = session_data(app, value)["_seen_at"]
    assert replay(app, resigned(app, value, _signed_in_at=moment - 30 * DAY + 60)
                  ).status_code == 200
    assert_sent_to_sign_in(replay(app, resigned(app, value, _signed_in_at=moment - 30 * DAY - 1)))


def test_limits_are_settings(app, make_user, clock):
    app.config.update(SESSION_ABSOLUTE_SECONDS=600, SESSION_IDLE_SECONDS=120)
    user = make_user()
    client = sign_in(app, user.email)
    clock.advance(100)
    assert client.get("/dashboard").status_code == 200
    clock.advance(130)
    assert_sent_to_sign_in(client.get("/dashboard"))


# --- what a refused session does ------------------------------------------------------------------

def test_a_refused_session_is_signed_out(app, make_user, clock):
    user = make_user()
    client = sign_in(app, user.email)
    clock.advance(13 * HOUR)
    response = client.get("/")
    assert response.status_code == 200
    assert "Sign in</a>" in response.get_data(as_text=True)
    assert "_user_id" not in session_data(app, cookie(client))  # the cookie is replaced
    clock.advance(-13 * HOUR)  # even back in time, that session is gone
    assert_sent_to_sign_in(client.get("/dashboard"))


def test_a_refused_session_on_the_api_is_401(app, make_user, clock):
    user = make_user()
    client = sign_in(app, user.email)
    assert client.get("/api/users/me").status_code == 200
    clock.advance(13 * HOUR)
    response = client.get("/api/users/me")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_a_session_without_times_is_refused(app, make_user):
    """A cookie made before this change (or by anything but a sign-in) names a person only."""
    user = make_user()
    value = cookie(sign_in(app, user.email, keep=True))
    bare = {k: v for k, v in session_data(app, value).items()
            if k not in ("_signed_in_at", "_seen_at", "_keep")}
    forged = app.session_interface.get_signing_serializer(app).dumps(bare)
    assert_sent_to_sign_in(replay(app, forged))


# --- cookies ------------------------------------------------------------------------------------

def test_keep_me_signed_in_makes_the_cookie_outlive_the_browser(app, make_user):
    user = make_user()
    for keep in (False, True):
        client = Client(app.test_client())
        data = {"email": user.email, "password": PASSWORD, "csrf_token": client.csrf()}
        if keep:
            data["remember"] = "y"
        response = client.http.post("/login", data=data)
        (header,) = set_cookie_headers(response)
        assert ("Expires=" in header) is keep, header
        assert set_cookie_headers(response, "remember_token") == []
        assert session_data(app, cookie(client))["_keep"] is keep


def test_a_remember_cookie_from_before_restores_no_session(app, make_user):
    """Flask-Login's remember cookie (365 days, no server-side time) is worth nothing now."""
    from flask_login.utils import encode_cookie

    user = make_user()
    with app.test_request_context():
        remember = encode_cookie(f"{user.id}:{user.session_version}")
    thief = app.test_client()
    thief.set_cookie("remember_token", remember)
    response = thief.get("/dashboard")
    assert_sent_to_sign_in(response)
    # The stale cookie is deleted on the way.
    (deleted,) = set_cookie_headers(response, "remember_token")
    assert "Expires=Thu, 01 Jan 1970" in deleted
    assert thief.get("/api/users/me").status_code == 401


def test_signing_up_starts_a_timed_session(app):
    client = Client(app.test_client())
    response = client.http.post("/signup", data={"name": "New", "email": "new@example.org",
                                                 "password": PASSWORD,
                                                 "csrf_token": client.csrf()})
    assert response.status_code == 303
    data = session_data(app, cookie(client))
    assert data["_signed_in_at"] == data["_seen_at"]
    assert data["_keep"] is False
    assert client.get("/dashboard").status_code == 200
