"""Shared pieces of the pydantic schemas: safe text, aware date-times, and one clear Invalid."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
)

from webapp.errors import Invalid

# NUL and the other C0/C1 controls have no business in a title or a name (PostgreSQL
# refuses NUL outright); line breaks and tabs are fine in long text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_OR_BREAK = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

DATETIME_EXAMPLE = "2026-12-01T18:00:00+00:00"


class InvalidInput(Invalid):
    """Invalid request values: `fields` says which, each with its own message."""

    def __init__(self, message: str, fields: list[dict[str, str]], *,
                 code: str = "invalid") -> None:
        super().__init__(message, code=code)
        self.fields = fields


def _single_line(value: str) -> str:
    if _CONTROL_OR_BREAK.search(value):
        raise ValueError("must be one line without control characters")
    return value


def _multi_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


# Put after the length constraints: Annotated[str, StringConstraints(...), SINGLE_LINE].
SINGLE_LINE = AfterValidator(_single_line)  # title, name, location
MULTI_LINE = AfterValidator(_multi_line)  # a description: line breaks and tabs allowed


# The last year a date-time may have, as written and in UTC: the calendar ends with 9999,
# and code that adds hours or days to a date (time zones, reminders, calendars) must not overflow.
LAST_YEAR = 9998
TOO_LATE = f"is out of range (the year must be {LAST_YEAR} or earlier)"
TOO_EARLY = "is out of range (before the year 1 in UTC)"


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # year 1 with a positive offset, 9999 with a negative one
        raise ValueError(TOO_EARLY if value.year == 1 else TOO_LATE) from exc


def _to_utc_in_range(value: datetime) -> datetime:
    utc = _to_utc(value)
    if max(value.year, utc.year) > LAST_YEAR:
        raise ValueError(TOO_LATE)
    return utc


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


_AS_ISO = PlainSerializer(_iso, return_type=str, when_used="json")
_ISO_SCHEMA = WithJsonSchema({"type": "string", "format": "date-time",
                              "examples": [DATETIME_EXAMPLE]})

# An aware date-time in, UTC out; written as ISO 8601 with "+00:00" (never naive, never "Z").
UTCDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc), _AS_ISO, _ISO_SCHEMA]
# What people may send: the same, and refused past LAST_YEAR (a 400 on the field, never a 500).
InputDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc_in_range), _AS_ISO, _ISO_SCHEMA]


# --- pydantic errors -> one Invalid with a human message ---------------------------

def _label(loc: tuple) -> str:
    names = [str(part) for part in loc if not isinstance(part, int)]
    return ".".join(names) if names else "body"


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind in ("string_too_short", "string_too_long"):
        low, high = ctx.get("min_length"), ctx.get("max_length")
        if kind == "string_too_short" and low == 1:
            return "must not be empty"
        return (f"must be at least {low} characters" if kind == "string_too_short"
                else f"must be at most {high} characters")
    if kind == "string_type":
        return "must be a string"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "must be a whole number"
    if kind == "greater_than_equal":
        return f"must be {ctx['ge']:,} or more"
    if kind == "less_than_equal":
        return f"must be {ctx['le']:,} or less"
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false"
    if kind == "timezone_aware":
        return f"needs a time zone offset, e.g. {DATETIME_EXAMPLE}"
    if kind in ("datetime_type", "datetime_parsing", "datetime_from_date_parsing"):
        return f"must be an ISO 8601 date-time with an offset, e.g. {DATETIME_EXAMPLE}"
    if kind == "model_type" or kind == "dict_type":
        return "must be a JSON object"
    if kind == "value_error":
        return str(ctx.get("error") or error["msg"]).removeprefix("Value error, ")
    return error["msg"][:1].lower() + error["msg"][1:]


def validation_error_to_invalid(exc: ValidationError) -> InvalidInput:
    """One Invalid for a pydantic ValidationError: "title: must not be empty; ..." plus fields.

    Each entry of `fields` is {"field": "capacity", "message": "must be 100,000 or less"};
    forms show them next to their inputs, the API returns them with the error.
    """
    errors = exc.errors(include_url=False, include_input=False)
    if any(e["type"] == "json_invalid" for e in errors):
        detail = next(e for e in errors if e["type"] == "json_invalid")["msg"]
        detail = detail.removeprefix("Invalid JSON: ")
        return InvalidInput(f"The request body is not valid JSON ({detail}).",
                            [{"field": "body", "message": "is not valid JSON"}],
                            code="invalid_json")
    fields: list[dict[str, str]] = []
    seen: set[str] = set()
    for error in errors:
        field = _label(error["loc"])
        if field in seen:  # one message per field: the first is the useful one
            continue
        seen.add(field)
        fields.append({"field": field, "message": _message(error)})
    message = "; ".join(f"{f['field']}: {f['message']}" for f in fields) + "."
    return InvalidInput(message, fields)
