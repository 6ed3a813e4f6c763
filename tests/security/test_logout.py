"""Sign-out only with consent (issue 16): run alone with `pytest tests/security/test_logout.py`.

A GET or HEAD of /logout (a link, an image, a prefetch, from any site or none) only
asks; a POST with the session's CSRF token signs out every device, says so, and is
in the audit trail. The JSON API's POST /api/auth/logout does the same for a token.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.support.clients import Api, Client

ASKS = "Sign out on every device"


def text(response) -> str:
    return response.get_data(as_text=True)


def session_version(app, user_id: int) -> int:
    from webapp.auth.models import User
    from webapp.extensions import db

    with app.app_context():
        return db.session.scalar(select(User.session_version).where(User.id == user_id))


def sign_outs(app) -> list[tuple]:
    from webapp.auth.models import SecurityEvent, SecurityKind
    from webapp.extensions import db

    with app.app_context():
        return [(e.user_id, e.detail, e.ip) for e in db.session.scalars(
            select(SecurityEvent).where(SecurityEvent.kind == SecurityKind.SIGN_OUT)
            .order_by(SecurityEvent.id))]


def is_signed_in(client: Client) -> bool:
    return client.get("/dashboard").status_code == 200


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("fetch_site", [None, "none", "same-origin", "same-site", "cross-site"])
def test_get_and_head_never_sign_out(app, signed_in, make_client, method, fetch_site):
    """The issue's reproduction: HEAD /logout, or GET without Sec-Fetch-Site, signed out."""
    client, user = signed_in
    phone = make_client()
    assert phone.login(user.email).status_code == 303
    headers = {"Sec-Fetch-Site": fetch_site} if fetch_site else {}
    response = client.http.open("/logout", method=method, headers=headers)
    assert response.status_code == 200
    assert is_signed_in(client) and is_signed_in(phone)
    assert session_version(app, user.id) == 1
    assert sign_outs(app) == []


def test_the_question_page_says_every_device_and_posts_with_csrf(signed_in):
    client, _user = signed_in
    body = text(client.get("/logout"))
    assert "<h1>Sign out</h1>" in body
    assert "every device" in body
    assert '<form method="post" action="/logout">' in body
    assert f'<button class="button primary" type="submit">{ASKS}</button>' in body
    assert 'name="csrf_token"' in body


def test_the_nav_signs_out_by_post_and_says_every_device(signed_in):
    client, _user = signed_in
    body = text(client.get("/dashboard"))
    assert '<form class="inline" action="/logout" method="post">' in body
    nav_form = body.split('<form class="inline" action="/logout" method="post">', 1)[1]
    nav_form = nav_form.split("</form>", 1)[0]
    assert 'name="csrf_token"' in nav_form
    assert "every device" in nav_form
    assert 'href="/logout"' not in body


def test_post_without_a_csrf_token_signs_nobody_out(app, signed_in):
    client, user = signed_in
    for headers in ({}, {"X-CSRFToken": "forged"}):
        response = client.http.post("/logout", headers=headers)
        assert response.status_code == 400
    assert is_signed_in(client)
    assert session_version(app, user.id) == 1
    assert sign_outs(app) == []


def test_post_with_csrf_signs_out_every_device_and_token(app, signed_in, make_client):
    client, user = signed_in
    phone = make_client()
    assert phone.login(user.email).status_code == 303
    token = Api(app).token(user)
    response = client.post("/logout")
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert "You are signed out on every device." in text(client.get("/"))
    assert not is_signed_in(client)
    assert not is_signed_in(phone)
    assert Api(app).get("/api/users/me", token=token).status_code == 401
    assert session_version(app, user.id) == 2
    assert sign_outs(app) == [(user.id, "page", "127.0.0.1")]


def test_post_when_signed_out_just_goes_home(app, client):
    response = client.post("/logout")
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert sign_outs(app) == []


def test_the_api_logout_still_signs_out_everywhere_and_is_audited(app, signed_in):
    client, user = signed_in
    api = Api(app)
    token = api.token(user)
    assert api.post("/api/auth/logout", token=token).status_code == 204
    assert api.get("/api/users/me", token=token).status_code == 401
    assert not is_signed_in(client)
    assert sign_outs(app) == [(user.id, "api", "127.0.0.1")]
