"""True answers when the database goes away mid-attempt (issue 15, finding 2).

A proxy in front of the real PostgreSQL cuts the link at the COMMIT (or at the
one statement that is its own transaction): the server committed, or never
got it, and the app cannot tell from the error. It must find out before it
answers, and never say "nothing was saved" for a saved registration.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.app import other_app
from tests.support.clients import Api, error_of
from tests.support.pgproxy import CuttingProxy
from tests.support.state import sql_confirmed_users
from webapp.errors import OutcomeUnknown, RegistrationFailed
from webapp.registrations import services
from webapp.registrations.idempotency import Retry
from webapp.registrations.models import Status

# The one statement of a newcomer's free seat (seats.seat_newcomer), and a COMMIT.
ONE_STATEMENT = b"WITH seat AS"
COMMIT = b"COMMIT\x00"  # the query message's text ends there ("READ COMMITTED" does not)


@pytest.fixture
def proxy(app, database_url, backend) -> Iterator[CuttingProxy]:
    if backend != "postgresql":
        pytest.skip("the link to SQLite cannot break: it is a file in this process")
    cutting = CuttingProxy(database_url)
    yield cutting
    cutting.close()


@pytest.fixture
def cut_app(app, proxy, database_url, redis_url):
    """An app whose every connection goes through the proxy (pool_pre_ping off: a
    broken connection is found by the statement that uses it, as in a real cut)."""
    with other_app(app, proxy.url, redis_url, SQLALCHEMY_ENGINE_OPTIONS={
            "pool_pre_ping": False, "pool_size": 4, "max_overflow": 4}) as cut:
        yield cut


def arm(proxy, marker, at_registration_commit, **cut):
    """Cut at the registration's own statement, or at its transaction's COMMIT (armed
    as that transaction commits: other transactions send COMMIT too)."""
    if marker == ONE_STATEMENT:
        proxy.cut_at(marker, **cut)
        return None
    return at_registration_commit("before", lambda: proxy.cut_at(marker, **cut))


@pytest.mark.parametrize("marker", [ONE_STATEMENT, COMMIT], ids=["one-statement", "commit"])
def test_a_commit_whose_answer_was_lost_is_found_and_answered(
        cut_app, proxy, make_event, make_user, counts, marker, at_registration_commit):
    event = make_event(capacity=1, waitlist_enabled=True)
    person = make_user()
    with cut_app.app_context():
        if marker == COMMIT:  # the seat goes first: the person takes the transaction path
            services.register(event.id, make_user().id)
        arm(proxy, marker, at_registration_commit, deliver=True)
        outcome = services.register(event.id, person.id, request_id="req-lost-answer")

    assert proxy.cuts == 1, "the link was not cut: the fault was not injected"
    expected = Status.CONFIRMED if marker == ONE_STATEMENT else Status.WAITLISTED
    assert outcome.status == expected
    assert outcome.registration_id is not None and outcome.registered_at is not None
    c = counts(event.id)
    assert c[str(expected)] == 1 and c["activity"][str(expected)] == 1


@pytest.mark.parametrize("marker", [ONE_STATEMENT, COMMIT], ids=["one-statement", "commit"])
def test_a_commit_the_server_never_got_says_nothing_was_saved_and_frees_the_hold(
        cut_app, proxy, make_event, make_user, counts, marker, at_registration_commit):
    event = make_event(capacity=1, waitlist_enabled=True)
    person, next_person = make_user(), make_user()
    with cut_app.app_context():
        if marker == COMMIT:
            services.register(event.id, make_user().id)
        stop = arm(proxy, marker, at_registration_commit, deliver=False)
        with pytest.raises(RegistrationFailed) as caught:
            services.register(event.id, person.id)
        if stop:
            stop()
        assert "not saved" in caught.value.message  # known, so it may say so
        # The hold was given back: the next person is not turned away by it.
        assert services.register(event.id, next_person.id).status in LIVE_STATUSES

    assert proxy.cuts == 1
    with cut_app.app_context():
        assert person.id not in sql_confirmed_users(event.id)
    assert counts(event.id)["activity"]["failed"] == 1


LIVE_STATUSES = (Status.CONFIRMED, Status.WAITLISTED)


def test_a_database_that_stays_away_after_the_commit_is_an_unknown_not_a_no(
        cut_app, proxy, make_event, make_user, counts):
    """The server committed, then went away for good: the answer must not say nothing
    was saved; the retry with the same key, once it is back, gets the registration."""
    event = make_event(capacity=3)
    person = make_user()
    retry = Retry.of("key-unknown", "POST", f"/api/events/{event.id}/registrations", b"")
    with cut_app.app_context():
        proxy.cut_at(ONE_STATEMENT, deliver=True, stay_down=True)
        with pytest.raises(OutcomeUnknown) as caught:
            services.register(event.id, person.id, retry=retry)
        assert "nothing was saved" not in caught.value.message.lower()

        proxy.refuse(False)
        again = services.register(event.id, person.id, retry=retry)

    assert proxy.cuts == 1
    assert again.replayed and again.status == Status.CONFIRMED
    c = counts(event.id)
    assert (c["confirmed"], c["confirmed_count"]) == (1, 1)


def test_the_api_answers_201_from_the_commit_when_the_link_breaks_after_it(
        cut_app, proxy, make_event, make_user, counts):
    """Finding 2: the answer was read again after the commit, and that read failed."""
    event = make_event(capacity=2)
    person = make_user()
    api = Api(cut_app)
    token = api.token(person)
    proxy.cut_at(ONE_STATEMENT, deliver=True)

    response = api.post(f"/api/events/{event.id}/registrations", token=token)

    assert proxy.cuts == 1
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "confirmed" and body["user_id"] == person.id
    assert body["event"]["confirmed"] == 1 and body["event"]["seats_left"] == 1
    assert counts(event.id)["confirmed"] == 1


def test_the_database_down_is_503_busy_with_retry_after_not_500(
        cut_app, proxy, make_event, make_user):
    event = make_event(capacity=2)
    person = make_user()
    api = Api(cut_app)
    token = api.token(person)
    proxy.refuse(True)

    read = api.get(f"/api/events/{event.id}")
    register = api.post(f"/api/events/{event.id}/registrations", token=token)

    for response in (read, register):
        assert response.status_code == 503, response.get_data(as_text=True)
        assert error_of(response)["code"] == "busy"
        assert int(response.headers["Retry-After"]) >= 1
    page = cut_app.test_client().get(f"/events/{event.id}")
    assert page.status_code == 503 and "Traceback" not in page.get_data(as_text=True)
    assert page.headers["Retry-After"]


def test_a_link_cut_after_the_answer_is_made_does_not_turn_it_into_a_500(
        cut_app, proxy, make_event):
    """Finding 2's other two: the request's clean-up (closing its session on a cut
    connection) failed, and the server answered its own 500 instead of the page."""
    event = make_event(capacity=2)

    @cut_app.after_request
    def _cut_everything(response):
        proxy.refuse(True)  # the database goes away between the answer and the clean-up
        return response

    response = cut_app.test_client().get(f"/api/events/{event.id}")

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["id"] == event.id
