"""Deleting an account (/account and DELETE /api/users/me).

Live places are cancelled through the registration service (the waitlist moves up and
is told), then the row becomes an anonymous tombstone: every session and token dies,
the address can sign up again, the activity log keeps pointing at the tombstone, unsent
email to the person is withdrawn. An organizer of events that have not ended gets 409.
Races against promotions and a rush of registrations leave exact seat counts and a seat
gate with no drift.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from tests.support.app import PASSWORD
from tests.support.audit import changes
from tests.support.clients import Api, Client, error_of, signed_in_client
from tests.support.races import race
from tests.support.state import redis_seats, sql_confirmed_users


def body(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def api(app) -> Api:
    return Api(app)


def user_row(app, user_id: int) -> dict:
    from webapp.auth.models import User
    from webapp.database import read_session

    with app.app_context(), read_session() as s:
        return dict(s.execute(select(User.__table__).where(User.id == user_id)).mappings().one())


def places(app, event_id: int) -> dict[int, tuple[str, int | None]]:
    """user id -> (status, position) at the event."""
    from webapp.database import read_session
    from webapp.registrations.models import Registration

    with app.app_context(), read_session() as s:
        rows = s.execute(select(Registration.user_id, Registration.status, Registration.position)
                         .where(Registration.event_id == event_id)).all()
    return {row.user_id: (row.status, row.position) for row in rows}


def mail_to(app, user_id: int) -> list[tuple[str, int | None, str, str | None]]:
    """(kind, event, status, last_error) of each outbox row to the person."""
    from webapp.database import read_session
    from webapp.mail.models import OutboxMessage as M

    with app.app_context(), read_session() as s:
        return [tuple(r) for r in s.execute(
            select(M.kind, M.event_id, M.status, M.last_error).where(M.user_id == user_id)
            .order_by(M.id)).all()]


def activity_of(app, user_id: int) -> list[tuple[int, str]]:
    from webapp.database import read_session
    from webapp.reports.models import ActivityEntry as A

    with app.app_context(), read_session() as s:
        return [tuple(r) for r in s.execute(select(A.event_id, A.outcome)
                                            .where(A.user_id == user_id).order_by(A.id))]


def no_drift(app, *event_ids: int) -> None:
    """SQL's counters match its rows, Redis's gate matches SQL, and reconcile repairs nothing."""
    from tests.support.state import sql_counts
    from webapp.extensions import redis_store
    from webapp.registrations.reconcile import reconcile_upcoming

    with app.app_context():
        for event_id in event_ids:
            counts = sql_counts(event_id)
            assert counts["confirmed_count"] == counts["confirmed"], counts
            assert counts["confirmed"] <= counts["capacity"], counts
            confirmed, holds = redis_seats(redis_store.client, event_id)
            assert (confirmed, holds) == (sql_confirmed_users(event_id), 0)
        drifted = [d for d in reconcile_upcoming() if d.drifted and d.event_id in event_ids]
    assert not drifted, drifted


def register(app, event_id: int, *user_ids: int) -> list[str]:
    from webapp.registrations.services import register as register_one

    with app.app_context():
        return [str(register_one(event_id, uid).status) for uid in user_ids]


def delete(app, user_id: int, **options) -> None:
    from webapp.accounts.services import delete_account

    with app.app_context():
        delete_account(user_id, **options)


def gone_by_api(api, token) -> None:
    response = api.delete("/api/users/me", token=token)
    assert response.status_code == 204, body(response)
    assert response.get_data() == b""


# --- the tombstone ---------------------------------------------------------------------

def test_the_account_becomes_an_anonymous_tombstone(app, api, make_user):
    person = make_user(email="ada@example.org", name="Ada Lovelace", organizer=True)
    before = user_row(app, person.id)
    gone_by_api(api, api.token(person))
    row = user_row(app, person.id)
    assert row["email"] == f"deleted-{person.id}@deleted.invalid"
    assert row["name"] == "Deleted account"
    assert row["is_organizer"] is False or row["is_organizer"] == 0
    assert row["deleted_at"] is not None and row["email_verified_at"] is None
    assert row["password_hash"] != before["password_hash"]
    assert "Ada" not in json.dumps(row, default=str)
    assert row["session_version"] > before["session_version"]
    assert row["created_at"] == before["created_at"]


def test_every_session_and_token_dies_and_the_old_password_opens_nothing(app, api, make_user):
    person = make_user()
    token, other_token = api.token(person), api.token(person)
    laptop, phone = signed_in_client(app, person.email), signed_in_client(app, person.email)
    gone_by_api(api, token)
    for old in (token, other_token):
        answer = api.get("/api/users/me", token=old)
        assert answer.status_code == 401 and error_of(answer)["code"] == "invalid_token"
    assert not laptop.is_signed_in() and not phone.is_signed_in()
    refused = api.post("/api/auth/login", json={"email": person.email, "password": PASSWORD})
    assert refused.status_code == 401
    with app.app_context():
        from webapp.auth.services import authenticate

        assert authenticate(person.email, PASSWORD) is None
        assert authenticate(f"deleted-{person.id}@deleted.invalid", PASSWORD) is None


def test_the_same_address_can_sign_up_again_as_someone_new(app, api, make_user):
    person = make_user(email="again@example.org")
    gone_by_api(api, api.token(person))
    created = api.post("/api/auth/signup", json={"email": "Again@Example.org", "name": "New me",
                                                 "password": PASSWORD})
    assert created.status_code == 201, body(created)
    assert created.get_json()["id"] != person.id
    token = api.token("again@example.org")
    me = api.get("/api/users/me", token=token).get_json()
    assert (me["id"], me["name"]) == (created.get_json()["id"], "New me")
    assert api.get("/api/me/registrations", token=token).get_json()["items"] == []


def test_deleting_twice_changes_nothing_the_second_time(app, make_user):
    from webapp.auth import audit
    from webapp.errors import NotFound

    person = make_user()
    delete(app, person.id)
    row = user_row(app, person.id)
    with pytest.raises(NotFound):
        delete(app, person.id)
    assert user_row(app, person.id) == row
    with app.app_context():
        assert [e.kind for e in changes(audit.events_of(person.id))] == ["account_deleted"]


# --- what happens to the person's places, email and keys ----------------------------------

def test_live_places_are_cancelled_and_the_waitlists_move_up_as_for_a_cancel(
        app, api, make_user, make_event):
    person, first, second, seated = (make_user() for _ in range(4))
    held = make_event(capacity=1, waitlist_enabled=True)  # the person's seat, two waiting
    queued = make_event(capacity=1, waitlist_enabled=True)  # the person waits first of two
    assert register(app, held.id, person.id, first.id, second.id) == [
        "confirmed", "waitlisted", "waitlisted"]
    assert register(app, queued.id, seated.id, person.id, second.id) == [
        "confirmed", "waitlisted", "waitlisted"]
    their_activity = activity_of(app, person.id)

    gone_by_api(api, api.token(person))

    assert places(app, held.id) == {person.id: ("cancelled", None),
                                    first.id: ("confirmed", None),
                                    second.id: ("waitlisted", 1)}
    assert places(app, queued.id) == {seated.id: ("confirmed", None),
                                      person.id: ("cancelled", None),
                                      second.id: ("waitlisted", 1)}
    # The promoted person is told, exactly once, as after any cancellation.
    assert [(k, e) for k, e, _s, _err in mail_to(app, first.id)] == [
        ("waitlisted", held.id), ("promoted", held.id)]
    # The activity log keeps the person's rows (and the cancellations), on the tombstone.
    assert activity_of(app, person.id) == [*their_activity, (held.id, "cancelled"),
                                           (queued.id, "cancelled")]
    no_drift(app, held.id, queued.id)


def test_unsent_email_to_the_deleted_person_is_withdrawn_and_never_sent(
        app, make_user, make_event):
    from webapp.mail.jobs import deliver
    from webapp.mail.models import OutboxMessage

    person, waiting = make_user(), make_user()
    event = make_event(capacity=1, waitlist_enabled=True)
    register(app, event.id, person.id, waiting.id)  # no worker: every email is pending
    delete(app, person.id)

    theirs = mail_to(app, person.id)
    assert [(k, s) for k, _e, s, _err in theirs] == [("confirmation", "failed"),
                                                     ("cancellation", "failed")]
    assert {err for *_rest, err in theirs} == {"not sent: the account was deleted"}
    # The promoted person's email still goes out.
    assert [(k, s) for k, _e, s, _err in mail_to(app, waiting.id)] == [
        ("waitlisted", "pending"), ("promoted", "pending")]
    with app.app_context():
        from webapp.extensions import db

        ids = db.session.scalars(select(OutboxMessage.id)
                                 .where(OutboxMessage.user_id == person.id)).all()
        assert [deliver(outbox_id) for outbox_id in ids] == ["nothing to do"] * len(ids)


def test_keys_go_and_the_audit_trail_keeps_no_address(app, api, make_user, make_event):
    from webapp.auth import audit
    from webapp.database import read_session
    from webapp.registrations.models import RetryRecord

    person = make_user()
    event = make_event()
    token = api.token(person)
    assert api.post(f"/api/events/{event.id}/registrations", token=token,
                    headers={"Idempotency-Key": "once"}).status_code == 201
    gone_by_api(api, token)
    with app.app_context():
        with read_session() as s:
            assert s.scalars(select(RetryRecord).where(RetryRecord.user_id == person.id)
                             ).all() == []
        events = audit.events_of(person.id)
    # The API sign-in (recorded with the address) and the deletion: no address left.
    assert [(e.kind, e.email) for e in events] == [("sign_in", None), ("account_deleted", None)]
    assert events[-1].ip and events[-1].request_id


def test_places_at_events_that_ended_stay_as_history(app, api, make_user, make_event):
    from webapp.database import write_session
    from webapp.events.models import Event

    person = make_user()
    past = make_event(capacity=2)
    register(app, past.id, person.id)
    with app.app_context(), write_session() as session:
        session.execute(update(Event).where(Event.id == past.id).values(
            starts_at=past.starts_at - timedelta(days=30),
            ends_at=past.ends_at - timedelta(days=30)))
    gone_by_api(api, api.token(person))
    assert places(app, past.id) == {person.id: ("confirmed", None)}


# --- organizers --------------------------------------------------------------------------

def test_an_organizer_of_events_not_ended_gets_409_and_nothing_changes(
        app, api, make_user, make_event):
    organizer = make_user(organizer=True)
    make_event(organizer=organizer, starts_in=timedelta(hours=-1))  # started, ends in 1 h
    elsewhere = make_event()
    register(app, elsewhere.id, organizer.id)
    token = api.token(organizer)
    before = user_row(app, organizer.id)

    response = api.delete("/api/users/me", token=token)

    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "owns_events"
    assert "hand them over or delete" in error["message"].lower()
    assert user_row(app, organizer.id) == before
    assert api.get("/api/users/me", token=token).status_code == 200
    assert places(app, elsewhere.id) == {organizer.id: ("confirmed", None)}


def test_an_organizer_whose_events_all_ended_can_go(app, api, make_user, make_event):
    from webapp.database import read_session
    from webapp.events.models import Event

    organizer = make_user(organizer=True)
    ended = make_event(organizer=organizer, starts_in=timedelta(days=-3))
    gone_by_api(api, api.token(organizer))
    with app.app_context(), read_session() as s:
        assert s.scalar(select(Event.organizer_id).where(Event.id == ended.id)) == organizer.id
    assert user_row(app, organizer.id)["name"] == "Deleted account"


# --- the page ----------------------------------------------------------------------------

def delete_on_page(client: Client, *, htmx: bool = False, csrf: bool = True, **form):
    return client.post("/account/delete", htmx=htmx, csrf=csrf, data=form)


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_the_page_deletes_and_signs_out(app, make_user, make_event, htmx):
    person, waiting = make_user(), make_user()
    event = make_event(capacity=1, waitlist_enabled=True)
    register(app, event.id, person.id, waiting.id)
    client, phone = signed_in_client(app, person.email), signed_in_client(app, person.email)

    response = delete_on_page(client, htmx=htmx, password=PASSWORD, confirm="y")

    if htmx:
        assert (response.status_code, response.headers["HX-Redirect"]) == (200, "/")
    else:
        assert (response.status_code, response.headers["Location"]) == (303, "/")
    assert "Your account is deleted" in body(client.get("/"))
    assert not client.is_signed_in() and not phone.is_signed_in()
    assert places(app, event.id)[waiting.id] == ("confirmed", None)
    assert user_row(app, person.id)["deleted_at"] is not None


@pytest.mark.parametrize("form, field, message", [
    ({"password": PASSWORD}, "confirm", "Tick the box to confirm."),
    ({"password": "not my password", "confirm": "y"}, "password",
     "That is not your current password."),
    ({"confirm": "y"}, "password", "This field is required."),
])
def test_the_page_asks_for_the_password_and_a_confirmation(app, make_user, make_event,
                                                           form, field, message):
    person = make_user()
    event = make_event()
    register(app, event.id, person.id)
    client = signed_in_client(app, person.email)
    response = delete_on_page(client, **form)
    assert response.status_code == 422
    at_field = body(response).split(f'name="{field}"', 1)[1].split("</div>", 1)[0]
    assert message in at_field
    assert user_row(app, person.id)["deleted_at"] is None
    assert places(app, event.id) == {person.id: ("confirmed", None)}
    assert client.is_signed_in()


def test_the_page_tells_an_organizer_to_hand_over_first(app, make_user, make_event):
    organizer = make_user(organizer=True)
    make_event(organizer=organizer)
    client = signed_in_client(app, organizer.email)
    response = delete_on_page(client, password=PASSWORD, confirm="y")
    assert response.status_code == 409
    assert "Hand them over or delete your events first." in body(response)
    assert client.is_signed_in()
    assert user_row(app, organizer.id)["deleted_at"] is None


def test_the_page_needs_a_csrf_token(app, make_user):
    person = make_user()
    client = signed_in_client(app, person.email)
    response = delete_on_page(client, csrf=False, password=PASSWORD, confirm="y")
    assert response.status_code == 400
    assert user_row(app, person.id)["deleted_at"] is None


# --- races -------------------------------------------------------------------------------

@pytest.mark.parametrize("round_", range(4))
def test_race_delete_while_the_person_is_being_promoted(app, make_user, make_event, round_):
    """The seat holder cancels while the head of the waitlist deletes the account: in
    either order the next person ends up with the seat, told once, and nothing drifts."""
    from webapp.accounts.services import delete_account
    from webapp.registrations.services import cancel

    holder, person, next_one = make_user(), make_user(), make_user()
    event = make_event(capacity=1, waitlist_enabled=True)
    register(app, event.id, holder.id, person.id, next_one.id)

    results = race(app, [lambda: cancel(event.id, holder.id),
                         lambda: delete_account(person.id)])

    assert not [r for r in results if isinstance(r, Exception)], results
    assert places(app, event.id) == {holder.id: ("cancelled", None),
                                     person.id: ("cancelled", None),
                                     next_one.id: ("confirmed", None)}
    assert [k for k, *_ in mail_to(app, next_one.id)] == ["waitlisted", "promoted"]
    assert all(s != "pending" for _k, _e, s, _err in mail_to(app, person.id))
    no_drift(app, event.id)


def test_race_delete_while_others_register(app, make_user, make_event):
    """12 people rush a 3-seat event while a seat holder deletes the account: exactly 3
    confirmed (the freed seat is taken, never left beside a queue), the rest waiting at
    1..n without gaps, and SQL's counters and the gate agree with SQL's rows."""
    from webapp.accounts.services import delete_account
    from webapp.registrations.services import register as register_one

    person = make_user()
    event = make_event(capacity=3, waitlist_enabled=True)
    register(app, event.id, person.id)
    rush = [make_user() for _ in range(12)]

    results = race(app, [lambda: delete_account(person.id)]
                   + [lambda uid=u.id: register_one(event.id, uid) for u in rush])

    assert not [r for r in results if isinstance(r, Exception)], results
    final = places(app, event.id)
    assert final.pop(person.id) == ("cancelled", None)
    assert [s for s, _p in final.values()].count("confirmed") == 3, final
    assert sorted(p for s, p in final.values() if s == "waitlisted") == list(range(1, 10))
    no_drift(app, event.id)


def test_race_two_deletions_of_the_same_account_delete_once(app, make_user, make_event):
    from webapp.accounts.services import delete_account
    from webapp.auth import audit
    from webapp.errors import NotFound

    person, waiting = make_user(), make_user()
    event = make_event(capacity=1, waitlist_enabled=True)
    register(app, event.id, person.id, waiting.id)

    results = race(app, [lambda: delete_account(person.id), lambda: delete_account(person.id)])

    assert all(r is None or isinstance(r, NotFound) for r in results), results
    with app.app_context():
        assert [e.kind for e in changes(audit.events_of(person.id))] == ["account_deleted"]
    assert [k for k, *_ in mail_to(app, waiting.id)] == ["waitlisted", "promoted"]
    no_drift(app, event.id)


def test_the_tombstone_is_not_a_person_anywhere(app, api, make_user, make_event):
    """The deleted person is no longer on attendee lists of events not ended."""
    organizer, person = make_user(organizer=True), make_user(name="Vanishing Person")
    event = make_event(organizer=organizer)
    register(app, event.id, person.id)
    gone_by_api(api, api.token(person))
    listed = api.get(f"/api/events/{event.id}/registrations", token=api.token(organizer))
    assert listed.get_json()["items"] == []
    with app.app_context():
        from webapp.database import read_session

        with read_session() as s:
            assert s.scalar(text("SELECT count(*) FROM users WHERE name = 'Vanishing Person'")) == 0


def test_control_a_deletion_that_skips_the_cancel_service_is_caught(
        app, make_user, make_event, monkeypatch):
    """The checks above can see a deletion that writes registrations its own way: the
    waitlist is not promoted and Redis still counts the seat."""
    from webapp.accounts import services
    from webapp.database import write_session
    from webapp.registrations.models import Registration
    from webapp.sqltypes import utcnow

    def cancel_behind_the_services_back(user_id, _request_id):
        with write_session() as session:
            session.execute(update(Registration).where(Registration.user_id == user_id)
                            .values(status="cancelled", position=None, cancelled_at=utcnow()))

    monkeypatch.setattr(services, "_cancel_places", cancel_behind_the_services_back)
    person, waiting = make_user(), make_user()
    event = make_event(capacity=1, waitlist_enabled=True)
    register(app, event.id, person.id, waiting.id)
    delete(app, person.id)
    assert places(app, event.id)[waiting.id] == ("waitlisted", 1)  # nobody promoted
    with pytest.raises(AssertionError):
        no_drift(app, event.id)
