"""A person's place at an event: confirmed, waitlisted or cancelled, one row per pair."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import CHAR

from webapp.auth.models import User
from webapp.events.models import Event
from webapp.extensions import db
from webapp.sqltypes import UTCDateTime, one_of, utcnow


class Status(StrEnum):
    """Where a registration is in its lifecycle (webapp/registrations/lifecycle.py moves it).

    A new state (the waitlist offers of issue 16: `offered`) is a member here, a
    migration of the CHECK below, and rows in lifecycle.TRANSITIONS.
    """

    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"


LIVE = (Status.CONFIRMED, Status.WAITLISTED)  # states that hold a seat or a waitlist place


class Registration(db.Model):
    __tablename__ = "registrations"
    __table_args__ = (
        # One row per (event, person): a person can never hold two places (P3).
        UniqueConstraint("event_id", "user_id", name="uq_registrations_event_user"),
        CheckConstraint(one_of("status", Status), name="status_known"),
        CheckConstraint(
            "(status = 'waitlisted' AND position IS NOT NULL AND position >= 1)"
            " OR (status <> 'waitlisted' AND position IS NULL)",
            name="position_only_when_waitlisted",
        ),
        CheckConstraint(
            "(status = 'cancelled') = (cancelled_at IS NOT NULL)",
            name="cancelled_at_when_cancelled",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    position: Mapped[int | None] = mapped_column(Integer, nullable=True)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    event: Mapped[Event] = relationship()
    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<Registration {self.id} e{self.event_id} u{self.user_id} {self.status}>"


class RetryRecord(db.Model):
    """The first answer to a registration sent with an Idempotency-Key, by person and key.

    Written in the transaction that placed the person (so a second effect breaks
    the primary key and rolls back), or after a refusal; a retry with the same key
    gets this answer again (webapp/registrations/idempotency.py). Kept a day.
    """

    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(CHAR(64))  # sha256 of the request, hex
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    # confirmed | waitlisted, or the code of the refusal (event_full, ...)
    outcome: Mapped[str] = mapped_column(String(32))
    registration_id: Mapped[int | None] = mapped_column(ForeignKey("registrations.id"),
                                                        nullable=True)
    position: Mapped[int | None] = mapped_column(Integer, nullable=True)
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
