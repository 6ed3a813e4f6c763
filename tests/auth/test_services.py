"""The account service and the `flask users create` command."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.support.app import PASSWORD, base_config


def users_named(app, email: str):
    from webapp.auth.models import User
    from webapp.extensions import db

    with app.app_context():
        return db.session.scalar(select(User).where(User.email == email))


def user_count(app) -> int:
    from webapp.auth.models import User
    from webapp.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


# --- Password policy -----------------------------------------------------------------

@pytest.mark.parametrize("password", [
    "correct horse battery", "bench-password-2026",
    "🎉🦊🌍🚲🎻🍕🧭🌵🪁🐙🎲🚀" * 10 + "🎉🦊🌍🚲🎻🍕🧭🌵",
    "nine quiet lanterns drift " * 4 + "bye"])
def test_check_password_accepts(password):
    from webapp.auth.services import check_password

    assert check_password(password) == password


@pytest.mark.parametrize("password, message", [
    ("a" * 11, "Password: 12 to 128 characters."),
    ("🎉" * 129, "Password: 12 to 128 characters."),
    ("", "Password: 12 to 128 characters."),
    (None, "Password: 12 to 128 characters."),
    ("password1234", "Password: too easy to guess. This is a very common password. "
                     "Add another word or two. Uncommon words are better."),
    ("QWERTY123456", "Password: too easy to guess. This is a very common password. Add "
                     "another word or two. Uncommon words are better. All-uppercase is almost "
                     "as easy to guess as all-lowercase."),
])
def test_check_password_refuses(password, message):
    from webapp.auth.services import check_password
    from webapp.errors import Invalid

    with pytest.raises(Invalid) as caught:
        check_password(password)
    assert caught.value.message == message
    assert caught.value.code == "invalid_password"


def test_default_hash_is_scrypt(database_url, redis_url, app):
    """Production settings (no test override) store werkzeug's scrypt hash."""
    from webapp import create_app
    from webapp.auth.services import hash_password

    config = base_config(database_url, redis_url)
    del config["PASSWORD_HASH_METHOD"]
    production_like = create_app(config)
    with production_like.app_context():
        hashed = hash_password(PASSWORD)
    assert production_like.config["PASSWORD_HASH_METHOD"] == "scrypt"
    assert hashed.startswith("scrypt:32768:8:1$")


# --- Accounts ------------------------------------------------------------------------

def test_create_user_normalizes_and_hashes(app_ctx):
    from werkzeug.security import check_password_hash

    from webapp.auth.services import create_user

    user = create_user(" Ada@Example.ORG ", "  Ada   Lovelace ", PASSWORD)
    assert (user.email, user.name, user.is_organizer) == ("ada@example.org", "Ada Lovelace", False)
    assert user.password_hash.startswith("scrypt:")
    assert check_password_hash(user.password_hash, PASSWORD)
    assert user.session_version == 1


def test_create_user_refuses_a_taken_email(app_ctx):
    from webapp.auth.services import EmailTaken, create_user

    create_user("dup@example.org", "One", PASSWORD)
    with pytest.raises(EmailTaken) as caught:
        create_user("DUP@example.org", "Two", PASSWORD)
    assert caught.value.message == "An account with this email already exists."
    assert user_count(app_ctx) == 1


@pytest.mark.parametrize("email, name, code", [
    ("nope", "Name", "invalid_email"),
    ("a" * 250 + "@example.org", "Name", "invalid_email"),
    ("ok@example.org", "   ", "invalid_name"),
    ("ok@example.org", "n" * 101, "invalid_name"),
])
def test_create_user_refuses_bad_fields(app_ctx, email, name, code):
    from webapp.auth.services import create_user
    from webapp.errors import Invalid

    with pytest.raises(Invalid) as caught:
        create_user(email, name, PASSWORD)
    assert caught.value.code == code
    assert user_count(app_ctx) == 0


def test_authenticate(app_ctx, make_user):
    from webapp.auth.services import authenticate

    user = make_user(email="auth@example.org")
    assert authenticate("AUTH@example.org", PASSWORD).id == user.id
    assert authenticate("auth@example.org", PASSWORD + "x") is None
    assert authenticate("nobody@example.org", PASSWORD) is None
    assert authenticate("not an email", PASSWORD) is None
    assert authenticate("auth@example.org", "") is None


def test_session_ids_stop_working_after_sign_out_everywhere(app_ctx, make_user):
    from webapp.auth.services import load_session_user, sign_out_everywhere
    from webapp.extensions import db

    user = make_user()
    session_id = user.get_id()
    assert session_id == f"{user.id}:1"
    assert load_session_user(session_id).id == user.id
    sign_out_everywhere(user.id)
    db.session.expire_all()
    assert load_session_user(session_id) is None
    assert load_session_user(f"{user.id}:2").id == user.id
    for bad in ("", str(user.id), f"{user.id}:", "x:1", f"{user.id}:-1", "999999:1"):
        assert load_session_user(bad) is None


# --- flask users create ----------------------------------------------------------------

def test_cli_creates_an_organizer(app):
    result = app.test_cli_runner().invoke(args=[
        "users", "create", "Olga@Example.org", "--name", "Olga Org", "--password", PASSWORD,
        "--organizer"])
    assert result.exit_code == 0, result.output
    user = users_named(app, "olga@example.org")
    assert result.output == f"Created organizer olga@example.org (id {user.id}).\n"
    assert (user.name, user.is_organizer) == ("Olga Org", True)
    assert user.password_hash.startswith("scrypt:")


def test_cli_creates_an_attendee_by_default(app):
    result = app.test_cli_runner().invoke(args=[
        "users", "create", "att@example.org", "--name", "Att", "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    user = users_named(app, "att@example.org")
    assert result.output == f"Created attendee att@example.org (id {user.id}).\n"
    assert user.is_organizer is False


@pytest.mark.parametrize("password, message", [
    ("short", "Error: Password: 12 to 128 characters.\n"),
    ("password1234", "Error: Password: too easy to guess. This is a very common password. "
                     "Add another word or two. Uncommon words are better.\n"),
])
def test_cli_refuses_a_bad_password(app, password, message):
    result = app.test_cli_runner().invoke(args=[
        "users", "create", "bad@example.org", "--name", "Bad", "--password", password])
    assert result.exit_code == 1
    assert result.output == message
    assert "Traceback" not in result.output
    assert user_count(app) == 0


def test_cli_refuses_a_taken_email(app, make_user):
    make_user(email="taken@example.org")
    result = app.test_cli_runner().invoke(args=[
        "users", "create", "taken@example.org", "--name", "Again", "--password", PASSWORD])
    assert result.exit_code == 1
    assert result.output == "Error: An account with this email already exists.\n"
    assert user_count(app) == 1
