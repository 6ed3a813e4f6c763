"""What the API accepts to sign up and sign in; the rules are auth.services' own checks."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from webapp.auth.services import (
    NAME_MAX,
    PASSWORD_MAX,
    PASSWORD_MIN,
    check_name,
    check_password,
    normalize_email,
)
from webapp.errors import Invalid
from webapp.validation import SINGLE_LINE

EMAIL_MAX = 254
PASSWORD_RULE = (f"{PASSWORD_MIN} to {PASSWORD_MAX} characters, hard to guess: no repeats, "
                 "sequences, common passwords or your own email or name.")

Email = Annotated[str, StringConstraints(min_length=3, max_length=EMAIL_MAX),
                  Field(json_schema_extra={"format": "email"})]
Password = Annotated[str, StringConstraints(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]


def _service_rule(check, value: str) -> str:
    """Run an auth.services check; its message, minus the "Email: " prefix, becomes the error."""
    try:
        return check(value)
    except Invalid as exc:
        raise ValueError(exc.message.split(": ", 1)[-1]) from exc


class SignupIn(BaseModel):
    """A new attendee account (organizers are made with `flask users create --organizer`)."""

    model_config = ConfigDict(extra="forbid", title="SignupIn")

    email: Email
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                           max_length=NAME_MAX), SINGLE_LINE]
    password: Password = Field(description=PASSWORD_RULE)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return _service_rule(normalize_email, value)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _service_rule(check_name, value)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str, info: ValidationInfo) -> str:
        # Judged with the person's own email and name (validated before it), which it
        # must not lean on.
        return _service_rule(lambda password: check_password(
            password, email=info.data.get("email"), name=info.data.get("name")), value)


class LoginIn(BaseModel):
    """Credentials. Only the sizes are checked here: a wrong value is a 401, not a 400."""

    model_config = ConfigDict(extra="forbid", title="LoginIn")

    email: Annotated[str, StringConstraints(min_length=1, max_length=EMAIL_MAX)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=PASSWORD_MAX)]
