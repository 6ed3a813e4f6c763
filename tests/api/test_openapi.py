"""GET /api/openapi.json describes every API route, method, answer and the bearer scheme."""

from __future__ import annotations

import re

import pytest

SPEC_TABLE = {  # SPEC.md "JSON API": method and path -> the success status
    ("post", "/api/auth/signup"): "201",
    ("post", "/api/auth/login"): "200",
    ("get", "/api/users/me"): "200",
    ("get", "/api/events"): "200",
    ("get", "/api/events/{event_id}"): "200",
    ("get", "/api/events/{event_id}/capacity"): "200",
    ("post", "/api/events"): "201",
    ("patch", "/api/events/{event_id}"): "200",
    ("post", "/api/events/{event_id}/registrations"): "201",
    ("delete", "/api/events/{event_id}/registrations/me"): "204",
    ("delete", "/api/events/{event_id}/registrations/{user_id}"): "204",
    ("get", "/api/me/registrations"): "200",
    ("get", "/api/events/{event_id}/registrations"): "200",
    # Part 2 "Accounts"
    ("post", "/api/users/me/password"): "204",
    ("get", "/api/users/me/export"): "200",
    ("delete", "/api/users/me"): "204",
    ("post", "/api/auth/password/forgot"): "202",
    ("post", "/api/auth/password/reset"): "204",
}
# Described beyond the SPEC's table.
EXTRA = {("post", "/api/auth/logout"), ("post", "/api/users/me/verification")}


@pytest.fixture
def document(api):
    response = api.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def _operations(document):
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            yield method, path, spec


def test_every_spec_endpoint_is_described_with_its_status(document):
    described = {(m, p): spec for m, p, spec in _operations(document)}
    for key, status in SPEC_TABLE.items():
        assert key in described, key
        assert status in described[key]["responses"], key
    assert set(described) - set(SPEC_TABLE) == EXTRA


def test_every_api_route_is_in_the_document_and_nothing_else(app, document):
    """A new /api route that the document does not describe fails here."""
    described = {(m.upper(), p) for m, p, _spec in _operations(document)}
    routed = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.endpoint == "api.openapi":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?(\w+)>", r"{\1}", rule.rule)
        routed |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routed == described


def test_documented_error_statuses(document):
    described = {(m, p): spec["responses"] for m, p, spec in _operations(document)}
    assert {"400", "401", "403", "404", "413", "415", "500"} <= set(
        described[("patch", "/api/events/{event_id}")])
    assert {"409", "404", "401"} <= set(
        described[("post", "/api/events/{event_id}/registrations")])
    assert "409" in described[("post", "/api/auth/signup")]
    assert "429" in described[("post", "/api/auth/login")]
    conflict = described[("post", "/api/events/{event_id}/registrations")]["409"]
    for code in ("event_full", "already_registered"):
        assert code in conflict["description"]
    assert "not_registered" in described[
        ("delete", "/api/events/{event_id}/registrations/me")]["404"]["description"]
    assert "email_taken" in described[("post", "/api/auth/signup")]["409"]["description"]
    password = described[("post", "/api/users/me/password")]
    assert "invalid_credentials" in password["401"]["description"]
    assert "invalid_password" in password["400"]["description"]
    assert "owns_events" in described[("delete", "/api/users/me")]["409"]["description"]
    for _m, _p, spec in _operations(document):
        assert "500" in spec["responses"]


def test_bearer_security_scheme_and_which_operations_need_it(document):
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearerAuth"]["description"]}
    public = {(m, p) for m, p, spec in _operations(document) if spec["security"] == []}
    assert public == {("post", "/api/auth/signup"), ("post", "/api/auth/login"),
                      ("post", "/api/auth/password/forgot"),
                      ("post", "/api/auth/password/reset"),
                      ("get", "/api/events"), ("get", "/api/events/{event_id}"),
                      ("get", "/api/events/{event_id}/capacity")}
    for _m, _p, spec in _operations(document):
        if spec["security"]:
            assert spec["security"] == [{"bearerAuth": []}]
            assert "401" in spec["responses"]


def test_schemas_come_from_the_pydantic_models(document):
    from webapp.api.schemas import EventOut
    from webapp.events.schemas import EventCreate

    schemas = document["components"]["schemas"]
    create = schemas["EventCreate"]
    assert create["additionalProperties"] is False
    assert set(create["required"]) == {"title", "starts_at", "ends_at", "location", "capacity"}
    assert create["properties"]["capacity"]["maximum"] == 100_000
    assert create["properties"]["starts_at"]["format"] == "date-time"
    assert set(create["properties"]) == set(EventCreate.model_fields)
    assert set(schemas["EventOut"]["properties"]) == set(EventOut.model_fields)
    assert "waitlisted" in schemas["EventOut"]["required"]

    refs = set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"',
                          __import__("json").dumps(document)))
    assert refs <= set(schemas), refs - set(schemas)
    body = document["paths"]["/api/events"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EventCreate"}


def test_path_ids_and_query_parameters(document):
    params = document["paths"]["/api/events/{event_id}/registrations/{user_id}"]["delete"][
        "parameters"]
    assert [(p["name"], p["in"], p["schema"]["type"]) for p in params] == [
        ("event_id", "path", "integer"), ("user_id", "path", "integer")]
    query = document["paths"]["/api/me/registrations"]["get"]["parameters"]
    assert query == [{"name": "status", "in": "query", "required": False,
                      "description": query[0]["description"],
                      "schema": {"type": "string", "enum": ["confirmed", "waitlisted"],
                                 "description": query[0]["description"]}}]


def test_schemathesis_loads_every_operation(document):
    import schemathesis

    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(SPEC_TABLE) + len(EXTRA)
