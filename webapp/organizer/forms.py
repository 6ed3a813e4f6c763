"""The event form: reads what the browser sends into plain values; the event schema validates.

Parsing happens here (text to datetime, a wall-clock time plus a time zone to
an aware datetime, digits to an integer); the rules (lengths, ranges, start
before end) live once, in webapp.events.schemas, shared with the JSON API.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.widgets import DateTimeLocalInput, NumberInput

DEFAULT_ZONE = "UTC"
INPUT_FORMAT = "%Y-%m-%dT%H:%M"
# What browsers send for datetime-local (with or without seconds), and what people type
# when there is no date picker.
ACCEPTED_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")
WHOLE_NUMBER = re.compile(r"\s*[+-]?\d{1,9}\s*")
# Form field name -> schema field name: they are the same, kept explicit for the error mapping.
SCHEMA_FIELDS = ("title", "description", "starts_at", "ends_at", "location", "capacity",
                 "waitlist_enabled", "waitlist_capacity")


@cache
def zone_names() -> frozenset[str]:
    """Every IANA zone name the system knows (read from tzdata once)."""
    return frozenset(available_timezones())


@cache
def zone_choices() -> list[tuple[str, str]]:
    """The zones for the select, UTC first."""
    names = sorted(zone_names() - {DEFAULT_ZONE})
    return [(DEFAULT_ZONE, DEFAULT_ZONE), *((name, name.replace("_", " ")) for name in names)]


class LocalDateTimeField(StringField):
    """A datetime-local input. `data` is a naive datetime or None; the typed text is kept."""

    widget = DateTimeLocalInput()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.raw: str | None = None

    def process_formdata(self, valuelist: list[str]) -> None:
        self.raw = (valuelist[0] if valuelist else "").strip()
        self.data = None
        if not self.raw:
            return
        for fmt in ACCEPTED_FORMATS:
            try:
                self.data = datetime.strptime(self.raw, fmt)  # naive: the zone comes next
                return
            except ValueError:
                continue
        raise ValueError("Enter a date and time, e.g. 2026-12-01 18:00.")

    def _value(self) -> str:
        if self.raw is not None:
            return self.raw
        return self.data.strftime(INPUT_FORMAT) if self.data else ""


class NumberTextField(StringField):
    """A number input whose text goes to the schema as an int when it is one, else as typed."""

    widget = NumberInput()

    def value(self) -> int | str | None:
        text = (self.data or "").strip()
        if not text:
            return None
        return int(text) if WHOLE_NUMBER.fullmatch(text) else text


class EventForm(FlaskForm):
    title = StringField("Title", render_kw={"maxlength": 200})
    description = TextAreaField("Description", render_kw={"rows": 5})
    starts_at = LocalDateTimeField("Starts")
    ends_at = LocalDateTimeField("Ends")
    timezone = SelectField("Time zone", default=DEFAULT_ZONE, validate_choice=False,
                           description="The start and end are wall-clock times in this zone.")
    location = StringField("Location", render_kw={"maxlength": 200})
    capacity = NumberTextField("Capacity", render_kw={"min": 1, "step": 1},
                               description="Seats available (1 to 100,000).")
    waitlist_enabled = BooleanField("Waitlist when full")
    waitlist_capacity = NumberTextField(
        "Waitlist capacity", render_kw={"min": 0, "step": 1},
        description="How many people may wait; leave empty for no limit.")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.timezone.choices = zone_choices()

    def parsed(self) -> dict:
        """The submitted values as the schema takes them; parse errors go on their fields.

        Only fields that parsed are included, so the schema never reports
        "required" over a clearer parse message.
        """
        self.validate()  # CSRF and the parsers' own errors; nothing else is checked here
        self.unchecked: set[str] = set()  # left out because something else is wrong first
        zone = self._zone()
        values: dict = {
            "title": (self.title.data or "").strip(),
            "description": (self.description.data or "").strip(),
            "location": (self.location.data or "").strip(),
            "waitlist_enabled": bool(self.waitlist_enabled.data),
            "capacity": self.capacity.value(),
            "waitlist_capacity": self.waitlist_capacity.value(),
        }
        for field in (self.starts_at, self.ends_at):
            if field.errors:
                continue
            if field.data is None:
                values[field.name] = None
            elif zone is None:
                self.unchecked.add(field.name)
            else:
                try:
                    values[field.name] = aware(field.data, zone)
                except ValueError as exc:
                    field.errors = [str(exc)]
        return values

    def _zone(self) -> ZoneInfo | None:
        name = self.timezone.data or DEFAULT_ZONE
        if name not in zone_names():
            self.timezone.errors = ["Choose a time zone from the list."]
            return None
        return ZoneInfo(name)

    def add_errors(self, messages: dict[str, list[str]]) -> None:
        """Put the schema's messages under their fields; the rest above the form."""
        for name, texts in messages.items():
            field = self._fields.get(name) if name in SCHEMA_FIELDS else None
            if field is None:
                self.form_errors.extend(texts)
            elif not field.errors and name not in getattr(self, "unchecked", ()):
                # (a parse error, or the time zone's, already says what is wrong)
                field.errors = list(texts)

    @property
    def has_errors(self) -> bool:
        return bool(self.form_errors) or any(f.errors for f in self)

    def fill_from(self, event, zone: str = DEFAULT_ZONE) -> None:
        """Show an event's values, its times in `zone`."""
        tz = ZoneInfo(zone)
        self.title.data = event.title
        self.description.data = event.description
        self.location.data = event.location
        self.starts_at.data = event.starts_at.astimezone(tz).replace(tzinfo=None)
        self.ends_at.data = event.ends_at.astimezone(tz).replace(tzinfo=None)
        self.timezone.data = zone
        self.capacity.data = str(event.capacity)
        self.waitlist_enabled.data = event.waitlist_enabled
        self.waitlist_capacity.data = (
            "" if event.waitlist_capacity is None else str(event.waitlist_capacity))


def aware(naive: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time in `zone` as an aware datetime in that zone.

    The event schema converts it to UTC and refuses what the calendar cannot hold
    (year 9999, or year 1 east of Greenwich), with the same message as the API.

    :raise ValueError: the time does not exist there (skipped when clocks go forward).
    An ambiguous time (clocks go back) means its first occurrence.
    """
    local = naive.replace(tzinfo=zone)
    try:
        there_and_back = local.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    except OverflowError:
        return local  # no UTC equivalent: the schema says so on the field
    if there_and_back != naive:
        raise ValueError(f"{naive.strftime('%Y-%m-%d %H:%M')} does not exist in {zone.key} "
                         "(the clocks change then). Choose another time.")
    return local
