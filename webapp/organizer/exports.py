"""CSV exports of an event's attendee list and waitlist, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from webapp.registrations.models import Registration

# A cell starting with one of these is run as a formula by Excel, LibreOffice and
# Google Sheets (CSV injection); a leading apostrophe makes it plain text.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

ATTENDEE_HEADER = ("Number", "Name", "Email", "Status", "Registered at (UTC)")
WAITLIST_HEADER = ("Position", "Name", "Email", "Status", "Registered at (UTC)")


def safe_cell(value: object) -> str:
    """The value as text that no spreadsheet will evaluate."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def _table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(header)
    writer.writerows([safe_cell(v) for v in row] for row in rows)
    return out.getvalue()


def attendees_csv(confirmed: list[Registration]) -> str:
    """Confirmed people in the order they registered, numbered from 1."""
    return _table(ATTENDEE_HEADER, (
        (n, r.user.name, r.user.email, r.status, r.registered_at.isoformat(timespec="seconds"))
        for n, r in enumerate(confirmed, start=1)
    ))


def waitlist_csv(waitlisted: list[Registration]) -> str:
    """Waitlisted people in queue order, with their position."""
    return _table(WAITLIST_HEADER, (
        (r.position, r.user.name, r.user.email, r.status,
         r.registered_at.isoformat(timespec="seconds"))
        for r in waitlisted
    ))
