"""What the account API accepts (a password change) and the shape of a data export."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from webapp.auth.schemas import PASSWORD_RULE, Password
from webapp.auth.services import PASSWORD_MAX
from webapp.validation import UTCDatetime


class PasswordChangeIn(BaseModel):
    """The current password, and a new one (judged with the person's own email and name)."""

    model_config = ConfigDict(extra="forbid", title="PasswordChangeIn")

    # Only its size here: a wrong value is a 401, not a 400.
    current_password: Annotated[str, StringConstraints(min_length=1, max_length=PASSWORD_MAX)]
    new_password: Password = Field(description=PASSWORD_RULE)


# --- the data export: everything kept about a person ------------------------------

class _Part(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")


class ExportAccount(_Part):
    model_config = ConfigDict(title="ExportAccount")

    id: int
    email: str
    name: str
    is_organizer: bool
    created_at: UTCDatetime
    email_verified_at: UTCDatetime | None


class ExportEvent(_Part):
    """The event a registration is for."""

    model_config = ConfigDict(title="ExportEvent")

    id: int
    title: str
    starts_at: UTCDatetime


class ExportRegistration(_Part):
    """A registration in any state, cancelled ones included."""

    model_config = ConfigDict(title="ExportRegistration")

    id: int
    event: ExportEvent
    status: str
    position: int | None
    registered_at: UTCDatetime
    cancelled_at: UTCDatetime | None


class ExportActivity(_Part):
    """One row of the activity log about the person (attempts, cancellations, promotions)."""

    model_config = ConfigDict(title="ExportActivity")

    occurred_at: UTCDatetime
    event_id: int
    action: str
    outcome: str
    request_id: str | None
    detail: str | None


class ExportEmail(_Part):
    """An email written to the person (what and when; the text is made when it is sent)."""

    model_config = ConfigDict(title="ExportEmail")

    id: int
    kind: str
    event_id: int | None
    status: str
    attempts: int
    created_at: UTCDatetime
    sent_at: UTCDatetime | None


class ExportSecurityEvent(_Part):
    """A sign-in, failure, reset, password change, export ... of the account."""

    model_config = ConfigDict(title="ExportSecurityEvent")

    occurred_at: UTCDatetime
    kind: str
    email: str | None
    ip: str | None
    request_id: str | None
    detail: str | None


class ExportOrganizedEvent(_Part):
    """An event the person organizes."""

    model_config = ConfigDict(title="ExportOrganizedEvent")

    id: int
    title: str
    starts_at: UTCDatetime
    ends_at: UTCDatetime
    location: str
    capacity: int
    created_at: UTCDatetime


class ExportRetryKey(_Part):
    """An Idempotency-Key the person sent with a registration (kept a day)."""

    model_config = ConfigDict(title="ExportRetryKey")

    key: str
    event_id: int
    outcome: str
    created_at: UTCDatetime


class DataExport(_Part):
    """Everything Turnout keeps about one person, as of `exported_at`."""

    model_config = ConfigDict(title="DataExport")

    exported_at: UTCDatetime
    account: ExportAccount
    registrations: list[ExportRegistration]
    activity: list[ExportActivity]
    emails: list[ExportEmail]
    security_events: list[ExportSecurityEvent]
    organized_events: list[ExportOrganizedEvent]
    idempotency_keys: list[ExportRetryKey]
