"""Valid inputs to start from: the organizer's event form, the API's EventCreate body, dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

YEAR = date.today().year + 2  # always in the future, never near a year boundary


def form_data(**overrides) -> dict:
    """A complete, valid event form as a browser posts it (UTC wall-clock times)."""
    data = {
        "title": "Pottery night",
        "description": "Bring an apron.\n\nClay is provided.",
        "starts_at": f"{YEAR}-06-01T18:00",
        "ends_at": f"{YEAR}-06-01T20:30",
        "timezone": "UTC",
        "location": "Studio 9",
        "capacity": "12",
        "waitlist_enabled": "y",
        "waitlist_capacity": "5",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def event_body(**overrides) -> dict:
    """A valid EventCreate body: next year, two hours, 10 seats."""
    starts = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    body = {"title": "Launch party", "description": "Cake.",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "location": "Hall A", "capacity": 10}
    body.update(overrides)
    return body


def utc(year, month, day, hour, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def last_sunday_of_march(year: int) -> date:
    day = date(year, 3, 31)
    return day - timedelta(days=(day.weekday() + 1) % 7)
