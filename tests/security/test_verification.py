"""REQUIRE_EMAIL_VERIFICATION: a new account gets a link, and registering waits for it
(403 email_not_verified) without costing the registration path a query."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, update

from tests.support.app import PASSWORD, other_app
from tests.support.clients import Api, Client, error_of
from tests.support.inbox import link, outbox_rows
from tests.support.tokens import signed
from tests.support.worker_fixtures import mail_config, smtp  # noqa: F401

SIGNUP = "/api/auth/signup"
NOT_VERIFIED = "Please confirm your email address first"


@pytest.fixture
def app_config(mail_config) -> dict:  # noqa: F811 (the imported fixture)
    return {**mail_config, "REQUIRE_EMAIL_VERIFICATION": True}


@pytest.fixture
def statements(listen):
    """The SQL statements this thread sends from now on."""
    sent: list[str] = []
    listen(Engine, "before_cursor_execute",
           lambda _conn, _cursor, statement, *_args: sent.append(statement))
    return sent


def verify_mails(app) -> list:
    with app.app_context():
        return outbox_rows("verify_email")


def deliver(app, outbox_id: int) -> None:
    from webapp.mail import jobs

    with app.app_context():
        assert jobs.deliver(outbox_id) == "sent"


def register(app, event_id: int, token: str):
    return Api(app).post(f"/api/events/{event_id}/registrations", token=token)


def set_verified_in_sql_only(app, user_id: int) -> None:
    """As if verified by another process whose Redis update was lost."""
    from webapp.auth.models import User
    from webapp.database import write_session
    from webapp.sqltypes import utcnow

    with app.app_context(), write_session() as session:
        session.execute(update(User).where(User.id == user_id)
                        .values(email_verified_at=utcnow()))


def test_a_new_account_registers_only_after_following_the_emailed_link(
        app, smtp, make_event):  # noqa: F811
    from webapp.auth.models import SecurityEvent
    from webapp.extensions import db

    event = make_event()
    created = Api(app).post(SIGNUP, json={"email": "new@example.org", "name": "New Person",
                                          "password": PASSWORD})
    assert created.status_code == 201
    [row] = verify_mails(app)
    assert row.user_id == created.get_json()["id"]
    bearer = Api(app).token("new@example.org")

    refused = register(app, event.id, bearer)
    assert (refused.status_code, error_of(refused)["code"]) == (403, "email_not_verified")

    deliver(app, row.id)
    [message] = smtp.wait_for(1)
    assert message["Subject"] == "Confirm your email address for Turnout"
    path = link(message, "/verify/").removeprefix("https://turnout.example")
    page = Client(app.test_client()).get(path)
    assert page.status_code == 200 and "Email address confirmed" in page.get_data(as_text=True)

    # The same token: the copy of the person in Redis said "not verified" a moment ago.
    assert register(app, event.id, bearer).status_code == 201
    # A second visit of the link changes nothing and records nothing more.
    assert Client(app.test_client()).get(path).status_code == 200
    with app.app_context():
        verified = list(db.session.scalars(select(SecurityEvent).where(
            SecurityEvent.kind == "email_verified")))
    assert [(e.user_id, e.email) for e in verified] == [(row.user_id, "new@example.org")]


def test_the_panel_says_why_and_sends_the_link_again(app, make_user, make_event):
    person, event = make_user(), make_event()
    client = Client(app.test_client())
    assert client.login(person.email).status_code == 303

    full = client.post(f"/events/{event.id}/register")
    assert full.status_code == 403
    body = full.get_data(as_text=True)
    assert "<html" in body and 'id="registration-panel"' in body
    assert NOT_VERIFIED in body and "Send the link again" in body
    fragment = client.post(f"/events/{event.id}/register", htmx=True)
    assert fragment.status_code == 403
    assert "<html" not in fragment.get_data(as_text=True)
    assert "Send the link again" in fragment.get_data(as_text=True)

    again = client.post("/verify/resend", data={"next": f"/events/{event.id}"})
    assert again.status_code == 303 and again.headers["Location"] == f"/events/{event.id}"
    assert f"We sent a new link to {person.email}" in client.get(
        f"/events/{event.id}").get_data(as_text=True)
    assert [row.user_id for row in verify_mails(app)] == [person.id]
    # Never sent elsewhere: an outside `next` is ignored.
    assert client.post("/verify/resend", data={"next": "https://evil.example/"}
                       ).headers["Location"] == "/dashboard"


def test_resending_is_limited_per_address_and_says_nothing_more(
        database_url, redis_url, app, make_user):
    person = make_user()
    with other_app(app, database_url, redis_url, RATELIMIT_ENABLED=True,
                   RATELIMIT_ACCOUNT_MAIL="2 per hour",
                   REQUIRE_EMAIL_VERIFICATION=True) as limited:
        bearer = Api(limited).token(person)
        answers = {Api(limited).post("/api/users/me/verification", token=bearer)
                   .get_data(as_text=True) for _ in range(4)}
        assert len(answers) == 1
        assert len(verify_mails(limited)) == 2
        set_verified_in_sql_only(limited, person.id)
        assert Api(limited).post("/api/users/me/verification",
                                 token=bearer).status_code == 202
        assert len(verify_mails(limited)) == 2


def test_bad_expired_and_outdated_links_are_refused(app, make_user):
    from webapp.auth.links import RESET_SALT, VERIFY_SALT
    from webapp.auth.models import User
    from webapp.database import write_session

    person = make_user(email="old@example.org")
    week = 7 * 24 * 3600
    for token in [
        signed(app, VERIFY_SALT, {"u": person.id, "e": person.email}, age_seconds=week + 5),
        signed(app, RESET_SALT, {"u": person.id, "e": person.email}),  # another link's salt
        signed(app, VERIFY_SALT, {"u": person.id, "e": "someone.else@example.org"}),
        signed(app, VERIFY_SALT, {"u": person.id}),
        "not-a-token",
    ]:
        assert Client(app.test_client()).get(f"/verify/{token}").status_code == 400
    fresh = signed(app, VERIFY_SALT, {"u": person.id, "e": person.email},
                   age_seconds=week - 60)
    # A link for an address the account no longer has is dead.
    with app.app_context(), write_session() as session:
        session.execute(update(User).where(User.id == person.id)
                        .values(email="new@example.org"))
    assert Client(app.test_client()).get(f"/verify/{fresh}").status_code == 400
    with app.app_context(), write_session() as session:
        session.execute(update(User).where(User.id == person.id)
                        .values(email="old@example.org"))
    assert Client(app.test_client()).get(f"/verify/{fresh}").status_code == 200


def test_a_stale_copy_saying_not_verified_asks_sql(app, make_user, make_event,
                                                   redis_client):
    person, event = make_user(), make_event()
    bearer = Api(app).token(person)
    assert register(app, make_event().id, bearer).status_code == 403  # the copy is made
    assert redis_client.hget(f"turnout:user:{person.id}", "ev") == ""
    set_verified_in_sql_only(app, person.id)
    assert redis_client.hget(f"turnout:user:{person.id}", "ev") == ""  # stale
    assert register(app, event.id, bearer).status_code == 201


@pytest.mark.parametrize("required, verified, queries", [
    (False, False, 0),  # off: nothing at all
    (True, True, 0),  # on, verified: the signed-in copy says so
    (True, False, 1),  # on, not verified (or a stale copy): SQL decides
])
def test_the_check_costs_no_query_unless_it_refuses(
        app, make_user, statements, required, verified, queries):
    from webapp.auth import directory
    from webapp.errors import EmailNotVerified
    from webapp.recovery.services import require_verified_email

    person = make_user()
    if verified:
        set_verified_in_sql_only(app, person.id)
    app.config["REQUIRE_EMAIL_VERIFICATION"] = required
    with app.test_request_context():
        directory.user_at_version(person.id, 1)  # the copy, as a request makes it
        copy = directory.user_at_version(person.id, 1)
        statements.clear()
        if required and not verified:
            with pytest.raises(EmailNotVerified):
                require_verified_email(copy)
        else:
            require_verified_email(copy)
    assert len(statements) == queries, statements


def test_with_the_setting_off_nobody_is_held_back_or_emailed(
        database_url, redis_url, app, make_event):
    with other_app(app, database_url, redis_url, REQUIRE_EMAIL_VERIFICATION=False) as relaxed:
        assert Api(relaxed).post(SIGNUP, json={"email": "free@example.org", "name": "Free",
                                               "password": PASSWORD}).status_code == 201
        assert verify_mails(relaxed) == []
        bearer = Api(relaxed).token("free@example.org")
        assert register(relaxed, make_event().id, bearer).status_code == 201
