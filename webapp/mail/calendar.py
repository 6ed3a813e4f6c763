"""The .ics invitation (RFC 5545 / iTIP) that puts a registration in a calendar, or takes it out."""

from __future__ import annotations

from datetime import datetime

from icalendar import Calendar, Event, vCalAddress, vText

PRODID = "-//Turnout//Event registration//EN"


def invitation(*, uid: str, sequence: int, method: str, title: str, description: str,
               location: str, starts_at: datetime, ends_at: datetime, url: str,
               organizer_name: str, organizer_email: str, attendee_name: str,
               attendee_email: str, stamp: datetime) -> bytes:
    """A METHOD:REQUEST (add or update) or METHOD:CANCEL calendar object.

    The UID is per registration, and SEQUENCE grows with every message about
    it, so a CANCEL removes exactly the entry the earlier REQUEST created.
    """
    if method not in ("REQUEST", "CANCEL"):
        raise ValueError(f"unknown iTIP method {method!r}")
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)

    entry = Event()
    entry.add("uid", uid)
    entry.add("sequence", sequence)
    entry.add("dtstamp", stamp)
    entry.add("dtstart", starts_at)
    entry.add("dtend", ends_at)
    entry.add("summary", title)
    entry.add("location", location)
    entry.add("description", description)
    entry.add("url", url)
    entry.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    organizer = vCalAddress(f"mailto:{organizer_email}")
    organizer.params["cn"] = vText(organizer_name)
    entry.add("organizer", organizer)
    attendee = vCalAddress(f"mailto:{attendee_email}")
    attendee.params["cn"] = vText(attendee_name)
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    attendee.params["partstat"] = vText("ACCEPTED")
    attendee.params["rsvp"] = vText("FALSE")
    entry.add("attendee", attendee)
    cal.add_component(entry)
    return cal.to_ical()
