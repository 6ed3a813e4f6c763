"""Bad input of every kind gets a 4xx JSON error: never an HTML page, never a trace."""

from __future__ import annotations

import pytest

from tests.support.app import PASSWORD
from tests.support.clients import error_of
from tests.support.samples import event_body


@pytest.fixture
def organizer_token(api, make_user):
    return api.token(make_user(organizer=True))


@pytest.mark.parametrize("raw", [
    b"{", b'{"title": }', b"not json", b"", b"[1, 2]", b"null", b"42", b'"string"',
    b"\xff\xfe\x00", b'{"title": "\\ud800"}', b'{"capacity": NaN}',
])
def test_malformed_json_is_400(api, organizer_token, raw):
    response = api.post("/api/events", token=organizer_token, data=raw,
                        content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)
    error = error_of(response)
    assert error["code"] in {"invalid_json", "invalid"}
    if error["code"] == "invalid_json":
        assert error["message"].startswith("The request body is not valid JSON")


def test_top_level_array_says_object_expected(api, organizer_token):
    response = api.post("/api/events", token=organizer_token, data=b"[]",
                        content_type="application/json")
    assert error_of(response)["fields"] == [{"field": "body", "message": "must be a JSON object"}]


@pytest.mark.parametrize("content_type", [
    None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/xml",
])
def test_wrong_content_type_is_415(api, organizer_token, content_type):
    import json

    response = api.post("/api/events", token=organizer_token,
                        data=json.dumps(event_body()), content_type=content_type)
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_json_with_charset_and_vendor_type_are_fine(api, organizer_token):
    import json

    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = api.post("/api/events", token=organizer_token,
                            data=json.dumps(event_body()), content_type=content_type)
        assert response.status_code == 201, content_type


def test_huge_body_is_413_json(api, app, organizer_token):
    limit = app.config["API_MAX_CONTENT_LENGTH"]
    response = api.post("/api/events", token=organizer_token,
                        json=event_body(description="x" * (limit + 10)))
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"
    signup = api.post("/api/auth/signup", data=b"{" + b" " * (limit + 1) + b"}",
                      content_type="application/json")
    assert signup.status_code == 413


def test_body_just_under_the_limit_is_read(api, app, organizer_token):
    # 5000 characters of "\u00e9" escapes are 30 kB of JSON: well inside the limit.
    response = api.post("/api/events", token=organizer_token,
                        data=('{"title":"T","starts_at":"2099-01-01T10:00:00+00:00",'
                              '"ends_at":"2099-01-01T11:00:00+00:00","location":"L",'
                              '"capacity":3,"description":"' + "\\u00e9" * 5000 + '"}'),
                        content_type="application/json")
    assert response.status_code == 201
    assert response.get_json()["description"] == "é" * 5000


@pytest.mark.parametrize("path", [
    "/api/events/abc", "/api/events/0", "/api/events/-1", "/api/events/1.5",
    "/api/events/99999999999999999999", "/api/events/2147483648",
    "/api/events/abc/capacity", "/api/events/%00/capacity",
    "/api/events/1/registrations/abc", "/api/events/1/registrations/99999999999",
    "/api/nope", "/api/",
])
def test_non_integer_or_out_of_range_ids_are_404_json(api, make_user, path):
    token = api.token(make_user(organizer=True))
    for method in ("GET", "PATCH", "DELETE", "POST"):
        response = api.call(method, path, token=token, json={})
        assert response.status_code in (404, 405), (method, path, response.status_code)
        error_of(response)


def test_largest_id_is_a_plain_404(api, make_user):
    response = api.get("/api/events/2147483647", token=api.token(make_user()))
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_wrong_method_is_405_json_with_allow(api):
    response = api.call("PUT", "/api/events")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"] and "POST" in response.headers["Allow"]


@pytest.mark.parametrize(("body", "field"), [
    ({"email": ["a@example.org"], "password": PASSWORD}, "email"),
    ({"email": "a@example.org", "password": 123456789012}, "password"),
    ({"email": "a@example.org", "password": PASSWORD, "remember": True}, "remember"),
    ({"email": "a@example.org"}, "password"),
    ({"email": "a@example.org", "password": "x" * 129}, "password"),
])
def test_login_bad_shapes_are_400_not_401(api, body, field):
    response = api.post("/api/auth/login", json=body)
    assert response.status_code == 400
    assert error_of(response)["fields"][0]["field"] == field


@pytest.mark.parametrize("text", ["\x00", "a\x07b", "\u2028", "\x9b"])
def test_control_characters_in_one_line_fields_are_refused(api, organizer_token, text):
    response = api.post("/api/events", token=organizer_token, json=event_body(location=text))
    assert response.status_code == 400
    assert error_of(response)["fields"][0]["field"] == "location"


def test_description_keeps_line_breaks_but_not_nul(api, organizer_token):
    ok = api.post("/api/events", token=organizer_token,
                  json=event_body(description="Line 1\nLine 2\r\n\tindented"))
    assert ok.status_code == 201
    assert ok.get_json()["description"] == "Line 1\nLine 2\r\n\tindented"
    refused = api.post("/api/events", token=organizer_token,
                       json=event_body(description="a\x00b"))
    assert refused.status_code == 400


def test_unicode_round_trips(api, organizer_token):
    title = "Fête 🎉 — 東京 Ω"
    created = api.post("/api/events", token=organizer_token, json=event_body(title=title))
    assert created.status_code == 201
    assert api.get(f"/api/events/{created.get_json()['id']}").get_json()["title"] == title


def test_unexpected_failure_is_500_json_with_request_id_and_no_trace(api, app, make_user,
                                                                      monkeypatch):
    from webapp.events import services

    def broken():
        raise RuntimeError("secret internals")

    monkeypatch.setattr(services, "upcoming_events", broken)
    response = api.get("/api/events", headers={"X-Request-ID": "req-abcdef123"})
    assert response.status_code == 500
    error = error_of(response)
    assert error["code"] == "internal_error"
    assert error["request_id"] == "req-abcdef123"
    assert "secret internals" not in response.get_data(as_text=True)


def test_every_error_carries_the_request_id_header(api):
    response = api.get("/api/events/1")
    assert response.headers["X-Request-ID"] == error_of(response)["request_id"]
