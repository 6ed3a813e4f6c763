"""People who sign in: attendees and organizers."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.sqltypes import UTCDateTime, one_of, utcnow


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("length(name) >= 1 AND length(name) <= 100", name="name_length"),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_organizer: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped on sign-out and password change: every older session cookie and
    # API token carries the old value and stops working.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the person followed the link of a verification email.
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # A deleted account stays as an anonymous row (no email, no name, no password),
    # so the activity log and past registrations keep pointing at someone.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class SecurityKind(StrEnum):
    """What a security event records."""

    SIGN_IN = "sign_in"
    SIGN_IN_FAILED = "sign_in_failed"
    SIGN_IN_THROTTLED = "sign_in_throttled"
    SIGN_OUT = "sign_out"
    SIGN_UP = "sign_up"
    PASSWORD_RESET_ASKED = "password_reset_asked"  # noqa: S105 - names, not secrets
    PASSWORD_RESET = "password_reset"  # noqa: S105
    PASSWORD_CHANGED = "password_changed"  # noqa: S105
    EMAIL_VERIFIED = "email_verified"
    ROLE_GRANTED = "role_granted"
    ROLE_REVOKED = "role_revoked"
    DATA_EXPORTED = "data_exported"
    ACCOUNT_DELETED = "account_deleted"


class SecurityEvent(db.Model):
    """The audit trail of accounts: who signed in, failed, reset, changed or lost what.

    Shown to the person it concerns (their data export) and to operators (the
    `flask security-log` command), to nobody else. `email` is the address a
    request named, so a failed sign-in for an unknown address is kept too.
    """

    __tablename__ = "security_events"
    __table_args__ = (CheckConstraint(one_of("kind", SecurityKind), name="kind_known"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True,
                                                index=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str | None] = mapped_column(String(200), nullable=True)

    def __repr__(self) -> str:
        return f"<SecurityEvent {self.kind} u{self.user_id} {self.email}>"
