"""The Redis copy of signed-in people (webapp/auth/directory.py): fast, never more permissive.

Each test attacks one way a copy could let a signed-out session back in: a
stale copy written after a sign-out, a copy older than the cookie, Redis
failing, the copy switched off.
"""

from __future__ import annotations

import threading

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import event, text

from tests.support.app import PASSWORD
from webapp.auth import directory
from webapp.auth.directory import UserDirectory
from webapp.auth.services import load_session_user, sign_out_everywhere
from webapp.extensions import db


@pytest.fixture
def user_selects(app):
    """A counter of SQL statements that read the users table, from this process."""
    seen = []

    def spy(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT") and "FROM users" in statement:
            seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", spy)
    yield seen
    event.remove(engine, "before_cursor_execute", spy)


def sent_to_login(response) -> bool:
    return response.status_code == 303 and "/login" in response.headers["Location"]


def key(user_id: int) -> str:
    return f"turnout:user:{user_id}"


def test_a_signed_in_request_reads_the_person_from_redis_not_sql(
        signed_in, redis_client, user_selects):
    client, user = signed_in
    assert client.get("/dashboard").status_code == 200  # the copy is made here at the latest
    copy = redis_client.hgetall(key(user.id))
    assert copy["email"] == user.email and copy["v"] == "1" and copy["org"] == "0"
    user_selects.clear()

    for _ in range(3):
        page = client.get("/me/events")
        assert page.status_code == 200 and "My Registered Events" in page.get_data(as_text=True)
    assert user_selects == []


def test_the_copy_expires(app, signed_in, redis_client):
    client, user = signed_in
    client.get("/dashboard")
    ttl_ms = redis_client.pttl(key(user.id))
    assert 0 < ttl_ms <= app.config["USER_CACHE_SECONDS"] * 1000


def test_sign_out_everywhere_refuses_the_old_cookie_at_once_with_a_warm_copy(
        app, make_client, make_user, redis_client):
    user = make_user()
    phone, laptop = make_client(), make_client()
    for c in (phone, laptop):
        assert c.login(user.email).status_code == 303
        assert c.get("/dashboard").status_code == 200
    assert redis_client.hget(key(user.id), "v") == "1"

    assert phone.post("/logout", data={}).status_code in (302, 303)  # signs out everywhere

    assert sent_to_login(laptop.get("/dashboard"))  # the copy was revoked
    # The refused request read SQL and left a fresh copy at the new version.
    assert redis_client.hmget(key(user.id), "floor", "v") == ["2", "2"]


def test_a_copy_read_before_a_sign_out_and_written_after_it_is_refused(app_ctx, make_user):
    """The race: a request reads SQL (version 1), a sign-out commits (2), the request writes."""
    user = make_user()
    before = directory.user_at_version(user.id, 1)
    assert before is not None and before.session_version == 1

    sign_out_everywhere(user.id)
    late = directory.get_directory()
    assert late.remember(before) is False  # the floor is 2: version 1 is not stored
    assert late.lookup(user.id) is None
    assert load_session_user(f"{user.id}:1") is None
    assert load_session_user(f"{user.id}:2") is not None


def test_concurrent_readers_never_bring_back_a_revoked_version(app, make_user):
    """Threads keep loading the person (making copies) while sign-outs commit."""
    with app.app_context():
        user = make_user()
    stop = threading.Event()
    errors = []

    def reader():
        with app.app_context():
            while not stop.is_set():
                try:
                    directory.user_at_version(user.id, 1)
                finally:
                    db.session.remove()

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        with app.app_context():
            for version in range(2, 12):
                sign_out_everywhere(user.id)
                db.session.remove()
                for old in range(1, version):
                    if directory.user_at_version(user.id, old) is not None:
                        errors.append((version, old))
                    db.session.remove()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []


def test_a_cookie_newer_than_the_copy_is_checked_against_sql(app_ctx, make_user, redis_client):
    """Redis failed during a sign-out: the copy is stale, the new session still works."""
    user = make_user()
    directory.user_at_version(user.id, 1)  # copy at version 1
    db.session.execute(text("UPDATE users SET session_version = 2 WHERE id = :u"),
                       {"u": user.id})  # as if the revocation never reached Redis
    db.session.commit()

    fresh = load_session_user(f"{user.id}:2")
    assert fresh is not None and fresh.session_version == 2
    assert redis_client.hget(key(user.id), "v") == "2"  # the copy caught up from SQL
    assert load_session_user(f"{user.id}:1") is None


def test_redis_down_falls_back_to_sql(app, signed_in, user_selects):
    client, user = signed_in
    with app.app_context():
        app.extensions["turnout_users"] = UserDirectory(
            redis.Redis(port=1, retry=Retry(NoBackoff(), 0), decode_responses=True), 300)
    try:
        page = client.get("/dashboard")
        assert page.status_code == 200 and user.name in page.get_data(as_text=True)
        assert user_selects, "the person was not read from SQL"
        # and a sign-out still works, the failure logged rather than raised
        with app.app_context():
            sign_out_everywhere(user.id)
        assert sent_to_login(client.get("/dashboard"))
    finally:
        app.extensions.pop("turnout_users", None)


def test_the_copy_can_be_switched_off(app, make_user, make_client, redis_client, user_selects):
    app.config["USER_CACHE_SECONDS"] = 0
    user = make_user()
    c = make_client()
    assert c.login(user.email).status_code == 303
    user_selects.clear()
    assert c.get("/dashboard").status_code == 200
    assert redis_client.exists(key(user.id)) == 0
    assert user_selects, "with the copy off, every request reads SQL"


def test_bearer_tokens_use_the_copy_and_are_revoked_with_it(app, make_user, redis_client):
    http = app.test_client()
    user = make_user()
    token = http.post("/api/auth/login", json={"email": user.email,
                                               "password": PASSWORD}).get_json()
    if "token" not in (token or {}):
        pytest.fail(f"login failed: {token}")
    headers = {"Authorization": f"Bearer {token['token']}"}
    assert http.get("/api/users/me", headers=headers).status_code == 200
    assert redis_client.hget(key(user.id), "v") == "1"

    with app.app_context():
        sign_out_everywhere(user.id)
    answer = http.get("/api/users/me", headers=headers)
    assert answer.status_code == 401
