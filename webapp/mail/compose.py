"""Turn an outbox row into an email: subject, plain text, HTML and the calendar part.

An account email (no event) is composed here too, at send time: its link is
signed now (webapp/auth/links.py), so no link is ever stored in the outbox.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import current_app, render_template
from flask_mail import Message

from webapp.auth import links
from webapp.mail import calendar
from webapp.mail.addresses import to_header
from webapp.mail.models import ACCOUNT_MAIL, MailKind, OutboxMessage
from webapp.sqltypes import utcnow

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")

SUBJECTS = {
    MailKind.CONFIRMATION: "You are registered: {title}",
    MailKind.WAITLISTED: "You are on the waitlist (number {position}): {title}",
    MailKind.PROMOTED: "A seat opened up, you are registered: {title}",
    MailKind.CANCELLATION: "Registration cancelled: {title}",
    MailKind.PASSWORD_RESET: "Reset your Turnout password",
    MailKind.VERIFY_EMAIL: "Confirm your email address for Turnout",
    MailKind.ACCOUNT_EXISTS: "You already have a Turnout account",
}


class PersonalMessage(Message):
    """Flask-Mail's message with a To: header that names each person exactly
    (webapp/mail/addresses.py), however many commas, quotes or accents their name has."""

    def _message(self):
        msg = super()._message()
        # Our header is folded already: written as it is, never folded again.
        msg.policy = msg.policy.clone(refold_source="none")
        del msg["To"]
        msg.set_raw("To", ", ".join(to_header(name, address)
                                     for name, address in self.recipients))
        return msg

    @property
    def send_to(self) -> set[str]:
        """The envelope's recipients: bare addresses, so that no name reaches RCPT TO."""
        return {address for _name, address in self.recipients}


def one_line(text: str) -> str:
    """Control characters (CR, LF, ...) become spaces: a name or title cannot add a header."""
    return " ".join(_CONTROL.sub(" ", text or "").split())


def compose(row: OutboxMessage) -> Message:
    if row.kind in ACCOUNT_MAIL:
        return _compose_account(row)
    event, person = row.event, row.user
    public = _public_url()
    event_url = f"{public}/events/{event.id}"
    context = {
        "kind": row.kind, "event": event, "person": person, "position": row.position,
        "event_url": event_url, "my_events_url": f"{public}/me/events",
        "date": f"{event.starts_at:%A} {event.starts_at.day} {event.starts_at:%B %Y}",
        "time": f"{event.starts_at:%H:%M}\u2013{event.ends_at:%H:%M} UTC",  # an en dash
        "left_waitlist": row.kind == MailKind.CANCELLATION and row.position is not None,
    }
    subject = SUBJECTS[row.kind].format(title=one_line(event.title), position=row.position)
    message = _message(row, subject, context)
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


def _message(row: OutboxMessage, subject: str, context: dict) -> Message:
    person = row.user
    message = PersonalMessage(
        subject=subject,
        recipients=[(one_line(person.name), person.email)],
        body=render_template(f"mail/{row.kind}.txt", **context),
        html=render_template(f"mail/{row.kind}.html", **context),
    )
    # One Message-ID per outbox row: a resend after a crash is recognisably the same message.
    message.msgId = f"<outbox.{row.id}@{_domain(_public_url())}>"
    return message


def _compose_account(row: OutboxMessage) -> Message:
    """A password reset, an address to verify, or "you already have an account"."""
    person = row.user
    public = _public_url()
    context = {"kind": row.kind, "person": person, "login_url": f"{public}/login",
               "forgot_url": f"{public}/password/forgot", "link": None, "valid_for": None}
    if row.kind == MailKind.PASSWORD_RESET:
        token = links.reset_token(person.id, person.session_version)
        context.update(link=f"{public}/password/reset/{token}",
                       valid_for=_duration(links.reset_max_age()))
    elif row.kind == MailKind.VERIFY_EMAIL:
        token = links.verify_token(person.id, person.email)
        context.update(link=f"{public}/verify/{token}",
                       valid_for=_duration(links.verify_max_age()))
    return _message(row, SUBJECTS[row.kind], context)


def _duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        days = seconds // 86400
        return f"{days} day{'' if days == 1 else 's'}"
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'' if hours == 1 else 's'}"
    minutes = max(1, seconds // 60)
    return f"{minutes} minute{'' if minutes == 1 else 's'}"


def _public_url() -> str:
    return current_app.config["PUBLIC_URL"].rstrip("/")


def _calendar_method(row: OutboxMessage) -> str | None:
    if row.kind in (MailKind.CONFIRMATION, MailKind.PROMOTED):
        return "REQUEST"
    if row.kind == MailKind.CANCELLATION and row.position is None:  # a seat, not a waitlist place
        return "CANCEL"
    return None


def _domain(public_url: str) -> str:
    return urlsplit(public_url).hostname or "turnout.local"
