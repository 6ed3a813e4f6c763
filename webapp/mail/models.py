"""The outbox: one row per email to send, written in the transaction it announces."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.sqltypes import UTCDateTime, one_of, utcnow

if TYPE_CHECKING:  # by name below: importing webapp.events here would be circular
    from webapp.auth.models import User
    from webapp.events.models import Event



class MailKind(StrEnum):
    """What an email announces."""

    CONFIRMATION = "confirmation"
    WAITLISTED = "waitlisted"
    PROMOTED = "promoted"
    CANCELLATION = "cancellation"
    # About the account, not an event: no event_id, no registration_id.
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a kind, not a secret
    VERIFY_EMAIL = "verify_email"
    ACCOUNT_EXISTS = "account_exists"  # someone tried to sign up with this address


ACCOUNT_MAIL = (MailKind.PASSWORD_RESET, MailKind.VERIFY_EMAIL, MailKind.ACCOUNT_EXISTS)


class MailStatus(StrEnum):
    """Where an outbox row is in its delivery."""

    PENDING = "pending"  # waiting for a job (queued, scheduled for a retry, or lost)
    SENDING = "sending"  # claimed by a job until claimed_at + lease
    SENT = "sent"
    FAILED = "failed"  # permanently refused, or out of attempts; shown to organizers


class OutboxMessage(db.Model):
    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(one_of("kind", MailKind), name="kind_known"),
        CheckConstraint(one_of("status", MailStatus), name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_positive"),
        # An event's email names its event and registration; an account's email neither.
        CheckConstraint("(event_id IS NULL) = (registration_id IS NULL)",
                        name="event_with_registration"),
        CheckConstraint("(event_id IS NULL) = (" + one_of("kind", ACCOUNT_MAIL) + ")",
                        name="account_mail_has_no_event"),
        CheckConstraint("(status = 'sent') = (sent_at IS NOT NULL)", name="sent_at_when_sent"),
        # The sweeper's question: which unsent rows are due?
        Index("ix_outbox_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"), index=True,
                                                 nullable=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # The calendar entry this message adds or removes (UID per registration row).
    registration_id: Mapped[int | None] = mapped_column(ForeignKey("registrations.id"),
                                                        nullable=True)
    # Waitlist position when the message was written (waitlist-joined emails).
    position: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=MailStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the sweeper may (re-)enqueue a pending row: its job should have run by then.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)

    event: Mapped[Event | None] = relationship("Event")
    user: Mapped[User] = relationship("User")

    def __repr__(self) -> str:
        return (f"<OutboxMessage {self.id} {self.kind} u{self.user_id} e{self.event_id} "
                f"{self.status}>")
