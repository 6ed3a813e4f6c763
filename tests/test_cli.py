"""The `flask` commands an operator runs: users create, seed, seats reconcile; and the
worker's upkeep round."""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from tests.support.seat_keys import forget
from webapp.registrations import services
from webapp.registrations.gate import EventKeys, get_gate


def test_users_create_makes_an_organizer_and_refuses_a_taken_email(app):
    runner = app.test_cli_runner()
    made = runner.invoke(args=["users", "create", "olga@example.com", "--name", "Olga",
                               "--password", "a-long-enough-pass", "--organizer"])
    assert made.exit_code == 0, made.output
    assert made.output.startswith("Created organizer olga@example.com (id ")
    again = runner.invoke(args=["users", "create", "OLGA@example.com", "--name", "Olga",
                                "--password", "a-long-enough-pass"])
    assert again.exit_code == 1
    assert "Error:" in again.output and "already" in again.output.lower()


def test_seed_is_safe_to_run_twice(app):
    from webapp.events.models import Event
    from webapp.extensions import db

    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed"])
    assert first.exit_code == 0, first.output
    assert "created organizer@turnout.test" in first.output
    assert "created 6 events" in first.output
    assert "organizer@turnout.test  (organizer)" in first.output
    second = runner.invoke(args=["seed"])
    assert second.exit_code == 0 and "created" not in second.output
    with app.app_context():
        assert db.session.scalar(select(func.count(Event.id))) == 6


def test_seats_reconcile_rebuilds_a_lost_event_and_repairs_drift(app, make_event, make_user,
                                                                  redis_client):
    lost, drifted = make_event(capacity=3), make_event(capacity=4)
    with app.app_context():
        services.register(lost.id, make_user().id)
        services.register(drifted.id, make_user().id)
        forget(get_gate(), lost.id)
    redis_client.sadd(EventKeys.for_event(drifted.id).confirmed, 999_999)  # a ghost seat
    result = app.test_cli_runner().invoke(args=["seats", "reconcile"])
    assert result.exit_code == 0, result.output
    assert f"event {lost.id}: sql capacity 3 confirmed 1 -> rebuilt (was missing)" \
        in result.output
    assert f"event {drifted.id}: sql capacity 4 confirmed 1 -> REPAIRED" in result.output
    assert "1 repaired, 1 rebuilt (were missing)." in result.output
    calm = app.test_cli_runner().invoke(args=["seats", "reconcile"])
    assert f"event {drifted.id}: sql capacity 4 confirmed 1 -> ok" in calm.output


class Recorded(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_an_upkeep_round_runs_every_task_and_survives_a_failing_one(app):
    from workers import maintenance

    ran, recorded = [], Recorded()

    def broken() -> None:
        ran.append("broken")
        raise RuntimeError("the database went away")

    logging.getLogger("turnout.maintenance").addHandler(recorded)
    try:
        maintenance.run_once(app, broken)
        assert ran == ["broken"] and recorded.messages == ["upkeep task failed"]
        maintenance.run_once(app)  # reconcile, sweep, drain: nothing to do, nothing raised
        assert recorded.messages == ["upkeep task failed"]
    finally:
        logging.getLogger("turnout.maintenance").removeHandler(recorded)
