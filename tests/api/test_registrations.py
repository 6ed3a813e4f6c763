"""API registrations: register, cancel (own and on someone's behalf), the two lists."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.support.clients import error_of

REGISTRATION_KEYS = {"id", "event_id", "user_id", "status", "position", "registered_at",
                     "event"}


def test_register_confirmed_shape(api, make_user, make_event, counts):
    event = make_event(capacity=2)
    user = make_user()
    response = api.post(f"/api/events/{event.id}/registrations", token=api.token(user))
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == REGISTRATION_KEYS
    assert (body["event_id"], body["user_id"], body["status"], body["position"]) == (
        event.id, user.id, "confirmed", None)
    assert isinstance(body["id"], int)
    assert body["registered_at"].endswith("+00:00")
    assert body["event"]["id"] == event.id
    assert body["event"]["confirmed"] == 1 and body["event"]["seats_left"] == 1
    assert counts(event.id)["confirmed"] == 1
    assert counts(event.id)["activity"] == {"confirmed": 1}


def test_register_waitlisted_with_position(api, make_user, make_event):
    event = make_event(capacity=1, waitlist_enabled=True)
    api.post(f"/api/events/{event.id}/registrations", token=api.token(make_user()))
    second = api.post(f"/api/events/{event.id}/registrations", token=api.token(make_user()))
    third = api.post(f"/api/events/{event.id}/registrations", token=api.token(make_user()))
    assert second.status_code == third.status_code == 201
    assert (second.get_json()["status"], second.get_json()["position"]) == ("waitlisted", 1)
    assert (third.get_json()["status"], third.get_json()["position"]) == ("waitlisted", 2)


def test_register_full_is_409_event_full(api, make_user, make_event, counts):
    event = make_event(capacity=1)
    api.post(f"/api/events/{event.id}/registrations", token=api.token(make_user()))
    response = api.post(f"/api/events/{event.id}/registrations", token=api.token(make_user()))
    assert response.status_code == 409
    assert error_of(response)["code"] == "event_full"
    assert error_of(response)["message"] == "This event is full."
    assert counts(event.id)["confirmed"] == 1


@pytest.mark.parametrize("waitlisted", [False, True])
def test_register_twice_is_409_already_registered(api, make_user, make_event, waitlisted):
    event = make_event(capacity=1, waitlist_enabled=True)
    if waitlisted:
        api.post(f"/api/events/{event.id}/registrations", token=api.token(make_user()))
    token = api.token(make_user())
    first = api.post(f"/api/events/{event.id}/registrations", token=token)
    assert first.get_json()["status"] == ("waitlisted" if waitlisted else "confirmed")
    again = api.post(f"/api/events/{event.id}/registrations", token=token)
    assert again.status_code == 409
    assert error_of(again)["code"] == "already_registered"


def test_register_unknown_event_is_404_and_needs_token(api, make_user, make_event):
    response = api.post("/api/events/777777/registrations", token=api.token(make_user()))
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    assert api.post(f"/api/events/{make_event().id}/registrations").status_code == 401


def test_register_after_start_is_409_registration_closed(api, make_user, make_event):
    event = make_event(starts_in=timedelta(hours=-1))
    response = api.post(f"/api/events/{event.id}/registrations", token=api.token(make_user()))
    assert response.status_code == 409
    assert error_of(response)["code"] == "registration_closed"


def test_register_ignores_a_body(api, make_user, make_event):
    event = make_event()
    response = api.post(f"/api/events/{event.id}/registrations", token=api.token(make_user()),
                        json={"user_id": 1})
    assert response.status_code == 201


# --- cancel ------------------------------------------------------------------------------

def test_cancel_mine_frees_the_seat_and_promotes(api, make_user, make_event, counts):
    event = make_event(capacity=1, waitlist_enabled=True)
    first, second = make_user(), make_user()
    first_token, second_token = api.token(first), api.token(second)
    api.post(f"/api/events/{event.id}/registrations", token=first_token)
    api.post(f"/api/events/{event.id}/registrations", token=second_token)
    response = api.delete(f"/api/events/{event.id}/registrations/me", token=first_token)
    assert response.status_code == 204
    assert response.get_data() == b""
    mine = api.get("/api/me/registrations", token=second_token).get_json()["items"]
    assert [(r["status"], r["position"]) for r in mine] == [("confirmed", None)]
    assert counts(event.id)["confirmed"] == 1 and counts(event.id)["cancelled"] == 1
    again = api.delete(f"/api/events/{event.id}/registrations/me", token=first_token)
    assert again.status_code == 404
    assert error_of(again)["code"] == "not_registered"
    # and the seat can be taken again after cancelling
    assert api.post(f"/api/events/{event.id}/registrations",
                    token=first_token).get_json()["status"] == "waitlisted"


def test_cancel_mine_never_registered_or_unknown_event(api, make_user, make_event):
    token = api.token(make_user())
    response = api.delete(f"/api/events/{make_event().id}/registrations/me", token=token)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_registered"
    unknown = api.delete("/api/events/565656/registrations/me", token=token)
    assert unknown.status_code == 404
    assert api.delete(f"/api/events/{make_event().id}/registrations/me").status_code == 401


def test_organizer_cancels_someone(api, app, make_user, make_event, counts):
    organizer = make_user(organizer=True)
    event = make_event(organizer=organizer, capacity=1, waitlist_enabled=True)
    attendee, waiting = make_user(), make_user()
    api.post(f"/api/events/{event.id}/registrations", token=api.token(attendee))
    api.post(f"/api/events/{event.id}/registrations", token=api.token(waiting))
    response = api.delete(f"/api/events/{event.id}/registrations/{attendee.id}",
                          token=api.token(organizer))
    assert response.status_code == 204
    items = api.get(f"/api/events/{event.id}/registrations",
                    token=api.token(organizer)).get_json()["items"]
    assert [(i["user_id"], i["status"]) for i in items] == [(waiting.id, "confirmed")]
    with app.app_context():
        from sqlalchemy import select

        from webapp.extensions import db
        from webapp.reports.models import ActivityEntry

        actions = db.session.scalars(select(ActivityEntry.action).where(
            ActivityEntry.user_id == attendee.id, ActivityEntry.outcome == "cancelled")).all()
    assert actions == ["organizer_cancel"]
    assert counts(event.id)["confirmed"] == 1


def test_organizer_cancel_errors(api, make_user, make_event):
    organizer = make_user(organizer=True)
    event = make_event(organizer=organizer)
    attendee = make_user()
    api.post(f"/api/events/{event.id}/registrations", token=api.token(attendee))
    path = f"/api/events/{event.id}/registrations/{attendee.id}"
    other = api.delete(path, token=api.token(make_user(organizer=True)))
    assert other.status_code == 403
    itself = api.delete(path, token=api.token(attendee))
    assert itself.status_code == 403  # the person uses /registrations/me
    assert api.delete(path).status_code == 401
    nobody = api.delete(f"/api/events/{event.id}/registrations/{make_user().id}",
                        token=api.token(organizer))
    assert nobody.status_code == 404
    assert error_of(nobody)["code"] == "not_registered"
    assert api.delete(f"/api/events/898989/registrations/{attendee.id}",
                      token=api.token(organizer)).status_code == 404
    assert api.delete(path, token=api.token(organizer)).status_code == 204


# --- lists --------------------------------------------------------------------------------

def test_my_registrations_sorted_by_event_date_with_filter(api, make_user, make_event):
    user = make_user()
    token = api.token(user)
    later = make_event(starts_in=timedelta(days=20))
    full = make_event(starts_in=timedelta(days=10), capacity=1, waitlist_enabled=True)
    sooner = make_event(starts_in=timedelta(days=3))
    cancelled = make_event(starts_in=timedelta(days=1))
    api.post(f"/api/events/{full.id}/registrations", token=api.token(make_user()))
    for event in (later, full, sooner, cancelled):
        api.post(f"/api/events/{event.id}/registrations", token=token)
    api.delete(f"/api/events/{cancelled.id}/registrations/me", token=token)

    items = api.get("/api/me/registrations", token=token).get_json()["items"]
    assert [(i["event_id"], i["status"], i["position"]) for i in items] == [
        (sooner.id, "confirmed", None), (full.id, "waitlisted", 1), (later.id, "confirmed", None)]
    assert all(set(i) == REGISTRATION_KEYS for i in items)
    assert items[0]["event"]["title"] == sooner.title
    confirmed = api.get("/api/me/registrations?status=confirmed", token=token).get_json()
    assert [i["event_id"] for i in confirmed["items"]] == [sooner.id, later.id]
    waitlisted = api.get("/api/me/registrations?status=waitlisted", token=token).get_json()
    assert [i["event_id"] for i in waitlisted["items"]] == [full.id]


def test_my_registrations_errors(api, make_user):
    token = api.token(make_user())
    assert api.get("/api/me/registrations", token=token).get_json() == {"items": []}
    bad = api.get("/api/me/registrations?status=maybe", token=token)
    assert bad.status_code == 400
    assert error_of(bad)["fields"][0]["field"] == "status"
    assert api.get("/api/me/registrations").status_code == 401


def test_event_registrations_for_its_organizer(api, make_user, make_event):
    organizer = make_user(organizer=True)
    event = make_event(organizer=organizer, capacity=2, waitlist_enabled=True)
    people = [make_user(name=f"Person {n}") for n in range(5)]
    for person in people:
        api.post(f"/api/events/{event.id}/registrations", token=api.token(person))
    api.delete(f"/api/events/{event.id}/registrations/me", token=api.token(people[2]))
    token = api.token(organizer)
    items = api.get(f"/api/events/{event.id}/registrations", token=token).get_json()["items"]
    assert [(i["user_id"], i["status"], i["position"]) for i in items] == [
        (people[0].id, "confirmed", None), (people[1].id, "confirmed", None),
        (people[3].id, "waitlisted", 1), (people[4].id, "waitlisted", 2)]
    assert items[0]["user"] == {"id": people[0].id, "name": "Person 0",
                                "email": people[0].email}
    assert set(items[0]) == REGISTRATION_KEYS | {"user"}

    def only(status):
        response = api.get(f"/api/events/{event.id}/registrations?status={status}", token=token)
        return [i["user_id"] for i in response.get_json()["items"]]

    assert only("confirmed") == [people[0].id, people[1].id]
    assert only("waitlisted") == [people[3].id, people[4].id]
    assert only("cancelled") == [people[2].id]


def test_event_registrations_errors(api, make_user, make_event):
    organizer = make_user(organizer=True)
    event = make_event(organizer=organizer)
    path = f"/api/events/{event.id}/registrations"
    assert api.get(path).status_code == 401
    assert api.get(path, token=api.token(make_user())).status_code == 403
    assert api.get(path, token=api.token(make_user(organizer=True))).status_code == 403
    assert api.get("/api/events/343434/registrations",
                   token=api.token(organizer)).status_code == 404
    bad = api.get(path + "?status=everyone", token=api.token(organizer))
    assert bad.status_code == 400
    assert "status" in error_of(bad)["message"]
