"""Journal ids are unique across processes: stream entry ids alone repeat between streams."""

from __future__ import annotations

from sqlalchemy import text

from webapp.reports import journal
from webapp.reports.journal import Journal


def test_the_same_entry_id_in_two_processes_streams_gives_two_rows(
        app_ctx, make_event, make_user, redis_client):
    """Two web processes append in the same millisecond: both streams hold entry "1-0"."""
    event, people = make_event(capacity=1), [make_user(), make_user()]
    now = "2026-11-21T12:00:00+00:00"
    for person in people:
        other_process = Journal()  # what of_process() builds in another process
        redis_client.xadd(other_process.stream, {
            "event_id": event.id, "user_id": person.id, "action": "register",
            "outcome": "rejected_full", "request_id": "", "detail": "gate",
            "occurred_at": now, "journal_id": other_process.next_id()}, id="1-0")

    assert journal.write_streams() == 2
    with app_ctx.app_context():
        from webapp.database import read_session

        with read_session() as s:
            rows = s.execute(text("SELECT user_id, journal_id FROM activity_log"
                                  " WHERE event_id = :e ORDER BY user_id"),
                             {"e": event.id}).all()
    assert [r.user_id for r in rows] == sorted(p.id for p in people)
    assert len({r.journal_id for r in rows}) == 2
    assert all(r.journal_id.endswith("/1") for r in rows)  # each process's first attempt
