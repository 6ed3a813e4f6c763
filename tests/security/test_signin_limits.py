"""Sign-in throttling and the sign-in audit trail (issue 16): run alone with
`pytest tests/security/test_signin_limits.py`.

- every spelling of one address is one account (the counters key on the normalized address);
- an attacker's failures from one address do not lock the owner out from another;
- guessing from rotating addresses still meets a ceiling per account;
- a browser the owner signed in with before (its device cookie) passes that ceiling;
- a success is never counted; parallel guesses cannot slip past the limit;
- every success, failure and refusal is in the audit trail, never the password.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.support.app import PASSWORD
from tests.support.clients import Client, error_of
from tests.support.races import release_together

WRONG = "wrong password 123"
ATTACKER, OWNER = "203.0.113.66", "198.51.100.7"


@pytest.fixture
def app_config() -> dict:
    return {"RATELIMIT_ENABLED": True}


def browser(app, ip: str) -> Client:
    """A browser (cookies kept) whose requests come from `ip`."""
    client = Client(app.test_client())
    client.http.environ_base["REMOTE_ADDR"] = ip
    return client


def page_login(client: Client, email: str, password: str = PASSWORD):
    return client.http.post("/login", data={"email": email, "password": password,
                                            "csrf_token": client.csrf()})


def api_login(app, email: str, password: str = PASSWORD, ip: str = ATTACKER,
              device: str | None = None):
    """POST /api/auth/login from `ip`, no cookies unless a device cookie is given."""
    headers = {"Cookie": f"turnout_device={device}"} if device else {}
    return app.test_client(use_cookies=False).post(
        "/api/auth/login", json={"email": email, "password": password}, headers=headers,
        environ_base={"REMOTE_ADDR": ip})


def device_cookie(client: Client) -> str:
    cookie = client.http.get_cookie("turnout_device")
    assert cookie is not None, "no device cookie after signing in"
    return cookie.value


def security_events(app, kind=None) -> list:
    from webapp.auth.models import SecurityEvent
    from webapp.extensions import db

    with app.app_context():
        query = select(SecurityEvent).order_by(SecurityEvent.id)
        if kind is not None:
            query = query.where(SecurityEvent.kind == kind)
        return list(db.session.scalars(query))


def ceiling(app, email: str) -> int:
    """Fail RATELIMIT_LOGIN_ACCOUNT_TOTAL times for `email`, each from a new address."""
    from limits import parse

    total = parse(app.config["RATELIMIT_LOGIN_ACCOUNT_TOTAL"]).amount
    for n in range(total):
        response = api_login(app, email, WRONG, ip=f"192.0.2.{n + 1}")
        assert response.status_code == 401, (n, response.get_json())
    return total


# --- one address, one account ------------------------------------------------------------

SPELLINGS = ["alice@turnout.tes\uff54", "ALICE@turnout.test", " alice@turnout.test ",
             "Alice@Turnout.TEST"]


@pytest.mark.parametrize("door", ["page", "api"])
def test_four_spellings_of_one_address_share_one_counter(app, make_user, door):
    """The issue's attack: spellings the old raw key told apart, the 6th failure is 429."""
    make_user(email="alice@turnout.test")
    client = browser(app, ATTACKER)

    def attempt(email, password=WRONG):
        if door == "page":
            return page_login(client, email, password)
        return api_login(app, email, password)

    failed = 422 if door == "page" else 401
    # Fullwidth and plain spellings in turn: no raw spelling is tried five times.
    order = [SPELLINGS[0], SPELLINGS[1], SPELLINGS[0], SPELLINGS[2], SPELLINGS[0]]
    assert [attempt(email).status_code for email in order] == [failed] * 5
    for email in SPELLINGS:
        response = attempt(email)
        assert response.status_code == 429, email
        assert int(response.headers["Retry-After"]) > 0
    assert attempt("alice@turnout.test", PASSWORD).status_code == 429


def test_an_address_that_does_not_parse_is_counted_too(app):
    for _ in range(5):
        assert api_login(app, "Not An Address", WRONG).status_code == 401
    assert api_login(app, "not an address", WRONG).status_code == 429


@pytest.mark.parametrize("email", ["a\x00b@turnout.test", "/_\u04e6\U000947c4\x1e:r", "\x00"])
def test_an_address_no_database_would_store_is_still_counted_and_recorded(app, email):
    """NUL and control characters (found by schemathesis): a 401, never a 500."""
    from webapp.auth.models import SecurityKind

    statuses = [api_login(app, email, WRONG).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    failed = security_events(app, SecurityKind.SIGN_IN_FAILED)
    assert len(failed) == 5
    assert {e.email for e in failed} == {failed[0].email}
    assert failed[0].email.isascii() and failed[0].email.isprintable()  # escaped


# --- the owner is not locked out, guessing stays bounded ----------------------------------

def test_an_attackers_failures_do_not_lock_the_owner_out(app, make_user):
    """The issue's lockout: 5 wrong API sign-ins for carol, then carol's own password."""
    carol = make_user(email="carol@turnout.test")
    assert [api_login(app, carol.email, WRONG).status_code for _ in range(6)] == \
        [401] * 5 + [429]
    assert api_login(app, carol.email, PASSWORD).status_code == 429  # the attacker's address
    response = api_login(app, carol.email, PASSWORD, ip=OWNER)
    assert response.status_code == 200, response.get_json()
    assert page_login(browser(app, OWNER), carol.email).status_code == 303


def test_rotating_addresses_meet_the_account_ceiling(app, make_user):
    carol = make_user(email="carol@turnout.test")
    ceiling(app, carol.email)
    for ip in ("192.0.2.200", OWNER):  # new addresses, the right password: still no
        response = api_login(app, carol.email, PASSWORD, ip=ip)
        assert response.status_code == 429
        assert error_of(response)["code"] == "too_many_requests"
        assert 60 < int(response.headers["Retry-After"]) <= 3600  # the hour's window
    assert page_login(browser(app, OWNER), carol.email).status_code == 429
    # Another account is untouched.
    other = make_user()
    assert api_login(app, other.email, PASSWORD, ip="192.0.2.201").status_code == 200


def test_the_owners_known_browser_passes_the_ceiling(app, make_user):
    carol = make_user(email="carol@turnout.test")
    laptop = browser(app, OWNER)
    assert page_login(laptop, carol.email).status_code == 303
    cookie = device_cookie(laptop)
    laptop.post("/logout")
    ceiling(app, carol.email)

    assert page_login(laptop, carol.email).status_code == 303
    # The same cookie on the API (from anywhere, even the attacker's address), once.
    assert api_login(app, carol.email, PASSWORD, ip=ATTACKER, device=cookie).status_code == 200
    # Without it, from the laptop's own address: the ceiling.
    assert page_login(browser(app, OWNER), carol.email).status_code == 429


def test_a_device_cookie_helps_only_the_account_it_names(app, make_user):
    carol, mallory = make_user(email="carol@turnout.test"), make_user()
    attacker = browser(app, ATTACKER)
    assert page_login(attacker, mallory.email).status_code == 303
    mallorys = device_cookie(attacker)
    ceiling(app, carol.email)
    assert api_login(app, carol.email, PASSWORD, ip="192.0.2.250",
                     device=mallorys).status_code == 429
    assert api_login(app, carol.email, PASSWORD, ip="192.0.2.251",
                     device=mallorys[:-2] + "xx").status_code == 429


def test_a_forged_device_cookie_is_worth_nothing(app, make_user):
    from itsdangerous import URLSafeTimedSerializer

    from webapp.auth.limits import DEVICE_SALT

    carol = make_user(email="carol@turnout.test")
    ceiling(app, carol.email)
    for key, salt in (("another-key", DEVICE_SALT), (app.config["SECRET_KEY"], "other-salt")):
        forged = URLSafeTimedSerializer(key, salt=salt).dumps({"u": carol.id, "d": "x" * 22})
        assert api_login(app, carol.email, PASSWORD, ip="192.0.2.252",
                         device=forged).status_code == 429


def test_a_known_browser_has_its_own_failure_counter(app, make_user):
    carol = make_user(email="carol@turnout.test")
    laptop = browser(app, OWNER)
    assert page_login(laptop, carol.email).status_code == 303
    laptop.post("/logout")
    assert [page_login(laptop, carol.email, WRONG).status_code for _ in range(6)] == \
        [422] * 5 + [429]
    # Its failures are its own: a browser without the cookie elsewhere gets in.
    assert page_login(browser(app, "192.0.2.9"), carol.email).status_code == 303


def test_a_success_is_never_counted(app, make_user):
    carol = make_user(email="carol@turnout.test")
    statuses = [api_login(app, carol.email, WRONG).status_code for _ in range(4)]
    statuses += [api_login(app, carol.email, PASSWORD).status_code for _ in range(3)]
    statuses += [api_login(app, carol.email, WRONG).status_code for _ in range(2)]
    assert statuses == [401] * 4 + [200] * 3 + [401, 429]


def test_parallel_guesses_cannot_slip_past_the_limit(app, make_user):
    """All released at once: the count and the check are one step, so exactly five fail."""
    carol = make_user(email="carol@turnout.test")
    answers = release_together([lambda: api_login(app, carol.email, WRONG).status_code
                                for _ in range(12)])
    assert sorted(answers) == [401] * 5 + [429] * 7


def test_the_ip_limit_counts_every_attempt(app, make_user):
    people = [make_user() for _ in range(3)]
    statuses = [api_login(app, people[n % 3].email, PASSWORD).status_code for n in range(21)]
    assert statuses == [200] * 20 + [429]
    assert api_login(app, people[0].email, PASSWORD, ip=OWNER).status_code == 200


def test_off_when_rate_limiting_is_off(app, make_user):
    app.config["RATELIMIT_ENABLED"] = False  # load tests sign in thousands of times
    carol = make_user()
    assert {api_login(app, carol.email, WRONG).status_code for _ in range(8)} == {401}
    assert api_login(app, carol.email, PASSWORD).status_code == 200


# --- the audit trail ------------------------------------------------------------------------

def test_sign_ins_and_failures_are_recorded_without_the_password(app, make_user, caplog):
    from webapp.auth.models import SecurityKind

    carol = make_user(email="carol@turnout.test")
    client = browser(app, OWNER)
    assert page_login(client, " CAROL@turnout.tes\uff54", WRONG).status_code == 422
    assert api_login(app, "carol@turnout.test", WRONG).status_code == 401
    assert api_login(app, "nobody@turnout.test", WRONG).status_code == 401
    assert api_login(app, "Not An Address", WRONG).status_code == 401
    assert page_login(client, carol.email).status_code == 303
    assert api_login(app, carol.email).status_code == 200

    rows = [(e.kind, e.user_id, e.email, e.ip, e.detail) for e in security_events(app)]
    assert rows == [
        (SecurityKind.SIGN_IN_FAILED, carol.id, "carol@turnout.test", OWNER, "page"),
        (SecurityKind.SIGN_IN_FAILED, carol.id, "carol@turnout.test", ATTACKER, "api"),
        (SecurityKind.SIGN_IN_FAILED, None, "nobody@turnout.test", ATTACKER, "api"),
        (SecurityKind.SIGN_IN_FAILED, None, "not an address", ATTACKER, "api"),
        (SecurityKind.SIGN_IN, carol.id, "carol@turnout.test", OWNER, "page"),
        (SecurityKind.SIGN_IN, carol.id, "carol@turnout.test", ATTACKER, "api"),
    ]
    assert all(e.request_id for e in security_events(app))
    logged = [r for r in caplog.records if r.name == "turnout.security"]
    assert [r.security_event for r in logged] == [str(row[0]) for row in rows]
    stored = " ".join(str(vars(e)) for e in security_events(app))
    stored += " ".join(str(vars(r)) for r in logged)
    for secret in (WRONG, PASSWORD):
        assert secret not in stored


def test_a_refusal_is_recorded_and_answered_with_retry_after(app, make_user):
    from webapp.auth.models import SecurityKind

    carol = make_user(email="carol@turnout.test")
    client = browser(app, ATTACKER)
    for _ in range(5):
        assert page_login(client, carol.email, WRONG).status_code == 422
    page = page_login(client, carol.email, WRONG)
    assert page.status_code == 429
    assert "Too many attempts" in page.get_data(as_text=True)
    assert 0 < int(page.headers["Retry-After"]) <= 60
    api = api_login(app, carol.email, PASSWORD)
    assert api.status_code == 429
    assert 0 < int(api.headers["Retry-After"]) <= 60
    throttled = security_events(app, SecurityKind.SIGN_IN_THROTTLED)
    assert [(e.user_id, e.email, e.ip, e.detail) for e in throttled] == [
        (carol.id, carol.email, ATTACKER, "page: account+ip limit"),
        (carol.id, carol.email, ATTACKER, "api: account+ip limit"),
    ]
    # A refused attempt never reaches the password check: no failure recorded for it.
    assert len(security_events(app, SecurityKind.SIGN_IN_FAILED)) == 5
