"""The checker: what a trial's history, SQL and the SMTP sink's record say, as numbers.

Every function here is pure (plain data in, numbers out) so that it can be tested on
synthetic histories: a checker bug must not hide a failure. evidence.py reads the
data; campaign.py calls these after each trial and after the campaign.

Times are epoch seconds. A person's place at an event is rebuilt from the activity
rows a change writes in its own transaction (confirmed, waitlisted, promoted,
cancelled), with the time it happened and the X-Request-ID of the request that made it.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from loadtests.chaos.history import CANCEL, INFO, OK, REGISTER, Attempt

LIVE = ("confirmed", "waitlisted", "offered")
# activity outcome -> the place it leaves the person in (None: no live place)
PLACE_AFTER = {"confirmed": "confirmed", "waitlisted": "waitlisted",
               "promoted": "confirmed", "cancelled": None, "offer_expired": None}
# activity outcome -> the email it announces (invariants._EMAIL_FOR, by outcome)
EMAIL_FOR = {"confirmed": "confirmation", "waitlisted": "waitlisted",
             "promoted": "promoted", "cancelled": "cancellation"}
NOTHING_SAVED = re.compile(r"nothing was saved|not saved|is unchanged", re.IGNORECASE)
DELIVERY_LIMIT_S = 300.0  # SPEC: within 5 minutes of the outage's end


@dataclass(frozen=True)
class EventInfo:
    id: int
    capacity: int
    waitlist_enabled: bool = False
    waitlist_capacity: int | None = None


@dataclass(frozen=True)
class Row:
    """A registration row as SQL holds it at the end."""

    id: int
    event_id: int
    user_id: int
    status: str


@dataclass(frozen=True)
class Change:
    """An activity row that moved a person's place."""

    event_id: int
    user_id: int
    outcome: str
    at: float
    request_id: str | None = None


@dataclass(frozen=True)
class Mail:
    """An outbox row."""

    id: int
    kind: str
    event_id: int
    user_id: int
    status: str
    created_at: float


@dataclass(frozen=True)
class Received:
    """A message the SMTP sink accepted."""

    outbox_id: int | None
    at: float


@dataclass(frozen=True)
class RedisView:
    """An event's gate keys: None in RedisCounts when the event is not in Redis."""

    capacity: int
    confirmed: frozenset[int]
    waitlisted: frozenset[int]
    live_holds: int


# --- the places over time ---------------------------------------------------------------

Timeline = list[tuple[float, str | None]]


def timelines(changes: Iterable[Change]) -> dict[tuple[int, int], Timeline]:
    """(event, person) -> [(when, place after)] in time order."""
    out: dict[tuple[int, int], Timeline] = defaultdict(list)
    for c in sorted(changes, key=lambda c: c.at):
        if c.outcome in PLACE_AFTER:
            out[(c.event_id, c.user_id)].append((c.at, PLACE_AFTER[c.outcome]))
    return out


def place_at(timeline: Timeline, moment: float) -> str | None:
    place = None
    for at, after in timeline:
        if at > moment:
            break
        place = after
    return place


def live_during(timeline: Timeline, start: float, end: float) -> bool:
    """Did the person hold a live place at any moment of [start, end]?"""
    if place_at(timeline, start) in LIVE:
        return True
    return any(start < at <= end and after in LIVE for at, after in timeline)


def counts_at(event_lines: list[Timeline], moment: float) -> tuple[int, int]:
    """(confirmed, waitlisted) of an event at a moment."""
    places = Counter(place_at(line, moment) for line in event_lines)
    return places["confirmed"], places["waitlisted"]


def place_free(event: EventInfo, confirmed: int, waitlisted: int) -> bool:
    """Would SQL have given a newcomer a seat or a waitlist place?"""
    if confirmed < event.capacity and waitlisted == 0:
        return True
    return event.waitlist_enabled and (event.waitlist_capacity is None
                                       or waitlisted < event.waitlist_capacity)


# --- the answers people got -------------------------------------------------------------

def acknowledged(attempts: Iterable[Attempt]) -> int:
    return sum(1 for a in attempts if a.outcome == OK)


def unknown(attempts: Iterable[Attempt]) -> int:
    """Attempts with no answer or a 5xx."""
    return sum(1 for a in attempts if a.outcome == INFO)


def by_op(attempts: Iterable[Attempt]) -> dict[str, list[Attempt]]:
    ops: dict[str, list[Attempt]] = defaultdict(list)
    for a in attempts:
        ops[a.op_id].append(a)
    return {k: sorted(v, key=lambda a: a.attempt) for k, v in ops.items()}


def lost(attempts: Iterable[Attempt], rows: Iterable[Row]) -> list[str]:
    """Acknowledged operations SQL does not show: per (event, person), the last
    acknowledged operation must be what SQL ends with, unless a later operation of the
    same person there has an unknown outcome (it may have undone it)."""
    final = {(r.event_id, r.user_id): r for r in rows}
    ops_of: dict[tuple[int, int], list[list[Attempt]]] = defaultdict(list)
    for op in by_op(attempts).values():
        ops_of[(op[0].event_id, op[0].user_id)].append(op)
    found = []
    for key, ops in ops_of.items():
        ops.sort(key=lambda op: op[0].start)
        acked = [i for i, op in enumerate(ops) if op[-1].outcome == OK]
        if not acked:
            continue
        last = ops[acked[-1]]
        # A later operation may have taken effect if any of its attempts went unanswered,
        # even when a retry was then refused (its first attempt had committed).
        later_unknown = any(a.outcome == INFO for op in ops[acked[-1] + 1:] for a in op)
        if later_unknown:
            continue
        row = final.get(key)
        is_live = row is not None and row.status in LIVE
        answer = last[-1]
        if answer.op == REGISTER:
            wrong_id = (row is not None and answer.registration_id is not None
                        and answer.registration_id != row.id)
            promoted_ok = answer.code == "waitlisted" or (row and row.status == answer.code)
            if not is_live or wrong_id or not promoted_ok:
                found.append(answer.op_id)
        elif answer.op == CANCEL and is_live:
            found.append(answer.op_id)
    return found


def false_already(attempts: Iterable[Attempt], lines: dict[tuple[int, int], Timeline],
                  grace: float) -> list[Attempt]:
    """409 already_registered while the person had no live place from the request's start
    to `grace` seconds after its answer (a commit of their own in flight lands by then)."""
    return [a for a in attempts if a.op == REGISTER and a.code == "already_registered"
            and not live_during(lines.get((a.event_id, a.user_id), []), a.start,
                                a.end + grace)]


def false_full(attempts: Iterable[Attempt], events: dict[int, EventInfo],
               lines: dict[tuple[int, int], Timeline], hold_window: float) -> list[Attempt]:
    """409 event_full while SQL had a free place at every moment from the request's
    start to `hold_window` seconds after its answer: no seat taken by the holds of
    attempts in flight then, which commit within that window, justifies it."""
    per_event: dict[int, list[Timeline]] = defaultdict(list)
    for (event_id, _user), line in lines.items():
        per_event[event_id].append(line)
    out = []
    for a in attempts:
        if a.op != REGISTER or a.code != "event_full" or a.event_id not in events:
            continue
        event, event_lines = events[a.event_id], per_event.get(a.event_id, [])
        window_end = a.end + hold_window
        changed = {at for line in event_lines for at, _ in line if a.start < at <= window_end}
        moments = [a.start, *sorted(changed)]
        if all(place_free(event, *counts_at(event_lines, m)) for m in moments):
            out.append(a)
    return out


def wrong_nothing_saved(attempts: Iterable[Attempt], changes: Iterable[Change]) -> list[Attempt]:
    """A 5xx that says nothing was saved, while that very request (its X-Request-ID)
    committed a change."""
    committed = {c.request_id for c in changes if c.request_id}
    return [a for a in attempts if a.status is not None and a.status >= 500
            and NOTHING_SAVED.search(a.message or "") and a.request_id in committed]


def resolved_unknowns(attempts: Iterable[Attempt], changes: Iterable[Change]) -> Counter:
    """Attempts of unknown outcome, by what SQL says they did: committed or not."""
    committed = {c.request_id for c in changes if c.request_id}
    return Counter("committed" if a.request_id in committed else "not committed"
                   for a in attempts if a.outcome == INFO)


def unavailable_seconds(attempts: Iterable[Attempt]) -> int:
    """Whole seconds in which some attempt ended with no answer or a 5xx: seconds in
    which someone could not get through (answers from the gate alone, such as "full",
    may still have come in the same second)."""
    return len({int(a.end) for a in attempts if not a.answered})


# --- SQL and Redis ------------------------------------------------------------------------

def oversold(events: Iterable[EventInfo], rows: Iterable[Row]) -> int:
    """Seats confirmed beyond capacity, over all events."""
    confirmed = Counter(r.event_id for r in rows if r.status == "confirmed")
    return sum(max(0, confirmed[e.id] - e.capacity) for e in events)


def duplicates(rows: Iterable[Row]) -> int:
    """People with more than one live row at one event."""
    live = Counter((r.event_id, r.user_id) for r in rows if r.status in LIVE)
    return sum(1 for n in live.values() if n > 1)


def drift(event: EventInfo, rows: Iterable[Row], view: RedisView | None) -> int:
    """How far the gate's keys are from SQL: people counted wrongly, holds left alive,
    a wrong capacity. An event Redis does not have is rebuilt before use: no drift."""
    if view is None:
        return 0
    mine = [r for r in rows if r.event_id == event.id]
    confirmed = {r.user_id for r in mine if r.status == "confirmed"}
    waitlisted = {r.user_id for r in mine if r.status == "waitlisted"}
    return (len(confirmed ^ view.confirmed) + len(waitlisted ^ view.waitlisted)
            + view.live_holds + (view.capacity != event.capacity))


# --- emails -------------------------------------------------------------------------------

@dataclass
class EmailCheck:
    expected: int = 0
    lost: int = 0
    doubled: int = 0
    smtp_window: int = 0
    drain_s: float | None = 0.0  # last first arrival after the outage's end; None: not all


# Faults that hold emails back; a web process killed does not (its emails are in the
# outbox, committed, whoever answers the person).
MAIL_FAULTS = frozenset({"smtp_down", "redis_restart", "redis_flush", "pg_stop", "worker"})


def emails(changes: Iterable[Change], mails: Iterable[Mail], received: Iterable[Received],
           outage_end: float, later_ends: Iterable[float] = ()) -> EmailCheck:
    """Each change that announces an email needs one outbox row, received once.

    drain_s: how long after the end of the last outage that held it back each email
    arrived, at most: the trial's own outage, or a later one of MAIL_FAULTS
    (`later_ends`) that ended before it arrived (the SPEC's 5 minutes count from
    the end of the outage, and an email an SMTP outage held back after a Redis
    restart counts from the end of the SMTP outage).

    lost: a change without its outbox row, or a row the sink never received.
    doubled: more rows received for a change than it announced (two different
    Message-IDs). smtp_window: the same Message-ID received again (the documented
    window: accepted by SMTP, the worker died before marking it sent).
    """
    check = EmailCheck()
    announced = Counter((c.event_id, c.user_id, EMAIL_FOR[c.outcome])
                        for c in changes if c.outcome in EMAIL_FOR)
    check.expected = sum(announced.values())
    rows_of: dict[tuple[int, int, str], list[Mail]] = defaultdict(list)
    for m in mails:
        rows_of[(m.event_id, m.user_id, m.kind)].append(m)
    arrivals: dict[int, list[float]] = defaultdict(list)
    for r in received:
        if r.outbox_id is not None:
            arrivals[r.outbox_id].append(r.at)
    ends = sorted(e for e in later_ends if e >= outage_end)
    slowest = 0.0
    for key in set(announced) | set(rows_of):
        rows = rows_of.get(key, [])
        got = [m for m in rows if arrivals.get(m.id)]
        check.lost += max(0, announced[key] - len(got))
        check.doubled += max(0, len(got) - announced[key])
        for m in got:
            times = sorted(arrivals[m.id])
            check.smtp_window += len(times) - 1
            held_until = max([outage_end, *(e for e in ends if e <= times[0])])
            slowest = max(slowest, times[0] - held_until)
    check.drain_s = None if check.lost else round(slowest, 1)
    return check


# --- one trial ----------------------------------------------------------------------------

@dataclass
class TrialResult:
    trial: int
    kind: str
    requests: int = 0
    acknowledged: int = 0
    unknown: int = 0
    unknown_committed: int = 0  # of those, attempts whose request id SQL shows committed
    lost: int = 0
    oversold: int = 0
    duplicates: int = 0
    false_already: int = 0
    false_full: int = 0
    wrong_nothing_saved: int = 0
    drift: int | None = None  # None: not measured yet
    emails_lost: int = 0
    emails_doubled: int = 0
    smtp_window: int = 0
    unavailable_s: int = 0
    drain_s: float | None = None
    worker_exits_unplanned: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)

    FAILING = ("lost", "oversold", "duplicates", "false_already", "false_full",
               "wrong_nothing_saved", "drift", "emails_lost", "emails_doubled")

    @property
    def invariants_held(self) -> bool:
        return not any(getattr(self, name) for name in self.FAILING)

    @property
    def recovered(self) -> bool:
        """The invariants held and the emails drained within the SPEC's 5 minutes,
        without anyone's hand (the worker restarted as systemd would is not a hand)."""
        return (self.invariants_held and self.drain_s is not None
                and self.drain_s <= DELIVERY_LIMIT_S)


@dataclass(frozen=True)
class Evidence:
    """Everything the checker needs about one trial's events."""

    attempts: list[Attempt]
    events: dict[int, EventInfo]
    rows: list[Row]
    changes: list[Change]


def check_answers(trial: int, kind: str, ev: Evidence, *, hold_window: float,
                  grace: float) -> TrialResult:
    """What can be checked as soon as the trial is over: answers against SQL."""
    lines = timelines(ev.changes)
    result = TrialResult(trial, kind)
    result.requests = len(ev.attempts)
    result.acknowledged = acknowledged(ev.attempts)
    result.unknown = unknown(ev.attempts)
    result.unknown_committed = resolved_unknowns(ev.attempts, ev.changes)["committed"]
    found = {
        "lost": lost(ev.attempts, ev.rows),
        "false_already": [a.request_id for a in false_already(ev.attempts, lines, grace)],
        "false_full": [a.request_id for a in false_full(ev.attempts, ev.events, lines,
                                                        hold_window)],
        "wrong_nothing_saved": [a.request_id
                                for a in wrong_nothing_saved(ev.attempts, ev.changes)],
    }
    for name, items in found.items():
        setattr(result, name, len(items))
        if items:
            result.examples[name] = items[:5]
    result.oversold = oversold(ev.events.values(), ev.rows)
    result.duplicates = duplicates(ev.rows)
    result.unavailable_s = unavailable_seconds(ev.attempts)
    return result
