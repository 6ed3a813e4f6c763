"""The account use cases that send email: sign up, forgot and reset a password, verify.

Each writes its email into the outbox in the transaction that makes it true
(the account created, the reset asked) and records its security event there
too; the worker composes and sends it later (webapp/mail). None of them tells
a caller whether an address has an account, except sign-up through the API,
which must (409 email_taken).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from webapp.auth import audit, directory, links
from webapp.auth import services as accounts
from webapp.auth.audit import NOWHERE, Origin
from webapp.auth.limits import allow_account_mail
from webapp.auth.links import InvalidLink
from webapp.auth.models import SecurityKind, User
from webapp.auth.passwords import check_password
from webapp.database import on_commit, write_session
from webapp.errors import EmailNotVerified, Invalid
from webapp.extensions import db
from webapp.mail.models import MailKind
from webapp.mail.services import add_account_mail
from webapp.sqltypes import utcnow


def verification_required() -> bool:
    return bool(current_app.config["REQUIRE_EMAIL_VERIFICATION"])


def _live_user(session: Session, address: str) -> User | None:
    """The account of this (normalized) address, unless it was deleted."""
    return session.scalar(select(User).where(User.email == address,
                                             User.deleted_at.is_(None)))


# --- sign up -------------------------------------------------------------------------

@dataclass(frozen=True)
class SignUp:
    """What a sign-up did. `user`: the new account, None when the address had one."""

    address: str
    user: User | None
    verification_sent: bool = False


def sign_up(email: str, name: str, password: str, *, tell_owner: bool,
            origin: Origin = NOWHERE) -> SignUp:
    """Create an attendee account; with REQUIRE_EMAIL_VERIFICATION its verification
    email goes out with it (same transaction).

    Every field is checked first, the password judged against this email and name,
    whether or not the address has an account, so a refusal never tells. Then, for an
    address that has an account: with `tell_owner` (the page) its owner gets an
    ACCOUNT_EXISTS email and nothing else shows it; without (the API) EmailTaken.

    :raise Invalid: a field is not acceptable (the message says which).
    :raise EmailTaken: the address has an account and `tell_owner` is false.
    """
    address, name = accounts.normalize_email(email), accounts.check_name(name)
    verify = verification_required()
    try:
        with write_session() as session:
            user = accounts.create_user(address, name, password, session=session)
            if verify:
                add_account_mail(session, MailKind.VERIFY_EMAIL, user_id=user.id)
            audit.record(SecurityKind.SIGN_UP, user_id=user.id, email=address, origin=origin,
                         session=session)
    except accounts.EmailTaken:
        # Counted before the transaction: no Redis round trip while it holds its locks.
        allowed = tell_owner and allow_account_mail(MailKind.ACCOUNT_EXISTS, address)
        with write_session() as session:
            owner = _live_user(session, address)
            audit.record(SecurityKind.SIGN_UP, user_id=owner and owner.id, email=address,
                         origin=origin, detail="refused: the address has an account",
                         session=session)
            if owner is not None and allowed:
                add_account_mail(session, MailKind.ACCOUNT_EXISTS, user_id=owner.id)
        if not tell_owner:
            raise
        return SignUp(address, None)
    return SignUp(address, user, verification_sent=verify)


# --- forgot and reset ------------------------------------------------------------------

def ask_password_reset(email: str, *, origin: Origin = NOWHERE) -> None:
    """Send a reset link to the account of this address, if there is one (and it had
    fewer than RATELIMIT_ACCOUNT_MAIL of them lately). Says nothing either way, not even
    that the address is malformed: the asking is recorded all the same.
    """
    try:
        address = accounts.normalize_email(email)
    except Invalid:
        address = None
    # Counted for every address, with or without an account: the same work either way,
    # and before the transaction (no Redis round trip while it holds its locks).
    allowed = address is not None and allow_account_mail(MailKind.PASSWORD_RESET, address)
    with write_session() as session:
        user = _live_user(session, address) if address else None
        # A malformed address is not kept: it may hold anything (NUL, which PostgreSQL
        # refuses in text, control characters for the log).
        audit.record(SecurityKind.PASSWORD_RESET_ASKED, user_id=user and user.id,
                     email=address, origin=origin, session=session,
                     detail=None if address else "not an email address")
        if user is not None and allowed:
            add_account_mail(session, MailKind.PASSWORD_RESET, user_id=user.id)


def reset_link_owner(token: str) -> User:
    """The person a reset link is for, while it can still be used (the reset page).

    :raise InvalidLink: forged, expired, used (or any reset or sign-out since it was
      made), or the account is gone.
    """
    claim = links.read_reset_token(token)
    user = db.session.get(User, claim.user_id)
    if user is None or user.deleted_at is not None \
            or user.session_version != claim.session_version:
        raise InvalidLink()
    return user


def reset_password(token: str, password: str, *, origin: Origin = NOWHERE) -> User:
    """Set a new password with a reset link; it signs out every session and revokes every
    API token. The link works once: its session_version is bumped by the same guarded
    UPDATE that stores the password, so of two uses at once exactly one succeeds.

    :raise InvalidLink: see reset_link_owner, or the other use of the link won.
    :raise Invalid: the password is not acceptable (code invalid_password, with why).
    """
    claim = links.read_reset_token(token)
    user = reset_link_owner(token)
    check_password(password, email=user.email, name=user.name)
    with write_session() as session:
        version = accounts.set_password(user.id, password,
                                        only_at_version=claim.session_version,
                                        session=session)
        if version is None:
            raise InvalidLink()
        audit.record(SecurityKind.PASSWORD_RESET, user_id=user.id, email=user.email,
                     origin=origin, session=session)
    return user


# --- verifying an address -------------------------------------------------------------

def verify_email(token: str, *, origin: Origin = NOWHERE) -> User:
    """Mark the address of a verification link as verified (again: a no-op).

    :raise InvalidLink: forged, expired, or the account is gone or has another address.
    """
    claim = links.read_verify_token(token)
    now = utcnow()
    with write_session() as session:
        user = session.get(User, claim.user_id)
        if user is None or user.deleted_at is not None or user.email != claim.email:
            raise InvalidLink()
        if user.email_verified_at is None:
            session.execute(update(User).where(User.id == user.id)
                            .values(email_verified_at=now))
            user.email_verified_at = now
            audit.record(SecurityKind.EMAIL_VERIFIED, user_id=user.id, email=user.email,
                         origin=origin, session=session)
            # The Redis copy says "not verified": drop it, so the next request reads SQL.
            version = user.session_version
            on_commit(session, lambda: directory.revoke(user.id, version))
    return user


def send_verification_again(user_id: int) -> bool | None:
    """Another verification email for this person, unless they had RATELIMIT_ACCOUNT_MAIL
    of them lately: True when one was written, False when not, None when the address is
    verified already (or the account is gone)."""
    user = db.session.get(User, user_id)
    if user is None or user.deleted_at is not None or user.email_verified_at is not None:
        return None
    if not allow_account_mail(MailKind.VERIFY_EMAIL, user.email):
        return False
    with write_session() as session:
        add_account_mail(session, MailKind.VERIFY_EMAIL, user_id=user_id)
    return True


def require_verified_email(user: User) -> None:
    """Refuse someone whose address is not verified yet, when REQUIRE_EMAIL_VERIFICATION
    is on; the pages and the API call it before registering.

    Costs nothing when the setting is off, and nothing more than the signed-in
    person's copy (webapp/auth/directory.py) when they are verified. Only a copy
    saying "not verified" is checked against SQL: it may predate the link.

    :raise EmailNotVerified: not verified.
    """
    if not current_app.config["REQUIRE_EMAIL_VERIFICATION"] or user.email_verified_at:
        return
    verified = db.session.scalar(select(User.email_verified_at).where(User.id == user.id))
    if verified is None:
        raise EmailNotVerified()

