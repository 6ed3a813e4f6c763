"""The invariants a load run must leave intact, checked in SQL (the source of truth).

Used by loadtests/bench/ after every scenario and by tests/live/test_rush_smoke.py.
Each check is a plain SQL question; a failed check says what SQL holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection, inspect, text


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"[{'ok' if self.ok else 'FAIL'}] {self.name}: {self.detail}"


def _scalar(conn: Connection, sql: str, **params) -> int:
    return int(conn.execute(text(sql), params).scalar() or 0)


def has_outbox(conn: Connection) -> bool:
    return inspect(conn).has_table("outbox")


def event_checks(conn: Connection, event_id: int, *, register_attempts: int | None = None,
                 expect_confirmed: int | None = None) -> list[Check]:
    """Seats never oversold, nobody twice, counters match rows, one activity row per attempt,
    one confirmation email (outbox row) per seat."""
    checks = []
    capacity, counted, waitlisted_counted = conn.execute(text(
        "SELECT capacity, confirmed_count, waitlisted_count FROM events WHERE id = :e"),
        {"e": event_id}).one()
    rows = dict(conn.execute(text(
        "SELECT status, count(*) FROM registrations WHERE event_id = :e GROUP BY status"),
        {"e": event_id}).all())
    confirmed, waitlisted = rows.get("confirmed", 0), rows.get("waitlisted", 0)
    if expect_confirmed is not None:
        checks.append(Check("exactly the expected seats confirmed", confirmed == expect_confirmed,
                            f"{confirmed} confirmed rows, expected {expect_confirmed}"))
    checks.append(Check("never oversold", confirmed <= capacity,
                        f"{confirmed} confirmed of capacity {capacity}"))
    checks.append(Check("seat counter = confirmed rows", counted == confirmed,
                        f"events.confirmed_count {counted}, rows {confirmed}"))
    checks.append(Check("waitlist counter = waitlisted rows", waitlisted_counted == waitlisted,
                        f"events.waitlisted_count {waitlisted_counted}, rows {waitlisted}"))
    twice = _scalar(conn, "SELECT count(*) FROM (SELECT user_id FROM registrations"
                          " WHERE event_id = :e GROUP BY user_id HAVING count(*) > 1) t",
                    e=event_id)
    checks.append(Check("no person twice", twice == 0, f"{twice} people with two rows"))
    positions = [p for (p,) in conn.execute(text(
        "SELECT position FROM registrations WHERE event_id = :e AND status = 'waitlisted'"
        " ORDER BY position"), {"e": event_id})]
    checks.append(Check("waitlist positions 1..n", positions == list(range(1, waitlisted + 1)),
                        f"{len(positions)} waitlisted"))
    activity = dict(conn.execute(text(
        "SELECT outcome, count(*) FROM activity_log WHERE event_id = :e AND action = 'register'"
        " GROUP BY outcome"), {"e": event_id}).all())
    attempts_logged = sum(activity.values())
    if register_attempts is not None:
        checks.append(Check("one activity row per attempt", attempts_logged == register_attempts,
                            f"{attempts_logged} rows for {register_attempts} answered attempts"
                            f" {dict(sorted(activity.items()))}"))
    failed = activity.get("failed", 0)
    checks.append(Check("no failed attempts logged", failed == 0, f"{failed} failed"))
    if has_outbox(conn):
        checks.extend(_outbox_checks(conn, event_id, confirmed))
    return checks


# Each email kind and the activity rows it announces: one outbox row per such row.
_EMAIL_FOR = {
    "confirmation": "action = 'register' AND outcome = 'confirmed'",
    "waitlisted": "action = 'register' AND outcome = 'waitlisted'",
    "promoted": "action = 'promote'",
    "cancellation": "outcome = 'cancelled'",
}


def _outbox_checks(conn: Connection, event_id: int, confirmed: int) -> list[Check]:
    """One email per confirmation (and per waitlist place, promotion, cancellation)."""
    mails = dict(conn.execute(text(
        "SELECT kind, count(*) FROM outbox WHERE event_id = :e GROUP BY kind"),
        {"e": event_id}).all())
    checks = []
    for kind, where in _EMAIL_FOR.items():
        sql = f"SELECT count(*) FROM activity_log WHERE event_id = :e AND {where}"  # noqa: S608
        happened = _scalar(conn, sql, e=event_id)
        if happened or mails.get(kind):
            name = ("one outbox row per confirmation" if kind == "confirmation"
                    else f"one outbox row per {kind} email")
            checks.append(Check(name, mails.get(kind, 0) == happened,
                                f"{mails.get(kind, 0)} {kind} emails for {happened} activity rows"))
    if not checks:
        checks.append(Check("one outbox row per confirmation", confirmed == 0,
                            f"no emails for {confirmed} confirmed seats"))
    return checks


def rush_checks(conn: Connection, event_id: int, capacity: int, answers: list[dict],
                people: int) -> list[Check]:
    """The rush: SQL and what every person was told agree, seat for seat."""
    confirmed_expected = min(capacity, people)
    checks = event_checks(conn, event_id, register_attempts=people,
                          expect_confirmed=confirmed_expected)
    activity = dict(conn.execute(text(
        "SELECT outcome, count(*) FROM activity_log WHERE event_id = :e AND action = 'register'"
        " GROUP BY outcome"), {"e": event_id}).all())
    checks.append(Check("activity: confirmed and rejected_full add up",
                        activity.get("confirmed", 0) == confirmed_expected
                        and activity.get("rejected_full", 0) == people - confirmed_expected,
                        str(dict(sorted(activity.items())))))
    tally: dict[str, int] = {}
    for answer in answers:
        tally[answer["outcome"]] = tally.get(answer["outcome"], 0) + 1
    checks.append(Check("every person answered", len(answers) == people,
                        f"{len(answers)} answers for {people} people"))
    checks.append(Check("winners told so", tally.get("confirmed", 0) == confirmed_expected,
                        f"{tally.get('confirmed', 0)} confirmation answers"))
    checks.append(Check("losers told the event is full",
                        tally.get("full", 0) == people - confirmed_expected,
                        f"{tally.get('full', 0)} full answers"))
    wrong = [a for a in answers if a["outcome"] not in ("confirmed", "full")]
    checks.append(Check("no misclassified answer", not wrong,
                        f"{len(wrong)} wrong" + (f", first: {wrong[0]}" if wrong else "")))
    winners = {a["email"] for a in answers if a["outcome"] == "confirmed"}
    sql_winners = {email for (email,) in conn.execute(text(
        "SELECT u.email FROM registrations r JOIN users u ON u.id = r.user_id"
        " WHERE r.event_id = :e AND r.status = 'confirmed'"), {"e": event_id})}
    checks.append(Check("the people told they won are the people SQL seated",
                        winners == sql_winners,
                        f"{len(winners ^ sql_winners)} differ"))
    return checks


_REPAIRED = re.compile(r"(\d+) repaired")


def reconcile_checks(output: str, returncode: int) -> list[Check]:
    """`flask seats reconcile` output: Redis must agree with SQL (0 repaired)."""
    match = _REPAIRED.search(output)
    repaired = int(match.group(1)) if match else None
    drifted = [line for line in output.splitlines() if "REPAIRED" in line]
    return [Check("Redis agrees with SQL (flask seats reconcile)",
                  returncode == 0 and repaired == 0,
                  (output.strip().splitlines() or ["no output"])[-1]
                  + (f"; {drifted[:3]}" if drifted else ""))]
