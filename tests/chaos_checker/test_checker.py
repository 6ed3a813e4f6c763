"""The chaos checker on synthetic histories and SQL: each failure it must see, and the
look-alikes it must not count (loadtests/chaos/checker.py). No servers."""

from __future__ import annotations

from itertools import count

import pytest

from loadtests.chaos import checker, table
from loadtests.chaos.checker import (
    Change,
    EventInfo,
    Evidence,
    Mail,
    Received,
    RedisView,
    Row,
    TrialResult,
)
from loadtests.chaos.history import CANCEL, FAIL, INFO, OK, REGISTER, Attempt, judge

_ids = count(1)
EVENT, PERSON = 7, 42


def attempt(op: str = REGISTER, *, start: float = 100.0, end: float | None = None,
            status: int | None = 201, code: str | None = "confirmed", op_id: str | None = None,
            n: int = 1, user: int = PERSON, event: int = EVENT, reg_id: int | None = None,
            message: str | None = None, request_id: str | None = None) -> Attempt:
    body: dict = {}
    if status is not None and 200 <= status < 300 and op == REGISTER:
        body = {"status": code, "id": reg_id}
    elif status is not None and status >= 300:
        body = {"error": {"code": code, "message": message}}
    outcome, code_, message_, reg = judge(op, status, body)
    return Attempt(trial=1, client=user, user_id=user, event_id=event, op=op,
                   op_id=op_id or f"op{next(_ids)}", key="k", attempt=n,
                   request_id=request_id or f"rid-{next(_ids):06d}", start=start,
                   end=start + 0.1 if end is None else end, status=status, code=code_,
                   message=message_, registration_id=reg, outcome=outcome)


# --- judging one answer ---------------------------------------------------------------------

@pytest.mark.parametrize(("op", "status", "body", "expected"), [
    (REGISTER, 201, {"status": "confirmed", "id": 3}, (OK, "confirmed", None, 3)),
    (REGISTER, 201, {"status": "waitlisted", "id": 4, "position": 1},
     (OK, "waitlisted", None, 4)),
    (CANCEL, 204, None, (OK, "cancelled", None, None)),
    (REGISTER, 409, {"error": {"code": "event_full", "message": "full"}},
     (FAIL, "event_full", "full", None)),
    (REGISTER, 503, {"error": {"code": "busy", "message": "try again"}},
     (INFO, "busy", "try again", None)),
    (REGISTER, 500, "<html>", (INFO, None, None, None)),
    (REGISTER, None, None, (INFO, None, None, None)),
])
def test_judge(op, status, body, expected):
    assert judge(op, status, body) == expected


# --- lost ------------------------------------------------------------------------------------

def test_an_acknowledged_seat_with_its_row_is_not_lost():
    a = attempt(reg_id=5)
    assert checker.lost([a], [Row(5, EVENT, PERSON, "confirmed")]) == []


def test_an_acknowledged_seat_without_a_row_is_lost():
    a = attempt(reg_id=5)
    assert checker.lost([a], []) == [a.op_id]


def test_an_acknowledged_seat_whose_row_is_cancelled_is_lost():
    a = attempt(reg_id=5)
    assert checker.lost([a], [Row(5, EVENT, PERSON, "cancelled")]) == [a.op_id]


def test_an_acknowledged_seat_with_another_row_id_is_lost():
    a = attempt(reg_id=5)
    assert checker.lost([a], [Row(6, EVENT, PERSON, "confirmed")]) == [a.op_id]


def test_a_waitlist_place_may_have_been_promoted():
    a = attempt(code="waitlisted", reg_id=5)
    assert checker.lost([a], [Row(5, EVENT, PERSON, "confirmed")]) == []


def test_a_confirmed_answer_for_a_row_that_is_only_waitlisted_is_lost():
    a = attempt(code="confirmed", reg_id=5)
    assert checker.lost([a], [Row(5, EVENT, PERSON, "waitlisted")]) == [a.op_id]


def test_a_later_cancel_of_unknown_outcome_may_explain_a_missing_seat():
    seat = attempt(reg_id=5, start=100)
    cancel = attempt(CANCEL, status=None, code=None, start=105)
    assert checker.lost([seat, cancel], [Row(5, EVENT, PERSON, "cancelled")]) == []


def test_a_later_cancel_refused_does_not_explain_a_missing_seat():
    seat = attempt(reg_id=5, start=100)
    cancel = attempt(CANCEL, status=404, code="not_registered", start=105)
    assert checker.lost([seat, cancel], [Row(5, EVENT, PERSON, "cancelled")]) == [seat.op_id]


def test_a_later_register_whose_unanswered_attempt_committed_is_not_a_lost_cancel():
    # seen in a campaign: the first attempt committed, the retry was told
    # already_registered; the acknowledged cancel before it is not lost
    seat = attempt(reg_id=5, start=100)
    cancel = attempt(CANCEL, status=204, code=None, start=101)
    first = attempt(status=None, code=None, op_id="op-again", n=1, start=102)
    retry = attempt(status=409, code="already_registered", op_id="op-again", n=2, start=103)
    rows = [Row(5, EVENT, PERSON, "confirmed")]
    assert checker.lost([seat, cancel, first, retry], rows) == []


def test_an_acknowledged_cancel_whose_row_is_still_live_is_lost():
    seat = attempt(reg_id=5, start=100)
    cancel = attempt(CANCEL, status=204, code=None, start=105)
    assert checker.lost([seat, cancel], [Row(5, EVENT, PERSON, "confirmed")]) == [cancel.op_id]


def test_retries_of_one_operation_count_once_by_their_last_answer():
    first = attempt(status=None, code=None, op_id="op-r", n=1, start=100)
    second = attempt(op_id="op-r", n=2, start=101, reg_id=5)
    assert checker.lost([second, first], []) == ["op-r"]
    assert checker.lost([first, second], [Row(5, EVENT, PERSON, "confirmed")]) == []


# --- false answers ---------------------------------------------------------------------------

def test_already_registered_without_any_live_place_is_false():
    a = attempt(status=409, code="already_registered", start=100)
    lines = checker.timelines([])
    assert checker.false_already([a], lines, grace=2) == [a]


def test_already_registered_with_a_place_from_before_is_true():
    a = attempt(status=409, code="already_registered", start=100)
    lines = checker.timelines([Change(EVENT, PERSON, "confirmed", 50)])
    assert checker.false_already([a], lines, grace=2) == []


def test_already_registered_while_their_own_commit_lands_is_true():
    a = attempt(status=409, code="already_registered", start=100, end=100.5)
    lines = checker.timelines([Change(EVENT, PERSON, "confirmed", 101.5)])
    assert checker.false_already([a], lines, grace=2) == []


def test_already_registered_after_a_cancel_is_false():
    a = attempt(status=409, code="already_registered", start=100)
    lines = checker.timelines([Change(EVENT, PERSON, "confirmed", 50),
                               Change(EVENT, PERSON, "cancelled", 60)])
    assert checker.false_already([a], lines, grace=2) == [a]


def _full_at(start: float, event: int = EVENT) -> Attempt:
    return attempt(status=409, code="event_full", start=start, end=start + 0.1, user=99,
                   event=event)


def test_full_while_a_seat_stays_free_is_false():
    events = {EVENT: EventInfo(EVENT, 2)}
    lines = checker.timelines([Change(EVENT, 1, "confirmed", 50)])
    a = _full_at(100)
    assert checker.false_full([a], events, lines, hold_window=5) == [a]


def test_full_when_the_last_seat_commits_within_the_hold_window_is_true():
    events = {EVENT: EventInfo(EVENT, 2)}
    lines = checker.timelines([Change(EVENT, 1, "confirmed", 50),
                               Change(EVENT, 2, "confirmed", 103)])
    assert checker.false_full([_full_at(100)], events, lines, hold_window=5) == []


def test_full_when_the_last_seat_commits_after_the_hold_window_is_false():
    events = {EVENT: EventInfo(EVENT, 2)}
    lines = checker.timelines([Change(EVENT, 1, "confirmed", 50),
                               Change(EVENT, 2, "confirmed", 110)])
    a = _full_at(100)
    assert checker.false_full([a], events, lines, hold_window=5) == [a]


def test_full_while_someone_waits_is_true_without_a_waitlist_place():
    events = {EVENT: EventInfo(EVENT, 2, waitlist_enabled=True, waitlist_capacity=1)}
    lines = checker.timelines([Change(EVENT, 1, "waitlisted", 50)])
    assert checker.false_full([_full_at(100)], events, lines, hold_window=5) == []


def test_full_with_an_unlimited_waitlist_is_false():
    events = {EVENT: EventInfo(EVENT, 1, waitlist_enabled=True)}
    lines = checker.timelines([Change(EVENT, 1, "confirmed", 50),
                               Change(EVENT, 2, "waitlisted", 60)])
    a = _full_at(100)
    assert checker.false_full([a], events, lines, hold_window=5) == [a]


def test_full_on_a_full_event_is_true():
    events = {EVENT: EventInfo(EVENT, 1)}
    lines = checker.timelines([Change(EVENT, 1, "confirmed", 50)])
    assert checker.false_full([_full_at(100)], events, lines, hold_window=5) == []


def test_nothing_saved_is_wrong_when_that_request_committed():
    a = attempt(status=500, code="internal_error", request_id="rid-committed",
                message="Something went wrong on our side. Nothing was saved; please try again.")
    b = attempt(status=500, code="internal_error", request_id="rid-not",
                message="Something went wrong on our side. Nothing was saved; please try again.")
    c = attempt(status=503, code="busy", request_id="rid-also", message="Please try again.")
    changes = [Change(EVENT, PERSON, "confirmed", 100, "rid-committed"),
               Change(EVENT, PERSON, "confirmed", 100, "rid-also")]
    assert checker.wrong_nothing_saved([a, b, c], changes) == [a]
    assert checker.resolved_unknowns([a, b, c], changes) == {"committed": 2, "not committed": 1}


def test_unavailable_seconds_are_those_in_which_someone_got_no_answer_or_a_5xx():
    attempts = [attempt(status=None, code=None, start=100, end=100.5),
                attempt(status=201, start=100.2, end=100.7),
                attempt(status=None, code=None, start=100.9, end=100.95),
                attempt(status=503, code="busy", start=102, end=102.5),
                attempt(status=409, code="event_full", start=103, end=103.5)]
    assert checker.unavailable_seconds(attempts) == 2


# --- SQL and Redis -------------------------------------------------------------------------

def test_oversold_and_duplicates():
    events = [EventInfo(1, 1), EventInfo(2, 2)]
    rows = [Row(1, 1, 1, "confirmed"), Row(2, 1, 2, "confirmed"), Row(3, 2, 1, "confirmed"),
            Row(4, 2, 1, "waitlisted"), Row(5, 2, 2, "cancelled"), Row(6, 2, 2, "confirmed")]
    assert checker.oversold(events, rows) == 1
    assert checker.duplicates(rows) == 1


def test_drift():
    event = EventInfo(EVENT, 3)
    rows = [Row(1, EVENT, 1, "confirmed"), Row(2, EVENT, 2, "waitlisted")]
    same = RedisView(3, frozenset({1}), frozenset({2}), 0)
    assert checker.drift(event, rows, None) == 0
    assert checker.drift(event, rows, same) == 0
    assert checker.drift(event, rows, RedisView(3, frozenset({1, 9}), frozenset({2}), 0)) == 1
    assert checker.drift(event, rows, RedisView(3, frozenset(), frozenset({2}), 1)) == 2
    assert checker.drift(event, rows, RedisView(4, frozenset({1}), frozenset({2}), 0)) == 1


# --- emails ---------------------------------------------------------------------------------

def _mail(id_: int, user: int = PERSON, kind: str = "confirmation") -> Mail:
    return Mail(id_, kind, EVENT, user, "sent", 100.0)


def test_one_email_per_change_received_once_is_fine():
    check = checker.emails([Change(EVENT, PERSON, "confirmed", 100)], [_mail(1)],
                           [Received(1, 130.0)], outage_end=110.0)
    assert (check.expected, check.lost, check.doubled, check.smtp_window) == (1, 0, 0, 0)
    assert check.drain_s == 20.0


def test_an_email_without_its_outbox_row_or_never_received_is_lost():
    changes = [Change(EVENT, 1, "confirmed", 100), Change(EVENT, 2, "confirmed", 100)]
    check = checker.emails(changes, [_mail(1, user=1)], [], outage_end=110.0)
    assert check.lost == 2
    assert check.drain_s is None


def test_the_same_message_id_twice_is_the_smtp_window_not_a_double():
    check = checker.emails([Change(EVENT, PERSON, "confirmed", 100)], [_mail(1)],
                           [Received(1, 101.0), Received(1, 150.0)], outage_end=110.0)
    assert (check.lost, check.doubled, check.smtp_window) == (0, 0, 1)


def test_two_outbox_rows_received_for_one_change_is_a_double():
    check = checker.emails([Change(EVENT, PERSON, "confirmed", 100)], [_mail(1), _mail(2)],
                           [Received(1, 101.0), Received(2, 102.0)], outage_end=90.0)
    assert (check.lost, check.doubled) == (0, 1)


def test_promotions_and_cancellations_need_their_emails_too():
    changes = [Change(EVENT, 1, "waitlisted", 100), Change(EVENT, 1, "promoted", 101),
               Change(EVENT, 2, "confirmed", 99), Change(EVENT, 2, "cancelled", 101)]
    mails = [_mail(1, 1, "waitlisted"), _mail(2, 1, "promoted"), _mail(3, 2, "confirmation")]
    check = checker.emails(changes, mails, [Received(i, 105.0) for i in (1, 2, 3)], 100.0)
    assert (check.expected, check.lost) == (4, 1)


def test_the_drain_counts_from_the_end_of_the_last_outage_that_held_an_email_back():
    """An email of trial A that a later SMTP outage held back: its 5 minutes count from
    that outage's end, not from A's; an outage that ended after it arrived is not it."""
    changes = [Change(EVENT, 1, "confirmed", 100), Change(EVENT, 2, "confirmed", 100)]
    mails = [_mail(1, 1), _mail(2, 2)]
    arrived = [Received(1, 400.0), Received(2, 120.0)]

    alone = checker.emails(changes, mails, arrived, outage_end=110.0)
    held = checker.emails(changes, mails, arrived, 110.0, later_ends=[50.0, 350.0, 900.0])

    assert alone.drain_s == 290.0
    assert held.drain_s == 50.0  # 400 - 350; the mail at 120 came 10 s after 110
    assert checker.emails(changes, mails, [Received(1, 700.0), Received(2, 120.0)], 110.0,
                          later_ends=[350.0]).drain_s == 350.0


# --- a trial and the table -------------------------------------------------------------------

def test_check_answers_counts_everything_and_keeps_examples():
    ev = Evidence(
        attempts=[attempt(reg_id=5, start=100),
                  attempt(status=409, code="already_registered", start=100, user=3),
                  attempt(status=None, code=None, start=100, user=4)],
        events={EVENT: EventInfo(EVENT, 5)},
        rows=[Row(5, EVENT, PERSON, "confirmed")],
        changes=[Change(EVENT, PERSON, "confirmed", 100.05)])
    result = checker.check_answers(1, "web1", ev, hold_window=5, grace=2)
    assert (result.requests, result.acknowledged, result.unknown) == (3, 1, 1)
    assert result.unknown_committed == 0
    assert (result.lost, result.false_already, result.oversold) == (0, 1, 0)
    assert list(result.examples) == ["false_already"]
    assert not result.invariants_held


def test_recovered_needs_the_invariants_and_a_drain_within_five_minutes():
    good = TrialResult(1, "pg_stop", drift=0, drain_s=12.0)
    slow = TrialResult(2, "pg_stop", drift=0, drain_s=301.0)
    never = TrialResult(3, "pg_stop", drift=0, drain_s=None)
    broken = TrialResult(4, "web1", drift=0, drain_s=1.0, oversold=1)
    assert good.recovered and not slow.recovered and not never.recovered
    assert not broken.recovered
    assert table.failed([good]) == []
    reasons = table.failed([good, slow, never, broken])
    assert reasons == ["oversold: trials [4]",
                       "emails not drained within 300 s: trials [2, 3]"]
    row = table.summarize([good, slow, never])
    assert (row["trials"], row["drain_s"], row["recovered"]) == (3, "not all", "1/3")
    assert table.summarize([TrialResult(5, "x")])["drift"] == "?"
    assert "| **total** |" in table.markdown([good, broken], {"pg_stop": "PostgreSQL stopped"})
