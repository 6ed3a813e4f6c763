"""Export my data (GET /api/users/me/export) and personal answers that no cache may keep.

The export must hold every row that points at the person: a table added later with a
foreign key to users fails test_every_table_about_people_is_in_the_export by name.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.support.app import PASSWORD
from tests.support.audit import changes
from tests.support.clients import Api, signed_in_client

NEW_PASSWORD = "velvet otter juggles seven lanterns"
# Every table with a foreign key to users -> the export's key that lists its rows.
EXPORTED_TABLES = {
    "users": "account",
    "registrations": "registrations",
    "activity_log": "activity",
    "outbox": "emails",
    "security_events": "security_events",
    "events": "organized_events",
    "idempotency_keys": "idempotency_keys",
}


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def api(app) -> Api:
    return Api(app)


@pytest.fixture
def person_with_history(app, api, make_user, make_event):
    """A person who has done a bit of everything, and a stranger beside them."""
    person = make_user(email="mary.somerville@example.org", name="Mary Somerville",
                       organizer=True)
    stranger = make_user()
    token = api.token(person)
    seat = make_event(capacity=1, waitlist_enabled=True, title="Seat event")
    left = make_event(capacity=5, title="Left event")
    queue = make_event(capacity=1, waitlist_enabled=True, title="Queue event")
    own = make_event(organizer=person, title="Own event")

    def post(path, **headers):
        response = api.post(path, token=token, headers=headers)
        assert response.status_code == 201, text(response)
        return response.get_json()

    post(f"/api/events/{seat.id}/registrations", **{"Idempotency-Key": "retry-me-1"})
    post(f"/api/events/{left.id}/registrations")
    assert api.delete(f"/api/events/{left.id}/registrations/me",
                      token=token).status_code == 204
    assert api.post(f"/api/events/{queue.id}/registrations",
                    token=api.token(stranger)).get_json()["status"] == "confirmed"
    assert post(f"/api/events/{queue.id}/registrations")["position"] == 1
    assert api.post(f"/api/events/{seat.id}/registrations",
                    token=api.token(stranger)).get_json()["status"] == "waitlisted"
    assert api.post("/api/users/me/password", token=token, json={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD}).status_code == 204
    return {"person": person, "stranger": stranger, "seat": seat, "left": left,
            "queue": queue, "own": own, "token": api.token(person, NEW_PASSWORD)}


def export(api, token):
    response = api.get("/api/users/me/export", token=token)
    assert response.status_code == 200, text(response)
    return response


def test_the_export_holds_everything_about_the_person(app, api, person_with_history):
    world = person_with_history
    person = world["person"]
    data = export(api, world["token"]).get_json()

    assert set(data) == {"exported_at", *EXPORTED_TABLES.values()}
    account = data["account"]
    assert {k: account[k] for k in ("id", "email", "name", "is_organizer")} == {
        "id": person.id, "email": "mary.somerville@example.org", "name": "Mary Somerville",
        "is_organizer": True}
    assert datetime.fromisoformat(account["created_at"]).tzinfo is not None
    assert account["email_verified_at"] is None

    by_event = {r["event"]["id"]: r for r in data["registrations"]}
    assert set(by_event) == {world["seat"].id, world["left"].id, world["queue"].id}
    assert (by_event[world["seat"].id]["status"], by_event[world["seat"].id]["position"]) == (
        "confirmed", None)
    assert by_event[world["left"].id]["status"] == "cancelled"
    assert by_event[world["left"].id]["cancelled_at"] is not None
    assert (by_event[world["queue"].id]["status"], by_event[world["queue"].id]["position"]) == (
        "waitlisted", 1)
    assert by_event[world["seat"].id]["event"]["title"] == "Seat event"
    assert by_event[world["seat"].id]["event"]["starts_at"].endswith("+00:00")

    assert sorted((a["event_id"], a["outcome"]) for a in data["activity"]) == sorted([
        (world["seat"].id, "confirmed"), (world["left"].id, "confirmed"),
        (world["left"].id, "cancelled"), (world["queue"].id, "waitlisted")])
    assert sorted((e["event_id"], e["kind"]) for e in data["emails"]) == sorted([
        (world["seat"].id, "confirmation"), (world["left"].id, "confirmation"),
        (world["left"].id, "cancellation"), (world["queue"].id, "waitlisted")])
    assert all(set(e) >= {"status", "created_at", "sent_at"} for e in data["emails"])
    kinds = [e["kind"] for e in changes(data["security_events"])]
    assert kinds == ["password_changed", "data_exported"]  # the export lists itself
    assert [e["id"] for e in data["organized_events"]] == [world["own"].id]
    assert [(k["key"], k["event_id"], k["outcome"]) for k in data["idempotency_keys"]] == [
        ("retry-me-1", world["seat"].id, "confirmed")]


def test_the_export_holds_nothing_about_anyone_else(app, api, person_with_history):
    world = person_with_history
    body = text(export(api, world["token"]))
    stranger = world["stranger"]
    assert stranger.email not in body and stranger.name not in body
    data = export(api, api.token(stranger)).get_json()
    assert data["account"]["id"] == stranger.id
    assert {r["event"]["id"] for r in data["registrations"]} == {world["queue"].id,
                                                                  world["seat"].id}
    assert data["organized_events"] == [] and data["idempotency_keys"] == []
    assert "mary.somerville" not in text(export(api, api.token(stranger)))


def test_every_table_about_people_is_in_the_export(app, api, person_with_history):
    """Each table pointing at users has rows for this person, and the export lists them."""
    from webapp.extensions import db

    with app.app_context():
        about_people = sorted({t.name for t in db.metadata.sorted_tables
                               for fk in t.foreign_keys if fk.column.table.name == "users"}
                              | {"users"})
    missing = [name for name in about_people if name not in EXPORTED_TABLES]
    assert not missing, f"tables about people missing from the export: {missing}"
    data = export(api, person_with_history["token"]).get_json()
    empty = [name for name in about_people if not data[EXPORTED_TABLES[name]]]
    assert not empty, f"the export lists no rows of: {empty}"


def test_the_export_is_a_download_never_cached_and_audited(app, api, make_user):
    from webapp.auth import audit

    person = make_user()
    response = export(api, api.token(person))
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="turnout-data-{person.id}.json"')
    with app.app_context():
        events = audit.events_of(person.id)
    assert [e.kind for e in changes(events)] == ["data_exported"]
    assert changes(events)[0].ip and changes(events)[0].request_id


def test_the_account_page_link_downloads_with_the_session(app, make_user):
    person = make_user()
    client = signed_in_client(app, person.email)
    page = text(client.get("/account"))
    assert 'href="/api/users/me/export"' in page
    response = client.get("/api/users/me/export")
    assert response.status_code == 200
    assert response.get_json()["account"]["email"] == person.email
    assert "attachment" in response.headers["Content-Disposition"]


def test_the_export_needs_a_caller(api):
    assert api.get("/api/users/me/export").status_code == 401


# --- no-store on everything personal -----------------------------------------------------

def test_personal_answers_are_never_stored_by_caches(app, api, make_user, make_event):
    from webapp.registrations.services import register

    organizer, person = make_user(organizer=True), make_user()
    event = make_event(organizer=organizer, capacity=1, waitlist_enabled=True)
    with app.app_context():
        register(event.id, person.id)
        register(event.id, make_user().id)
    mine, theirs = api.token(person), api.token(organizer)
    answers = {
        "/api/users/me": api.get("/api/users/me", token=mine),
        "/api/users/me/export": api.get("/api/users/me/export", token=mine),
        "/api/me/registrations": api.get("/api/me/registrations", token=mine),
        "/api/events/<id>/registrations": api.get(f"/api/events/{event.id}/registrations",
                                                  token=theirs),
    }
    organizer_pages = signed_in_client(app, organizer.email)
    for which in ("attendees", "waitlist"):
        answers[f"{which}.csv"] = organizer_pages.get(
            f"/organizer/events/{event.id}/{which}.csv")
    answers["/account"] = signed_in_client(app, person.email).get("/account")
    wrong = {path: (r.status_code, r.headers.get("Cache-Control"))
             for path, r in answers.items()
             if r.status_code != 200 or r.headers.get("Cache-Control") != "no-store"}
    assert not wrong, wrong


def test_errors_and_public_json_are_not_stored_either(api, make_event):
    event = make_event()
    for response in (api.get("/api/users/me"), api.get(f"/api/events/{event.id}"),
                     api.get("/api/events")):
        assert response.headers["Cache-Control"] == "no-store"


def test_a_data_export_reads_a_fresh_account(app, api, make_user):
    """The export reads SQL, not the signed-in copy: a name changed elsewhere shows."""
    from webapp.auth.models import User
    from webapp.database import write_session

    person = make_user(name="Old Name")
    token = api.token(person)
    assert api.get("/api/users/me", token=token).status_code == 200  # the copy is cached
    with app.app_context(), write_session() as session:
        session.execute(User.__table__.update().where(User.__table__.c.id == person.id)
                        .values(name="New Name"))
    assert export(api, token).get_json()["account"]["name"] == "New Name"
