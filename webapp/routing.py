"""URL converters shared by every blueprint."""

from __future__ import annotations

from werkzeug.routing import BaseConverter

MAX_ID = 2**31 - 1  # the largest id the databases' integer columns hold


class IdConverter(BaseConverter):
    """A database id, 1 to 2**31 - 1, matched by the pattern itself.

    werkzeug's int(max=...) refuses a too-large value only after matching the path,
    so PATCH /api/events/99999999999 would be a 405 (the GET rule matched); here
    anything else simply matches no rule: 404, whatever the method. Every
    blueprint uses it for ids (`<id:event_id>`), pages and API alike.
    """

    regex = (r"(?:[1-9]\d{0,8}|1\d{9}|20\d{8}|21[0-3]\d{7}|214[0-6]\d{6}|2147[0-3]\d{5}"
             r"|21474[0-7]\d{4}|214748[0-2]\d{3}|2147483[0-5]\d{2}|21474836[0-3]\d"
             r"|214748364[0-7])")
    part_isolating = True

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(int(value))
