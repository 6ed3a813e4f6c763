"""The rush of `make bench`, small: 100 people on 10 seats through Locust against a live gunicorn.

The same scenario code (loadtests/rush.py: real sign-in, CSRF from the page,
one barrier releasing every htmx click) and the same SQL invariant checks
(loadtests/invariants.py) as the benchmark, so the benchmark's harness is
itself tested. No timing assertions: timing is the benchmark's business.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from loadtests import invariants, people
from loadtests.common import DEFAULT_PASSWORD, ENV_PREFIX
from tests.support.processes import ROOT
from tests.support.state import settle_activity

PEOPLE, SEATS = 100, 10
LOCUST_TIMEOUT = 120


def run_rush(url: str, event_id: int, out) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update({"PYTHONPATH": str(ROOT), f"{ENV_PREFIX}EVENT_ID": str(event_id),
                f"{ENV_PREFIX}PEOPLE": str(PEOPLE), f"{ENV_PREFIX}FIRST_USER": "1",
                f"{ENV_PREFIX}PASSWORD": DEFAULT_PASSWORD, f"{ENV_PREFIX}OUT": str(out),
                f"{ENV_PREFIX}READY_SECONDS": "90"})
    return subprocess.run(
        [sys.executable, "-m", "locust", "-f", "loadtests/rush.py", "--headless",
         "-u", str(PEOPLE), "-r", str(PEOPLE), "-t", "100s", "--host", url, "--only-summary",
         "--loglevel", "WARNING", "--stop-timeout", "5", "HtmxRushUser"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=LOCUST_TIMEOUT)


def test_rush_of_100_people_on_10_seats(app, live_server, tmp_path, backend):
    from webapp.extensions import db
    from webapp.registrations.reconcile import reconcile_upcoming

    with app.app_context():
        people.create_people(db.engine, 1, PEOPLE)
        organizer = people.create_organizer(db.engine)
        event_id = people.create_event(db.engine, organizer, "Smoke rush", SEATS)
    mark = live_server.log_mark()
    out = tmp_path / "rush.json"

    proc = run_rush(live_server.url, event_id, out)

    assert out.exists(), f"Locust wrote no answers:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    result = json.loads(out.read_text())
    print(f"\n[{backend}] rush smoke: {result['tally']}")
    assert result["tally"] == {"confirmed": SEATS, "full": PEOPLE - SEATS}, result["tally"]
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]  # 0 Locust failures
    with app.app_context():
        settle_activity()  # rejections the server has not batched into SQL yet
        with db.engine.connect() as conn:
            checks = invariants.rush_checks(conn, event_id, SEATS, result["answers"], PEOPLE)
        failed = [str(c) for c in checks if not c.ok]
        assert not failed, "\n".join(failed)
        drift = [d for d in reconcile_upcoming() if d.event_id == event_id]
    assert drift and not drift[0].drifted, drift  # Redis agrees with SQL
    problems = live_server.problems_since(mark)
    assert not problems, "gunicorn logged trouble:\n" + "\n".join(problems[:20])


@pytest.mark.parametrize("outcome", ["confirmed", "full", "wrong"])
def test_the_rush_judges_answers_by_content(outcome):
    """A 200 is not enough: only HX-Location to the confirmation page or the full panel pass."""
    from loadtests.common import classify_htmx_register

    answers = {
        "confirmed": (200, {"HX-Location": '{"path": "/events/7/confirmation", '
                                           '"target": "#main"}'}, ""),
        "full": (200, {}, '<section id="registration-panel"><strong>This event is full'),
        "wrong": (200, {}, "<html>Sign in</html>"),
    }
    assert classify_htmx_register(*answers[outcome], event_id=7) == outcome
    assert classify_htmx_register(200, {"HX-Location": "/events/8/confirmation"}, "",
                                  event_id=7) == "wrong"
    assert classify_htmx_register(500, {}, "This event is full", event_id=7) == "wrong"
