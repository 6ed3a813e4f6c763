"""Command-line tools: `flask --app wsgi seed | users create | seats reconcile`."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from webapp.errors import ServiceError

users_cli = AppGroup("users", help="Manage accounts.")
seats_cli = AppGroup("seats", help="The Redis seat gate.")

DEMO_PASSWORD = "turnout-demo-2026"  # noqa: S105 - public demo accounts, printed by make run
DEMO_ACCOUNTS = [
    ("organizer@turnout.test", "Olivia Organizer", True),
    ("alice@turnout.test", "Alice Attendee", False),
    ("bob@turnout.test", "Bob Attendee", False),
    ("carol@turnout.test", "Carol Attendee", False),
]


@users_cli.command("create")
@click.argument("email")
@click.option("--name", required=True, help="Shown on events and emails (1-100 characters).")
@click.option("--password", required=True, help="12 to 128 characters.")
@click.option("--organizer", is_flag=True, help="May create and manage events.")
def create_user_command(email: str, name: str, password: str, organizer: bool) -> None:
    """Create an account."""
    from webapp.auth.services import create_user

    try:
        user = create_user(email, name, password, is_organizer=organizer)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    role = "organizer" if user.is_organizer else "attendee"
    click.echo(f"Created {role} {user.email} (id {user.id}).")


@click.command("security-log")
@click.option("--email", help="Only events about this address (its account, or attempts).")
@click.option("--kind", help="Only this kind, e.g. sign_in_failed.")
@click.option("--limit", default=100, show_default=True, help="The most recent N events.")
@with_appcontext
def security_log_command(email: str | None, kind: str | None, limit: int) -> None:
    """The security audit trail (operators only: it holds addresses and client IPs)."""
    from webapp.auth.audit import recent

    for event in reversed(recent(email=email, kind=kind, limit=limit)):
        click.echo("\t".join(str(value or "-") for value in (
            event.occurred_at.isoformat(timespec="seconds"), event.kind, event.user_id,
            event.email, event.ip, event.request_id, event.detail)))


def _set_organizer(email: str, organizer: bool) -> None:
    from webapp.auth.services import set_organizer

    try:
        user = set_organizer(email, organizer)
    except ServiceError as exc:
        raise click.ClickException(exc.message) from exc
    role = "an organizer" if organizer else "an attendee"
    click.echo(f"{user.email} (id {user.id}) is {role}; their sessions and tokens were ended.")


@users_cli.command("grant-organizer")
@click.argument("email")
def grant_organizer_command(email: str) -> None:
    """Let an account create and manage events."""
    _set_organizer(email, True)


@users_cli.command("revoke-organizer")
@click.argument("email")
def revoke_organizer_command(email: str) -> None:
    """Take the organizer role away: at once, on every page and API call."""
    _set_organizer(email, False)


@seats_cli.command("reconcile")
def reconcile_command() -> None:
    """Rebuild Redis seat counters from SQL for every upcoming event; report drift."""
    from webapp.registrations.gate import GateBusy, GateUnavailable
    from webapp.registrations.reconcile import reconcile_upcoming

    busy = None
    try:
        report = reconcile_upcoming()
    except GateBusy as exc:
        report, busy = exc.report, str(exc)
    except GateUnavailable as exc:
        raise click.ClickException(f"Redis did not answer: {exc}") from exc
    for drift in report:
        if not drift.existed:
            state = "rebuilt (was missing)"
        elif drift.drifted:
            state = (f"REPAIRED: redis capacity {drift.redis_capacity} confirmed "
                     f"{drift.redis_confirmed} (missing {drift.missing}, extra {drift.extra})")
        else:
            state = "ok"
        click.echo(f"event {drift.event_id}: sql capacity {drift.sql_capacity} confirmed "
                   f"{drift.sql_confirmed} -> {state}")
    rebuilt = sum(1 for d in report if not d.existed)
    repaired = sum(1 for d in report if d.existed and d.drifted)
    click.echo(f"{len(report)} upcoming event(s) checked: {repaired} repaired, "
               f"{rebuilt} rebuilt (were missing).")
    if busy:
        raise click.ClickException(f"{busy}; run it again when the rush is over.")


def seed_demo_data(password: str = DEMO_PASSWORD) -> list[str]:
    """Demo accounts and a realistic spread of upcoming events; safe to run twice."""
    from webapp.auth.models import User
    from webapp.auth.services import create_user
    from webapp.database import write_session
    from webapp.events.models import Event
    from webapp.extensions import db

    lines = []
    users = {}
    for email, name, organizer in DEMO_ACCOUNTS:
        user = db.session.scalar(select(User).where(User.email == email))
        if user is None:
            user = create_user(email, name, password, is_organizer=organizer)
            lines.append(f"created {email}")
        users[email] = user
    if db.session.scalar(select(Event.id).limit(1)) is not None:
        return lines
    organizer = users["organizer@turnout.test"]
    day = datetime.now(UTC).replace(hour=18, minute=0, second=0, microsecond=0)
    events = [
        ("Python Meetup: Async in Practice", 3, 2, "Hall B, Tech Hub, 12 Market Street", 60,
         "Talks on asyncio in production, a live-coding session and pizza.\n\n"
         "Bring a laptop if you want to follow along."),
        ("Intro to Data Visualisation Workshop", 6, 3, "Room 4, Central Library", 20,
         "A hands-on afternoon with matplotlib and Vega-Lite. Beginners welcome."),
        ("Community Garden Volunteer Day", 9, 5, "Riverside Community Garden", 3,
         "Planting, mulching and a shared lunch. Gloves provided."),
        ("Founders' Breakfast", 12, 2, "The Glasshouse Café", 12,
         "An informal breakfast for early-stage founders. Two-minute intros."),
        ("City Half Marathon Info Night", 20, 2, "Town Hall Auditorium", 250,
         "Route, pacing groups, bag drop and Q&A with last year's winners."),
        ("Jazz on the Roof", 30, 3, "Rooftop Terrace, Harbour Hotel", 80,
         "A summer evening quartet. Seats are limited; dress warm."),
    ]
    with write_session() as session:
        for offset, title_days_hours in enumerate(events):
            title, days, hours, location, capacity, description = title_days_hours
            starts = day + timedelta(days=days, minutes=30 * offset)
            # Small events keep a waitlist, so the demo shows "Join waitlist" quickly.
            small = capacity <= 3
            session.add(Event(title=title, description=description, starts_at=starts,
                              ends_at=starts + timedelta(hours=hours), location=location,
                              capacity=capacity, organizer_id=organizer.id,
                              waitlist_enabled=small, waitlist_capacity=5 if small else None))
    lines.append(f"created {len(events)} events")
    return lines


def register_commands(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(seats_cli)
    app.cli.add_command(security_log_command)

    @app.cli.command("seed")
    def seed_command() -> None:
        """Load demo accounts and events (idempotent).

        The README's demo password is public: a production database (TURNOUT_ENV=production)
        gets a random one instead, shown here once.
        """
        if app.config.get("TURNOUT_ENV") == "production":
            password, note = secrets.token_urlsafe(15), ", shown once: production"
        else:
            password, note = DEMO_PASSWORD, ""
        for line in seed_demo_data(password):
            click.echo(line)
        click.echo(f"Demo accounts (password {password}{note}):")
        for email, _name, organizer in DEMO_ACCOUNTS:
            click.echo(f"  {email}{'  (organizer)' if organizer else ''}")
