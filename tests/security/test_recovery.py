"""Forgot and reset a password: the same answer for every address, a link that works once
for an hour, throttles that tell nothing, and the email at a real SMTP server."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select, update

from tests.support.app import PASSWORD, other_app
from tests.support.clients import Api, Client, error_of
from tests.support.inbox import link, outbox_rows, token, without_csrf
from tests.support.processes import wait_until
from tests.support.races import release_together
from tests.support.tokens import signed
from tests.support.worker_fixtures import mail_config, smtp, start_worker  # noqa: F401

NEW_PASSWORD = "amber tundra whistles softly"
FORGOT, RESET = "/api/auth/password/forgot", "/api/auth/password/reset"
SAME_PAGE_TEXT = "belongs to an account, we sent it a link to choose a new password"


@pytest.fixture
def app_config(mail_config) -> dict:  # noqa: F811 (the imported fixture)
    return mail_config


def api_post(app, path: str, body: dict, ip: str = "127.0.0.1", token: str | None = None):
    """A cookie-less JSON call from the client address `ip`."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return app.test_client(use_cookies=False).post(
        path, json=body, headers=headers, environ_base={"REMOTE_ADDR": ip})


def forgot_page(app, email: str, ip: str = "127.0.0.1", client: Client | None = None):
    client = client or Client(app.test_client())
    client.http.environ_base["REMOTE_ADDR"] = ip
    return client.http.post("/password/forgot",
                            data={"email": email, "csrf_token": client.csrf()})


def resets(app, user_id: int | None = None) -> list:
    with app.app_context():
        return outbox_rows("password_reset", user_id)


def security_events(app, kind: str) -> list:
    from webapp.auth.models import SecurityEvent
    from webapp.extensions import db

    with app.app_context():
        return list(db.session.scalars(select(SecurityEvent).where(SecurityEvent.kind == kind)
                                       .order_by(SecurityEvent.id)))


def deliver_pending(app) -> list[str]:
    from webapp.mail import jobs

    with app.app_context():
        return [jobs.deliver(row.id) for row in outbox_rows() if row.status == "pending"]


def delete_account(app, user_id: int) -> None:
    from webapp.auth.models import User
    from webapp.database import write_session
    from webapp.sqltypes import utcnow

    with app.app_context(), write_session() as session:
        session.execute(update(User).where(User.id == user_id).values(deleted_at=utcnow()))


def reset_link_by_email(app, smtp, email: str) -> str:  # noqa: F811
    """Ask for a reset link through the API and take it from the email that arrives."""
    assert api_post(app, FORGOT, {"email": email}).status_code == 202
    before = len(smtp.messages)
    assert deliver_pending(app) == ["sent"]
    return token(smtp.wait_for(before + 1)[-1], "/password/reset/")


# --- the same answer for every address ---------------------------------------------------

def test_the_forgot_page_answers_the_same_for_known_unknown_and_deleted(app, make_user):
    known, gone = make_user(email="known@example.org"), make_user(email="gone@example.org")
    delete_account(app, gone.id)
    answers = {}
    browser = Client(app.test_client())  # one browser: one CSRF token in every page
    for email in ("known@example.org", "nobody@example.org", "gone@example.org"):
        response = forgot_page(app, email, client=browser)
        answers[email] = (response.status_code, without_csrf(
            response.get_data(as_text=True).replace(email, "ADDRESS")))
    assert len(set(answers.values())) == 1, answers
    status, page = answers["known@example.org"]
    assert status == 200 and SAME_PAGE_TEXT in page
    # Only the live account was written an email; every asking was recorded.
    assert [row.user_id for row in resets(app)] == [known.id]
    asked = security_events(app, "password_reset_asked")
    assert [(e.email, e.user_id) for e in asked] == [
        ("known@example.org", known.id), ("nobody@example.org", None),
        ("gone@example.org", None)]


def test_the_forgot_api_answers_202_with_the_same_body_always(app, make_user):
    known = make_user(email="known@example.org")
    bodies = set()
    for email in ("known@example.org", "KNOWN@Example.org", "nobody@example.org",
                  "not an address", "nul\u0000@example.org"):
        response = api_post(app, FORGOT, {"email": email})
        assert response.status_code == 202, response.get_data(as_text=True)
        bodies.add(response.get_data(as_text=True))
    assert len(bodies) == 1
    assert [row.user_id for row in resets(app)] == [known.id, known.id]
    asked = security_events(app, "password_reset_asked")
    assert [(e.email, e.detail) for e in asked[-2:]] == [(None, "not an email address")] * 2


def test_the_login_page_links_to_forgot(client):
    page = client.get("/login").get_data(as_text=True)
    assert 'href="/password/forgot"' in page and "Forgot your password?" in page
    assert client.get("/password/forgot").status_code == 200


# --- the link, end to end at the SMTP server -----------------------------------------------

def test_the_emailed_link_resets_the_password_and_signs_out_everywhere(
        app, smtp, make_user):  # noqa: F811
    person = make_user(email="ada@example.org", name="Ada Lovelace")
    browser = Client(app.test_client())
    assert browser.login(person.email).status_code == 303
    api_token = Api(app).token(person)

    assert forgot_page(app, "Ada@Example.org").status_code == 200
    assert deliver_pending(app) == ["sent"]
    [message] = smtp.wait_for(1)
    assert smtp.envelopes[0][1] == ["ada@example.org"]
    assert message["Subject"] == "Reset your Turnout password"
    url = link(message, "/password/reset/")
    assert url.startswith("https://turnout.example/password/reset/")
    path = url.removeprefix("https://turnout.example")

    page = Client(app.test_client())
    form = page.get(path)
    assert form.status_code == 200 and "Choose a new password" in form.get_data(as_text=True)
    done = page.http.post(path, data={"password": NEW_PASSWORD, "csrf_token": page.csrf()})
    assert done.status_code == 303 and done.headers["Location"] == "/login"
    assert "Your password was changed; sign in" in page.get("/login").get_data(as_text=True)

    # Every session and token of before is gone; the new password signs in, the old not.
    assert browser.get("/dashboard").status_code in (302, 303)
    assert api_post(app, "/api/events", {}, token=api_token).status_code == 401
    assert Client(app.test_client()).login(person.email, PASSWORD).status_code == 422
    assert Client(app.test_client()).login(person.email, NEW_PASSWORD).status_code == 303
    # Used once, the link is dead, on the page and in the API.
    assert page.get(path).status_code == 400
    again = api_post(app, RESET, {"token": path.rsplit("/", 1)[1], "password": NEW_PASSWORD})
    assert (again.status_code, error_of(again)["code"]) == (400, "invalid_token")
    [event] = security_events(app, "password_reset")
    assert (event.user_id, event.email) == (person.id, "ada@example.org")


def test_the_api_resets_once_with_204(app, smtp, make_user):  # noqa: F811
    person = make_user()
    reset_token = reset_link_by_email(app, smtp, person.email)
    first = api_post(app, RESET, {"token": reset_token, "password": NEW_PASSWORD})
    assert first.status_code == 204 and first.get_data() == b""
    second = api_post(app, RESET, {"token": reset_token, "password": "another fine pass phrase"})
    assert (second.status_code, error_of(second)["code"]) == (400, "invalid_token")
    assert Client(app.test_client()).login(person.email, NEW_PASSWORD).status_code == 303


def test_a_weak_password_is_refused_with_the_reason_and_the_link_still_works(
        app, smtp, make_user):  # noqa: F811
    person = make_user(email="grace.hopper@example.org", name="Grace Hopper")
    reset_token = reset_link_by_email(app, smtp, person.email)
    for weak, reason in [("aaaaaaaaaaaa", "too easy to guess"),
                         ("grace.hopper@example.org", "your email address or name"),
                         ("short", "12 to 128 characters")]:
        response = api_post(app, RESET, {"token": reset_token, "password": weak})
        error = error_of(response)
        assert (response.status_code, error["code"]) == (400, "invalid_password"), error
        assert reason in error["message"]
    page = Client(app.test_client())
    refused = page.http.post(f"/password/reset/{reset_token}",
                             data={"password": "123123123123", "csrf_token": page.csrf()})
    assert refused.status_code == 422
    assert "too easy to guess" in refused.get_data(as_text=True)
    assert api_post(app, RESET, {"token": reset_token,
                                 "password": NEW_PASSWORD}).status_code == 204


def test_a_link_expires_after_an_hour(app, make_user):
    from webapp.auth.links import RESET_SALT

    person = make_user()
    fresh = signed(app, RESET_SALT, {"u": person.id, "v": 1}, age_seconds=3500)
    stale = signed(app, RESET_SALT, {"u": person.id, "v": 1}, age_seconds=3601)
    for path in (f"/password/reset/{stale}",):
        assert Client(app.test_client()).get(path).status_code == 400
    response = api_post(app, RESET, {"token": stale, "password": NEW_PASSWORD})
    assert (response.status_code, error_of(response)["code"]) == (400, "invalid_token")
    assert Client(app.test_client()).get(f"/password/reset/{fresh}").status_code == 200
    assert api_post(app, RESET, {"token": fresh, "password": NEW_PASSWORD}).status_code == 204


def test_forged_mangled_and_foreign_tokens_are_refused(app, make_user):
    from webapp.auth.links import RESET_SALT, VERIFY_SALT

    person, other = make_user(), make_user()
    good = signed(app, RESET_SALT, {"u": person.id, "v": 1})
    bad = [
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),  # mangled signature
        signed(app, VERIFY_SALT, {"u": person.id, "v": 1}),  # a verification link's salt
        signed(app, RESET_SALT, {"u": other.id, "v": 2}),  # a version never reached
        signed(app, RESET_SALT, {"u": 2**40, "v": 1}),  # no such person (out of range)
        signed(app, RESET_SALT, {"u": person.id}),
        signed(app, RESET_SALT, ["not", "a", "dict"]),
        "x" * 1000,
    ]
    with other_app(app, app.config["SQLALCHEMY_DATABASE_URI"], app.config["REDIS_URL"],
                   SECRET_KEY="another-secret-key-of-another-install") as foreign:
        bad.append(signed(foreign, RESET_SALT, {"u": person.id, "v": 1}))
    for candidate in bad:
        response = api_post(app, RESET, {"token": candidate, "password": NEW_PASSWORD})
        assert (response.status_code, error_of(response)["code"]) == (400, "invalid_token")
        assert Client(app.test_client()).get(f"/password/reset/{candidate}").status_code == 400
    assert Client(app.test_client()).login(person.email, PASSWORD).status_code == 303


def test_a_deleted_account_is_sent_no_link_and_its_link_is_dead(app, make_user):
    from webapp.auth.links import RESET_SALT

    person = make_user(email="leaving@example.org")
    link_made_before = signed(app, RESET_SALT, {"u": person.id, "v": 1})
    delete_account(app, person.id)
    assert api_post(app, FORGOT, {"email": person.email}).status_code == 202
    assert resets(app) == []
    response = api_post(app, RESET, {"token": link_made_before, "password": NEW_PASSWORD})
    assert (response.status_code, error_of(response)["code"]) == (400, "invalid_token")


# --- two uses of one link at once ------------------------------------------------------------

@pytest.fixture
def both_at_the_write(monkeypatch):
    """Hold each reset at the password write until both got there: both have checked the
    link, so only the write itself can refuse the second. `guarded=False` drops the
    version guard (the control run)."""
    from webapp.auth import services as accounts

    real = accounts.set_password
    barrier = threading.Barrier(2)

    def install(guarded: bool = True) -> None:
        def held(user_id, password, *, only_at_version=None, session=None):
            barrier.wait(30)
            return real(user_id, password, session=session,
                        only_at_version=only_at_version if guarded else None)

        monkeypatch.setattr(accounts, "set_password", held)

    return install


def two_resets_at_once(app, reset_token: str) -> list[int]:
    passwords = (NEW_PASSWORD, "another fine pass phrase")
    answers = release_together([
        lambda p=p: api_post(app, RESET, {"token": reset_token, "password": p})
        for p in passwords])
    return sorted(a.status_code for a in answers)


def test_two_resets_with_one_link_at_once_exactly_one_wins(app, make_user, both_at_the_write):
    from webapp.auth.links import RESET_SALT

    person = make_user()
    both_at_the_write()
    statuses = two_resets_at_once(app, signed(app, RESET_SALT, {"u": person.id, "v": 1}))
    assert statuses == [204, 400]
    assert len(security_events(app, "password_reset")) == 1
    from webapp.auth.models import User
    from webapp.extensions import db

    with app.app_context():
        assert db.session.get(User, person.id).session_version == 2


def test_control_without_the_version_guard_both_resets_win(app, make_user,
                                                           both_at_the_write):
    """The race test can see a link used twice: without the guard it is."""
    from webapp.auth.links import RESET_SALT

    person = make_user()
    both_at_the_write(guarded=False)
    statuses = two_resets_at_once(app, signed(app, RESET_SALT, {"u": person.id, "v": 1}))
    assert statuses == [204, 204]


# --- throttles that say nothing about accounts ------------------------------------------------

def test_forgot_is_throttled_per_client_only_and_emails_per_address_silently(
        database_url, redis_url, app, make_user):
    known = make_user(email="known@example.org")
    with other_app(app, database_url, redis_url, RATELIMIT_ENABLED=True,
                   RATELIMIT_PASSWORD_FORGOT="4 per hour",
                   RATELIMIT_ACCOUNT_MAIL="2 per hour") as limited:
        # One client: the page and the API count together; the 5th answer is a 429.
        statuses = [forgot_page(limited, "known@example.org", ip="198.51.100.1").status_code,
                    api_post(limited, FORGOT, {"email": "known@example.org"},
                             ip="198.51.100.1").status_code,
                    api_post(limited, FORGOT, {"email": "nobody@example.org"},
                             ip="198.51.100.1").status_code,
                    forgot_page(limited, "nobody@example.org", ip="198.51.100.1").status_code]
        assert statuses == [200, 202, 202, 200]
        for ask in (lambda: api_post(limited, FORGOT, {"email": "nobody@example.org"},
                                     ip="198.51.100.1"),
                    lambda: forgot_page(limited, "nobody@example.org", ip="198.51.100.1")):
            response = ask()
            assert response.status_code == 429
        # Other clients asking for the same account: all answered alike, but the account's
        # address got its two emails already and gets no more.
        bodies = {api_post(limited, FORGOT, {"email": email}, ip=f"203.0.113.{n}")
                  .get_data(as_text=True)
                  for n, email in enumerate(["known@example.org", "nobody@example.org"] * 3)}
        assert len(bodies) == 1
        assert [row.user_id for row in resets(limited)] == [known.id, known.id]
        # Another account's emails have their own count.
        other = make_user(email="other@example.org")
        assert api_post(limited, FORGOT, {"email": other.email},
                        ip="203.0.113.99").status_code == 202
        assert [row.user_id for row in resets(limited)] == [known.id, known.id, other.id]


# --- the real worker ------------------------------------------------------------------------

@pytest.mark.slow
def test_the_worker_sends_the_reset_email_once(app, smtp, start_worker, make_user):  # noqa: F811
    # The worker signs the link with the app's key; at normal CPU priority on a busy box.
    start_worker(WORKER_IDLE_PRIORITY="0", SECRET_KEY=app.config["SECRET_KEY"])
    person = make_user(email="worker@example.org")
    assert api_post(app, FORGOT, {"email": person.email}).status_code == 202
    [message] = smtp.wait_for(1, seconds=60)
    reset_token = token(message, "/password/reset/")
    wait_until(lambda: [r.status for r in resets(app)] == ["sent"], seconds=30,
               what="row marked sent")
    time.sleep(2)  # a sweep comes by every second: no second copy
    assert smtp.data_commands == 1
    assert api_post(app, RESET, {"token": reset_token,
                                 "password": NEW_PASSWORD}).status_code == 204
