"""Accounts: sign-up, credential checks, sign-out everywhere."""

from __future__ import annotations

import email_validator
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.auth import audit, directory
from webapp.auth.audit import NOWHERE, Origin
from webapp.auth.models import SecurityKind, User
from webapp.auth.passwords import PASSWORD_MAX, PASSWORD_MIN, check_password  # noqa: F401
from webapp.database import on_commit, write_session
from webapp.errors import Conflict, Invalid, NotFound
from webapp.extensions import db
from webapp.sqltypes import utcnow

# Addresses are checked for syntax only; reserved names (.test, .local) are fine for
# private installations and test rigs, and deliverability is the SMTP server's business.
email_validator.SPECIAL_USE_DOMAIN_NAMES = []

MAX_USER_ID = 2**31 - 1  # PostgreSQL's integer
NAME_MAX = 100


class EmailTaken(Conflict):
    code, message = "email_taken", "An account with this email already exists."


def normalize_email(raw: str) -> str:
    """A valid, lower-cased address, or Invalid."""
    try:
        info = validate_email((raw or "").strip(), check_deliverability=False,
                              test_environment=True)
    except EmailNotValidError as exc:
        raise Invalid(f"Email: {exc}", code="invalid_email") from exc
    if len(info.normalized) > 254:
        raise Invalid("Email: at most 254 characters.", code="invalid_email")
    return info.normalized.lower()


def check_name(raw: str) -> str:
    name = " ".join((raw or "").split())
    if not 1 <= len(name) <= NAME_MAX:
        raise Invalid(f"Name: 1 to {NAME_MAX} characters.", code="invalid_name")
    return name


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def create_user(email: str, name: str, password: str, *, is_organizer: bool = False,
                session: Session | None = None) -> User:
    """Create an account: in `session`'s transaction when given (the caller commits, and
    may add what the new account brings, such as its verification email), else in its own.

    :raise Invalid: a field is not acceptable (the message says which).
    :raise EmailTaken: the address already has an account.
    """
    email, name = normalize_email(email), check_name(name)
    user = User(email=email, name=name,
                password_hash=hash_password(check_password(password, email=email, name=name)),
                is_organizer=is_organizer)
    try:
        if session is None:
            with write_session() as own:
                own.add(user)
        else:
            session.add(user)
            session.flush()
    except IntegrityError as exc:
        raise EmailTaken() from exc
    return user


# A real hash, so an unknown address costs as much time as a wrong password.
_dummy_hash: str | None = None


def authenticate(email: str, password: str) -> User | None:
    """The user these credentials belong to, else None (same cost either way)."""
    global _dummy_hash
    try:
        address = normalize_email(email)
    except Invalid:
        address = None
    user = db.session.scalar(select(User).where(User.email == address)) if address else None
    if user is None:
        if _dummy_hash is None:
            _dummy_hash = hash_password("not-a-real-password-at-all")
        check_password_hash(_dummy_hash, password or "")
        return None
    return user if check_password_hash(user.password_hash, password or "") else None


def load_session_user(session_id: str) -> User | None:
    """Flask-Login's loader: '<id>:<version>' is valid only while the version matches."""
    user_id, _, version = (session_id or "").partition(":")
    if not (user_id.isdigit() and version.isdigit()) or int(user_id) > MAX_USER_ID:
        return None
    return directory.user_at_version(int(user_id), int(version))


def sign_out_everywhere(user_id: int) -> None:
    """Invalidate every session and token of this person (sign-out, deleted account)."""
    with write_session() as session:
        _bump_version(session, user_id)


def set_organizer(email: str, organizer: bool, *, origin: Origin = NOWHERE) -> User:
    """Grant or take away the organizer role.

    A change of privilege ends every session and API token of the person (as
    OWASP asks of any privilege change): no cookie, token or cached copy made
    under the old role outlives the commit. Recorded in the audit trail.

    :raise NotFound: no account has this address.
    """
    address = normalize_email(email)
    with write_session() as session:
        user = session.scalar(select(User).where(User.email == address, User.deleted_at.is_(None))
                              .with_for_update())
        if user is None:
            raise NotFound(f"No account has the address {address}.")
        if user.is_organizer != organizer:
            _bump_version(session, user.id, is_organizer=organizer)
            audit.record(SecurityKind.ROLE_GRANTED if organizer else SecurityKind.ROLE_REVOKED,
                         user_id=user.id, email=address, origin=origin, session=session)
            session.refresh(user)
    return user


def set_password(user_id: int, password: str, *, only_at_version: int | None = None,
                 session: Session | None = None) -> int | None:
    """Store a new password and sign out every session and token of this person.

    The password must already have passed check_password. With `only_at_version`,
    nothing changes unless the person is still at that session_version: a reset
    link (which carries the version it was made at) then works once, even when
    two requests use it at the same time. Runs in `session`'s transaction when
    given, else in its own.

    :return: the new session_version (a caller that keeps its own session signed
      in logs in again with it), or None when nothing changed.
    """
    if session is None:
        with write_session() as own:
            return set_password(user_id, password, only_at_version=only_at_version,
                                session=own)
    return _bump_version(session, user_id, only_at_version=only_at_version,
                         password_hash=hash_password(password))


# A deleted account's row: no address, no name, no password (not a hash: nothing matches it).
DELETED_NAME = "Deleted account"
UNUSABLE_PASSWORD_HASH = "!deleted"  # noqa: S105 - matches no password


def tombstone_email(user_id: int) -> str:
    """A deleted account's address: unique, lower case, never deliverable (RFC 2606 .invalid)."""
    return f"deleted-{int(user_id)}@deleted.invalid"


def anonymize(user_id: int, *, session: Session) -> int | None:
    """Turn the person's row into an anonymous tombstone and end every session and token,
    in `session`'s transaction (the caller's, which deletes the rest of the account).

    The row stays, so registrations, the activity log and events keep pointing at
    someone; its address is free for a new sign-up at once.

    :return: the new session_version, or None when there is no such live account
      (never was, or deleted already: a second deletion changes nothing).
    """
    version = session.scalar(select(User.session_version)
                             .where(User.id == user_id, User.deleted_at.is_(None))
                             .with_for_update())
    if version is None:
        return None
    return _bump_version(session, user_id, only_at_version=version,
                         email=tombstone_email(user_id), name=DELETED_NAME,
                         password_hash=UNUSABLE_PASSWORD_HASH, is_organizer=False,
                         email_verified_at=None, deleted_at=utcnow())


def _bump_version(session: Session, user_id: int, *, only_at_version: int | None = None,
                  **values) -> int | None:
    """The one write that ends every session and token: session_version + 1 (plus `values`)."""
    statement = update(User).where(User.id == user_id)
    if only_at_version is not None:
        statement = statement.where(User.session_version == only_at_version)
    version = session.scalar(statement.values(session_version=User.session_version + 1,
                                              **values).returning(User.session_version))
    if version is None:
        return None
    # Before the commit (the row is locked) and after it: a copy of the person
    # read from SQL in between can never bring the old version back.
    directory.revoke(user_id, version)
    on_commit(session, lambda: directory.revoke(user_id, version))
    return version
