"""Sign-up is throttled per client address, and its page never confirms that an address
has an account: the owner is told by email instead. The API keeps 409 email_taken."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.support.app import PASSWORD, other_app
from tests.support.clients import Client, error_of
from tests.support.inbox import link, outbox_rows, without_csrf
from tests.support.worker_fixtures import mail_config, smtp  # noqa: F401

SIGNUP = "/api/auth/signup"


@pytest.fixture
def app_config(mail_config) -> dict:  # noqa: F811 (the imported fixture)
    return mail_config


def api_signup(app, email: str, ip: str = "127.0.0.1", name: str = "Some One",
               password: str = PASSWORD):
    return app.test_client(use_cookies=False).post(
        SIGNUP, json={"email": email, "name": name, "password": password},
        environ_base={"REMOTE_ADDR": ip})


def page_signup(client: Client, email: str, name: str = "Some One", password: str = PASSWORD):
    return client.http.post("/signup", data={"email": email, "name": name, "password": password,
                                             "csrf_token": client.csrf()})


def browser(app, ip: str = "127.0.0.1") -> Client:
    client = Client(app.test_client())
    client.http.environ_base["REMOTE_ADDR"] = ip
    return client


def signed_in(client: Client) -> bool:
    return client.get("/dashboard").status_code == 200


def accounts(app) -> int:
    from webapp.auth.models import User
    from webapp.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def mails(app, kind: str) -> list:
    with app.app_context():
        return outbox_rows(kind)


def sign_up_events(app) -> list[tuple]:
    from webapp.auth.models import SecurityEvent
    from webapp.extensions import db

    with app.app_context():
        return [(e.email, e.user_id, e.detail) for e in db.session.scalars(
            select(SecurityEvent).where(SecurityEvent.kind == "sign_up")
            .order_by(SecurityEvent.id))]


# --- throttled ---------------------------------------------------------------------------

def test_forty_sign_ups_in_a_row_from_one_client_meet_a_429(database_url, redis_url, app):
    """The review's reproduction, with the default RATELIMIT_SIGNUP (10 per hour)."""
    with other_app(app, database_url, redis_url, RATELIMIT_ENABLED=True) as limited:
        assert limited.config["RATELIMIT_SIGNUP"] == "10 per hour"
        statuses = [api_signup(limited, f"bulk{n}@example.org", ip="198.51.100.7").status_code
                    for n in range(40)]
        assert statuses == [201] * 10 + [429] * 30
        refused = api_signup(limited, "one.more@example.org", ip="198.51.100.7")
        assert error_of(refused)["code"] == "too_many_requests"
        # Another client address is not held back by this one.
        assert api_signup(limited, "elsewhere@example.org", ip="203.0.113.8").status_code == 201
    assert accounts(app) == 11


def test_the_page_and_the_api_share_one_sign_up_limit(database_url, redis_url, app):
    with other_app(app, database_url, redis_url, RATELIMIT_ENABLED=True,
                   RATELIMIT_SIGNUP="3 per hour") as limited:
        client = browser(limited, ip="198.51.100.9")
        assert client.get("/signup").status_code == 200  # a GET does not count
        assert page_signup(client, "page1@example.org").status_code == 303
        assert api_signup(limited, "api1@example.org", ip="198.51.100.9").status_code == 201
        assert page_signup(browser(limited, ip="198.51.100.9"),
                           "page2@example.org").status_code == 303
        assert api_signup(limited, "api2@example.org", ip="198.51.100.9").status_code == 429
        page = page_signup(browser(limited, ip="198.51.100.9"), "page3@example.org")
        assert page.status_code == 429
        assert "Too many attempts" in page.get_data(as_text=True)
    assert accounts(app) == 3


# --- not enumerating ------------------------------------------------------------------------

def test_a_taken_address_gets_a_neutral_page_and_its_owner_an_email(app, make_user, smtp):  # noqa: F811
    from webapp.mail import jobs

    owner = make_user(email="taken@example.org", name="Tina Owner")
    client = browser(app)
    response = page_signup(client, "Taken@Example.org", name="Someone Else")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Check your email" in page and "taken@example.org" in page
    assert "already" not in page and "exists" not in page
    assert not signed_in(client)
    assert accounts(app) == 1

    [row] = mails(app, "account_exists")
    assert row.user_id == owner.id
    with app.app_context():
        assert jobs.deliver(row.id) == "sent"
    [message] = smtp.wait_for(1)
    assert smtp.envelopes[0][1] == ["taken@example.org"]
    assert message["Subject"] == "You already have a Turnout account"
    assert link(message, "/login") == "https://turnout.example/login"
    assert link(message, "/password/forgot") == "https://turnout.example/password/forgot"
    assert sign_up_events(app) == [("taken@example.org", owner.id,
                                    "refused: the address has an account")]


def test_without_verification_a_new_account_is_signed_in_at_once(app):
    client = browser(app)
    response = page_signup(client, "fresh@example.org")
    assert response.status_code == 303 and response.headers["Location"] == "/dashboard"
    assert signed_in(client)
    assert mails(app, "verify_email") == [] and mails(app, "account_exists") == []
    [(email, user_id, detail)] = sign_up_events(app)
    assert (email, detail) == ("fresh@example.org", None) and user_id is not None


def test_with_verification_new_and_taken_addresses_get_the_same_page(
        database_url, redis_url, app, make_user):
    owner = make_user(email="taken@example.org")
    with other_app(app, database_url, redis_url, REQUIRE_EMAIL_VERIFICATION=True) as strict:
        answers = []
        for email in ("new@example.org", "taken@example.org"):
            client = browser(strict)
            response = page_signup(client, email)
            answers.append((response.status_code, sorted(response.headers.keys()),
                            without_csrf(response.get_data(as_text=True)
                                         .replace(email, "ADDRESS"))))
            assert not signed_in(client)
        assert answers[0] == answers[1]  # the same status, headers and page
        assert answers[0][0] == 200 and "We sent a link to" in answers[0][2]
        [verify] = mails(strict, "verify_email")
        [exists] = mails(strict, "account_exists")
    assert verify.user_id not in (None, owner.id)
    assert exists.user_id == owner.id


@pytest.mark.parametrize("taken", [False, True], ids=["new address", "taken address"])
def test_a_weak_password_is_refused_alike_for_new_and_taken_addresses(app, make_user, taken):
    if taken:
        make_user(email="someone@example.org")
    response = page_signup(browser(app), "someone@example.org", password="password1234")
    assert response.status_code == 422
    assert "too easy to guess" in response.get_data(as_text=True)
    assert mails(app, "account_exists") == []


def test_the_owner_gets_a_few_such_emails_then_no_more(database_url, redis_url, app,
                                                       make_user):
    owner = make_user(email="popular@example.org")
    with other_app(app, database_url, redis_url, RATELIMIT_ENABLED=True,
                   RATELIMIT_ACCOUNT_MAIL="2 per hour") as limited:
        pages = {page_signup(browser(limited, ip=f"203.0.113.{n}"), owner.email)
                 .get_data(as_text=True) for n in range(4)}
        assert all("Check your email" in page for page in pages)
        assert [row.user_id for row in mails(limited, "account_exists")] == [owner.id] * 2
        # Their own reset is not held back by what strangers did with their address.
        assert limited.test_client().post("/api/auth/password/forgot",
                                          json={"email": owner.email}).status_code == 202
        assert [row.user_id for row in mails(limited, "password_reset")] == [owner.id]


def test_the_api_keeps_409_email_taken_and_sends_no_email(app, make_user):
    make_user(email="taken@example.org")
    response = api_signup(app, "TAKEN@example.org")
    assert (response.status_code, error_of(response)["code"]) == (409, "email_taken")
    assert mails(app, "account_exists") == []
    created = api_signup(app, "new@example.org")
    assert created.status_code == 201 and created.get_json()["email"] == "new@example.org"
