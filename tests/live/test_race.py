"""Races over real HTTP against a real gunicorn: no oversell, no double booking, as SQL sees it.

Every person signs in through the real /login form with a requests.Session of
their own, takes the X-CSRFToken from the page's hx-headers like htmx does,
and then all clicks are released at once by a barrier.
"""

from __future__ import annotations

import json
import statistics

import pytest

from tests.support.live import CONTROL_APP
from tests.support.races import Answer, release_at_once
from tests.support.signin import click_register, same_person_tabs, sign_in, sign_in_all
from tests.support.state import settle_activity

pytestmark = pytest.mark.slow

RACE_BUDGET_SECONDS = 20
FULL = "This event is full"
ALREADY = "You are already registered"


# --- the race -------------------------------------------------------------------------

def tally(answers: list[Answer], event_id: int) -> dict:
    confirmation = f"/events/{event_id}/confirmation"
    seconds = [a.seconds for a in answers]
    return {
        "confirmed": sum(a.hx_location == confirmation for a in answers),
        "full": sum(FULL in a.text for a in answers),
        "already": sum(ALREADY in a.text for a in answers),
        "5xx": sum(a.status is not None and a.status >= 500 for a in answers),
        "errors": [a.error for a in answers if a.error],
        "statuses": sorted({a.status for a in answers}, key=str),
        "wall_s": round(max(a.finished for a in answers) - min(a.started for a in answers), 3),
        "median_s": round(statistics.median(seconds), 3),
        "max_s": round(max(seconds), 3),
    }


def report(label: str, backend: str, result: dict, sql: dict) -> None:
    print(f"\n[{backend}] {label}: {json.dumps(result)} sql={json.dumps(sql, default=str)}")


def rejections_by_detail(app, event_id: int) -> dict[str, int]:
    """Who turned the losers away: "gate" / "registered" / "pending" (Redis) or "sql"."""
    from sqlalchemy import text

    from webapp.database import read_session

    with app.app_context():
        settle_activity()
    with app.app_context(), read_session() as s:
        return dict(s.execute(text(
            "SELECT coalesce(detail, ''), count(*) FROM activity_log WHERE event_id = :e"
            " AND outcome IN ('rejected_full', 'rejected_duplicate') GROUP BY detail"),
            {"e": event_id}).all())


def assert_guarded_by(server, app, event_id: int, *, one_person: bool = False) -> None:
    """The server's mode really was what the test says: the gate, or SQL alone. With the
    gate, one person's clicks that overlap their own attempt in flight go to SQL (the
    other attempt may be dead: SQL knows whether the person has a place)."""
    details = rejections_by_detail(app, event_id)
    if server.mode == "gate" and one_person:  # (the other tests of the server show its mode)
        assert set(details) <= {"registered", "sql"}, details
    elif server.mode == "gate":
        assert "sql" not in details, details
    else:
        assert set(details) == {"sql"}, details


def assert_clean_log(server, mark: int) -> None:
    problems = server.problems_since(mark)
    assert not problems, "gunicorn logged trouble:\n" + "\n".join(problems[:20])


# --- tests ----------------------------------------------------------------------------

# Module-scoped so that pytest runs all tests of one mode together: one server each.
modes = pytest.mark.parametrize("mode", ["gate", "sql-guard-alone"], scope="module")


@pytest.fixture
def guarded_server(mode, live_server_factory):
    """The production server, and one with the Redis gate off (as if Redis were down)
    so that the conditional UPDATE and the unique constraint face the race alone."""
    server = live_server_factory() if mode == "gate" else live_server_factory(
        SEAT_GATE_ENABLED="0")
    server.mode = mode
    return server


@modes
def test_fifty_people_race_for_five_seats(app, guarded_server, make_user, make_event, counts,
                                         backend):
    live_server = guarded_server
    event = make_event(capacity=5)
    people = sign_in_all(live_server.url, [make_user().email for _ in range(50)], event.id)
    mark = live_server.log_mark()

    answers = release_at_once([click_register(p, live_server.url, event.id) for p in people])

    result, sql = tally(answers, event.id), counts(event.id)
    report(f"50 people, 5 seats ({live_server.mode})", backend, result, sql)
    assert result["errors"] == []
    assert result["5xx"] == 0, [a.text[:300] for a in answers if a.status and a.status >= 500]
    assert result["confirmed"] == 5
    assert result["full"] == 45
    assert all(a.status == 200 for a in answers), result["statuses"]
    # The losers get the panel fragment, not a page.
    assert not any("<html" in a.text for a in answers if FULL in a.text)
    assert sql["confirmed"] == 5
    assert sql["confirmed_count"] == 5
    assert sql["waitlisted"] == 0
    assert sql["activity"].get("confirmed") == 5
    assert sql["activity"].get("rejected_full") == 45
    assert_guarded_by(live_server, app, event.id)
    assert result["wall_s"] < RACE_BUDGET_SECONDS
    assert_clean_log(live_server, mark)


@modes
def test_same_person_clicking_twenty_times_gets_one_seat(app, guarded_server, make_user,
                                                         make_event, counts, backend):
    live_server = guarded_server
    event = make_event(capacity=5)
    person = sign_in(live_server.url, make_user().email, event.id)
    tabs = same_person_tabs(person, live_server.url, event.id, 20)
    mark = live_server.log_mark()

    answers = release_at_once([click_register(t, live_server.url, event.id) for t in tabs])

    result, sql = tally(answers, event.id), counts(event.id)
    report(f"1 person, 20 clicks ({live_server.mode})", backend, result, sql)
    assert result["errors"] == []
    assert result["5xx"] == 0, [a.text[:300] for a in answers if a.status and a.status >= 500]
    assert result["confirmed"] == 1
    assert result["already"] == 19
    assert all(a.status == 200 for a in answers), result["statuses"]
    assert sql["confirmed"] == 1
    assert sql["confirmed_count"] == 1
    assert sql["waitlisted"] == sql["cancelled"] == 0
    assert sql["activity"].get("confirmed") == 1
    assert sql["activity"].get("rejected_duplicate") == 19
    assert_guarded_by(live_server, app, event.id, one_person=True)
    assert result["wall_s"] < RACE_BUDGET_SECONDS
    assert_clean_log(live_server, mark)


def test_control_run_without_guards_oversells(app, live_server_factory, make_user, make_event,
                                              counts, backend):
    """The same race with the guards switched off must oversell, or the race test is blind."""
    unsafe = live_server_factory(app=CONTROL_APP)  # the naive check-then-write, 50 ms window
    event = make_event(capacity=5)
    people = sign_in_all(unsafe.url, [make_user().email for _ in range(50)], event.id)

    answers = release_at_once([click_register(p, unsafe.url, event.id) for p in people])

    result, sql = tally(answers, event.id), counts(event.id)
    report("control run, guards off", backend, result, sql)
    assert result["errors"] == []
    assert sql["confirmed"] > 5, "the unguarded server did not oversell: the race is not racing"
    assert result["confirmed"] == sql["confirmed"]
    assert result["wall_s"] < RACE_BUDGET_SECONDS
