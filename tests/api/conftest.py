"""Fixtures for the JSON API: a client that speaks JSON with or without a bearer token."""

from __future__ import annotations

import json as jsonlib

import pytest

from tests.conftest import PASSWORD


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


@pytest.fixture
def api(app) -> Api:
    return Api(app)


def error_of(response) -> dict:
    """The error object of a JSON error answer, after checking it is one."""
    assert response.mimetype == "application/json", response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "request_id"} <= set(body["error"]), body
    assert body["error"]["message"], body
    assert "Traceback" not in response.get_data(as_text=True)
    return body["error"]


def event_body(**overrides) -> dict:
    """A valid EventCreate body: next year, two hours, 10 seats."""
    from datetime import UTC, datetime, timedelta

    starts = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    body = {"title": "Launch party", "description": "Cake.",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "location": "Hall A", "capacity": 10}
    body.update(overrides)
    return body
