"""What SQL and Redis hold for an event, read the same way by every test (app context)."""

from __future__ import annotations

from sqlalchemy import select, text


def settle_activity() -> None:
    """Write every rejection waiting in the Redis journal to activity_log (app context)."""
    from webapp.reports.journal import settle

    settle()


def sql_counts(event_id: int) -> dict:
    """What SQL holds for an event: counter, rows by status, activity by outcome."""
    from webapp.database import read_session

    settle_activity()
    with read_session() as s:
        confirmed_count, capacity = s.execute(
            text("SELECT confirmed_count, capacity FROM events WHERE id = :e"), {"e": event_id}
        ).one()
        rows = dict(s.execute(text(
            "SELECT status, count(*) FROM registrations WHERE event_id = :e GROUP BY status"),
            {"e": event_id}).all())
        activity = dict(s.execute(text(
            "SELECT outcome, count(*) FROM activity_log WHERE event_id = :e GROUP BY outcome"),
            {"e": event_id}).all())
    return {"capacity": capacity, "confirmed_count": confirmed_count,
            "confirmed": rows.get("confirmed", 0), "waitlisted": rows.get("waitlisted", 0),
            "cancelled": rows.get("cancelled", 0), "activity": activity}


def sql_confirmed_users(event_id: int) -> set[int]:
    """The people SQL holds a confirmed seat for."""
    from webapp.database import read_session
    from webapp.registrations.models import Registration, Status

    with read_session() as s:
        return set(s.scalars(select(Registration.user_id).where(
            Registration.event_id == event_id, Registration.status == Status.CONFIRMED)))


def redis_seats(client, event_id: int) -> tuple[set[int], int]:
    """(confirmed people, live holds) as Redis counts them."""
    from webapp.registrations.gate import EventKeys

    k = EventKeys.for_event(event_id)
    return {int(u) for u in client.smembers(k.confirmed)}, client.zcard(k.holds)


def activity_total() -> int:
    """Every activity row, after the journal is settled."""
    from webapp.database import read_session

    settle_activity()
    with read_session() as s:
        return s.scalar(text("SELECT count(*) FROM activity_log"))
