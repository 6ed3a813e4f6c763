"""The activity log: one append-only row per registration attempt and its outcome."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.sqltypes import UTCDateTime, one_of, utcnow


class Outcome(StrEnum):
    """What an attempt came to."""

    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    PROMOTED = "promoted"
    CANCELLED = "cancelled"
    REJECTED_FULL = "rejected_full"
    REJECTED_DUPLICATE = "rejected_duplicate"
    FAILED = "failed"


class Action(StrEnum):
    """What was attempted, and by whom."""

    REGISTER = "register"
    CANCEL = "cancel"
    LEAVE_WAITLIST = "leave_waitlist"
    PROMOTE = "promote"
    ORGANIZER_CANCEL = "organizer_cancel"


class ActivityEntry(db.Model):
    __tablename__ = "activity_log"
    __table_args__ = (
        CheckConstraint(one_of("outcome", Outcome), name="outcome_known"),
        CheckConstraint(one_of("action", Action), name="action_known"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(24))
    outcome: Mapped[str] = mapped_column(String(24))
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # The Redis stream entry a drained rejection came from (webapp/reports/journal.py):
    # unique, so an entry written again after a lost acknowledgement is skipped.
    journal_id: Mapped[str | None] = mapped_column(String(40), nullable=True, unique=True,
                                                   index=True)

    def __repr__(self) -> str:
        return f"<Activity {self.action}->{self.outcome} e{self.event_id} u{self.user_id}>"
