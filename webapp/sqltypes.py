"""Column types shared by the models: UTC timestamps that round-trip on every database."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime: timestamptz on PostgreSQL, naive UTC text on SQLite.

    Naive values are refused on the way in, so a local time can never be stored
    by mistake; values always come back aware, in UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: give a time zone")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def one_of(column: str, values) -> str:
    """The text of a CHECK that `column` holds one of `values` (enum members or strings),
    exactly as the migrations spell it: "status IN ('a', 'b')"."""
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"
