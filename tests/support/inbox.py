"""Reading caught emails: their links and tokens, the To: header as an RFC 2047 reader
(a mail client) sees it, and account emails written or sent for a person."""

from __future__ import annotations

import email.header
import re
from email.message import EmailMessage
from email.utils import getaddresses

from sqlalchemy import select

LINK = re.compile(r"https?://[^\s<>\"']+")


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def html_of(message: EmailMessage) -> str:
    return message.get_body(("html",)).get_content()


def link(message: EmailMessage, path: str) -> str:
    """The one link in the plain text whose path starts with `path` (e.g. /password/reset/)."""
    found = {url for url in LINK.findall(text_of(message)) if path in url}
    assert len(found) == 1, (path, found, text_of(message))
    return found.pop()


def token(message: EmailMessage, path: str) -> str:
    """The last part of that link: the token."""
    return link(message, path).rsplit("/", 1)[1]


def raw_header(message: EmailMessage, name: str) -> str:
    """A header exactly as sent (folding removed), before any decoding."""
    [raw] = [value for key, value in message.raw_items() if key.lower() == name.lower()]
    return re.sub(r"\r?\n(?=[ \t])", "", str(raw))


def recipients_as_read(message: EmailMessage) -> list[tuple[str, str]]:
    """(display name, address) of each recipient in the raw To: header, each name decoded
    as RFC 2047 says (as a mail client reads it: the space between two encoded words is
    not part of the name)."""
    return [(str(email.header.make_header(email.header.decode_header(name))), address)
            for name, address in getaddresses([raw_header(message, "To")])]


def outbox_rows(kind: str | None = None, user_id: int | None = None) -> list:
    """The outbox rows (of a kind, for a person), oldest first, read fresh."""
    from webapp.extensions import db
    from webapp.mail.models import OutboxMessage

    db.session.rollback()
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind is not None:
        query = query.where(OutboxMessage.kind == kind)
    if user_id is not None:
        query = query.where(OutboxMessage.user_id == user_id)
    return list(db.session.scalars(query))


CSRF_VALUE = re.compile(r'("X-CSRFToken": "|name="csrf_token"[^>]*value=")[^"]+')


def without_csrf(page: str) -> str:
    """A page with its CSRF tokens blanked: they are signed with the time, so two renders
    of the same page differ in them alone."""
    return CSRF_VALUE.sub(r"\1TOKEN", page)
