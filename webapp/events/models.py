"""Events and their seat counts; the counts are guarded by CHECK constraints."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.auth.models import User
from webapp.extensions import db
from webapp.sqltypes import UTCDateTime, utcnow

MAX_CAPACITY = 100_000


class Event(db.Model):
    __tablename__ = "events"
    __table_args__ = (
        CheckConstraint(f"capacity >= 1 AND capacity <= {MAX_CAPACITY}", name="capacity_range"),
        # The schema's own guard against overselling (P1).
        CheckConstraint(
            "confirmed_count >= 0 AND confirmed_count <= capacity", name="seats_within_capacity"
        ),
        CheckConstraint("waitlisted_count >= 0", name="waitlisted_count_positive"),
        CheckConstraint(
            "waitlist_capacity IS NULL OR waitlist_capacity >= 0", name="waitlist_capacity_positive"
        ),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("length(title) >= 1", name="title_not_empty"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    location: Mapped[str] = mapped_column(String(200))
    capacity: Mapped[int] = mapped_column(Integer)
    confirmed_count: Mapped[int] = mapped_column(Integer, default=0)
    waitlist_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    waitlist_capacity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    waitlisted_count: Mapped[int] = mapped_column(Integer, default=0)
    organizer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    organizer: Mapped[User] = relationship()

    @property
    def seats_left(self) -> int:
        return max(self.capacity - self.confirmed_count, 0)

    @property
    def is_full(self) -> bool:
        return self.confirmed_count >= self.capacity

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.title!r} {self.confirmed_count}/{self.capacity}>"
