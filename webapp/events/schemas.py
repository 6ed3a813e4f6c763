"""What an organizer may send to create or edit an event: one pydantic schema for API and forms.

The API validates JSON with `strict=True` (no "5" for 5, no "true" for true); forms
validate Python values (ints, bools, aware datetimes) with the same models and rules.
Turn a ValidationError into an Invalid with `webapp.validation.validation_error_to_invalid`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from webapp.events.models import MAX_CAPACITY
from webapp.sqltypes import utcnow
from webapp.validation import MULTI_LINE, SINGLE_LINE, InputDatetime

TITLE_MAX = 200
DESCRIPTION_MAX = 5000
LOCATION_MAX = 200

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                         max_length=TITLE_MAX), SINGLE_LINE]
Description = Annotated[str, StringConstraints(strip_whitespace=True,
                                               max_length=DESCRIPTION_MAX), MULTI_LINE]
Location = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                            max_length=LOCATION_MAX), SINGLE_LINE]
Capacity = Annotated[int, Field(ge=1, le=MAX_CAPACITY)]
WaitlistCapacity = Annotated[int, Field(ge=0, le=MAX_CAPACITY)]


def _ends_after_start(ends_at, info: ValidationInfo):
    starts_at = info.data.get("starts_at")
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise ValueError("must be after starts_at")
    return ends_at


class EventCreate(BaseModel):
    """A new event. Date-times need an offset; the start must be in the future."""

    model_config = ConfigDict(extra="forbid", title="EventCreate")

    title: Title
    description: Description = ""
    starts_at: InputDatetime
    ends_at: InputDatetime
    location: Location
    capacity: Capacity
    waitlist_enabled: bool = False
    waitlist_capacity: WaitlistCapacity | None = Field(
        default=None, description="Most people on the waitlist; null means no limit.")

    @field_validator("starts_at")
    @classmethod
    def _in_future(cls, value):
        if value <= utcnow():
            raise ValueError("must be in the future")
        return value

    _ends = field_validator("ends_at")(_ends_after_start)


def _not_nullable(schema: dict[str, Any]) -> None:
    # Omitted means "unchanged"; null is refused, so the document shows no null default.
    schema.pop("default", None)


def _optional(**kwargs: Any) -> Any:
    return Field(default=None, json_schema_extra=_not_nullable, **kwargs)


class EventUpdate(BaseModel):
    """A partial edit: only the fields sent change. null is refused except waitlist_capacity."""

    model_config = ConfigDict(extra="forbid", title="EventUpdate")

    title: Title = _optional()
    description: Description = _optional()
    starts_at: InputDatetime = _optional()
    ends_at: InputDatetime = _optional()
    location: Location = _optional()
    capacity: Capacity = _optional(
        description="Cannot go below the number of people already confirmed.")
    waitlist_enabled: bool = _optional()
    waitlist_capacity: WaitlistCapacity | None = Field(
        default=None, description="Most people on the waitlist; null means no limit.")

    _ends = field_validator("ends_at")(_ends_after_start)

    def changes(self) -> dict[str, Any]:
        """The fields that were sent, with their validated values."""
        return {name: getattr(self, name) for name in self.model_fields_set}
