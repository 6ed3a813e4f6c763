"""Flask test clients: a browser-like one (form sign-in, CSRF) and a cookie-less JSON one."""

from __future__ import annotations

import json as jsonlib
import re

from tests.support.app import PASSWORD

CSRF_IN_PAGE = re.compile(r'"X-CSRFToken": "([^"]+)"')


class Client:
    """A test client that signs in through the real form and sends CSRF tokens like a browser."""

    def __init__(self, flask_client) -> None:
        self.http = flask_client

    def csrf(self) -> str:
        page = self.http.get("/").get_data(as_text=True)
        return CSRF_IN_PAGE.search(page).group(1)

    def login(self, email: str, password: str = PASSWORD, next_url: str | None = None,
              **form):
        """Sign in through the form; `form`: more fields, e.g. remember="y"."""
        path = "/login" + (f"?next={next_url}" if next_url else "")
        return self.http.post(path, data={"email": email, "password": password,
                                          "csrf_token": self.csrf(), **form})

    def is_signed_in(self) -> bool:
        """Whether the dashboard opens (else it sends the browser to sign in)."""
        response = self.get("/dashboard")
        if response.status_code == 200:
            return True
        assert response.status_code in (302, 303) and "/login" in response.headers["Location"]
        return False

    def post(self, path: str, *, htmx: bool = False, csrf: bool = True, **kwargs):
        headers = dict(kwargs.pop("headers", {}) or {})
        if htmx:
            headers["HX-Request"] = "true"
        if csrf:
            headers["X-CSRFToken"] = self.csrf()
        return self.http.post(path, headers=headers, **kwargs)

    def get(self, path: str, *, htmx: bool = False, **kwargs):
        headers = dict(kwargs.pop("headers", {}) or {})
        if htmx:
            headers["HX-Request"] = "true"
        return self.http.get(path, headers=headers, **kwargs)


def signed_in_client(app, email: str, password: str = PASSWORD, **form) -> Client:
    """A fresh browser signed in as `email` through the form (`form`: e.g. remember="y")."""
    client = Client(app.test_client())
    response = client.login(email, password, **form)
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


class Api:
    """A cookie-less JSON client (a fresh Flask test client per call keeps no cookies)."""

    def __init__(self, app) -> None:
        self.app = app

    def call(self, method: str, path: str, *, token: str | None = None, json=None,
             data: bytes | str | None = None, headers: dict | None = None,
             content_type: str | None = None):
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if json is not None:
            data = jsonlib.dumps(json)
            content_type = content_type or "application/json"
        http = self.app.test_client(use_cookies=False)
        return http.open(path, method=method, data=data, headers=headers,
                         content_type=content_type)

    def get(self, path: str, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.call("POST", path, **kwargs)

    def patch(self, path: str, **kwargs):
        return self.call("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.call("DELETE", path, **kwargs)

    def token(self, user_or_email, password: str = PASSWORD) -> str:
        email = getattr(user_or_email, "email", user_or_email)
        response = self.post("/api/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()["token"]


def error_of(response) -> dict:
    """The error object of a JSON error answer, after checking it is one."""
    assert response.mimetype == "application/json", response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "request_id"} <= set(body["error"]), body
    assert body["error"]["message"], body
    assert "Traceback" not in response.get_data(as_text=True)
    return body["error"]
