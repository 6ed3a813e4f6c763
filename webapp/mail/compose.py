"""Turn an outbox row into an email: subject, plain text, HTML and the calendar part."""

from __future__ import annotations

import re
from email.utils import formataddr
from urllib.parse import urlsplit

from flask import current_app, render_template
from flask_mail import Message

from webapp.mail import calendar
from webapp.mail.models import MailKind, OutboxMessage
from webapp.sqltypes import utcnow

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")

SUBJECTS = {
    MailKind.CONFIRMATION: "You are registered: {title}",
    MailKind.WAITLISTED: "You are on the waitlist (number {position}): {title}",
    MailKind.PROMOTED: "A seat opened up, you are registered: {title}",
    MailKind.CANCELLATION: "Registration cancelled: {title}",
}


def one_line(text: str) -> str:
    """Control characters (CR, LF, ...) become spaces: a name or title cannot add a header."""
    return " ".join(_CONTROL.sub(" ", text or "").split())


def compose(row: OutboxMessage) -> Message:
    event, person = row.event, row.user
    public = current_app.config["PUBLIC_URL"].rstrip("/")
    event_url = f"{public}/events/{event.id}"
    context = {
        "kind": row.kind, "event": event, "person": person, "position": row.position,
        "event_url": event_url, "my_events_url": f"{public}/me/events",
        "date": f"{event.starts_at:%A} {event.starts_at.day} {event.starts_at:%B %Y}",
        "time": f"{event.starts_at:%H:%M}\u2013{event.ends_at:%H:%M} UTC",  # an en dash
        "left_waitlist": row.kind == MailKind.CANCELLATION and row.position is not None,
    }
    subject = SUBJECTS[row.kind].format(title=one_line(event.title), position=row.position)
    message = Message(
        subject=subject,
        recipients=[formataddr((one_line(person.name), person.email))],
        body=render_template(f"mail/{row.kind}.txt", **context),
        html=render_template(f"mail/{row.kind}.html", **context),
    )
    # One Message-ID per outbox row: a resend after a crash is recognisably the same message.
    message.msgId = f"<outbox.{row.id}@{_domain(public)}>"
    method = _calendar_method(row)
    if method:
        ics = calendar.invitation(
            uid=f"registration-{row.registration_id}@{_domain(public)}",
            sequence=row.id, method=method, title=one_line(event.title),
            description=f"{event.description}\n\n{event_url}".strip(),
            location=one_line(event.location), starts_at=event.starts_at,
            ends_at=event.ends_at, url=event_url,
            organizer_name=one_line(event.organizer.name),
            organizer_email=event.organizer.email,
            attendee_name=one_line(person.name), attendee_email=person.email,
            stamp=utcnow(),
        )
        message.attach(
            filename="cancel.ics" if method == "CANCEL" else "invite.ics",
            # MIMEBase gets ("text", "calendar; method=...") and writes the header as is.
            content_type=f"text/calendar; method={method}; charset=UTF-8",
            data=ics,
        )
    return message


def _calendar_method(row: OutboxMessage) -> str | None:
    if row.kind in (MailKind.CONFIRMATION, MailKind.PROMOTED):
        return "REQUEST"
    if row.kind == MailKind.CANCELLATION and row.position is None:  # a seat, not a waitlist place
        return "CANCEL"
    return None


def _domain(public_url: str) -> str:
    return urlsplit(public_url).hostname or "turnout.local"
