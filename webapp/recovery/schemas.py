"""What the API accepts to ask for and use a password reset link."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from webapp.auth.passwords import PASSWORD_MAX
from webapp.auth.schemas import EMAIL_MAX, PASSWORD_RULE


class ForgotIn(BaseModel):
    """An address to send a reset link to. Any string is taken: the answer is the same."""

    model_config = ConfigDict(extra="forbid", title="PasswordForgotIn")

    email: Annotated[str, StringConstraints(min_length=1, max_length=EMAIL_MAX)]


class ResetIn(BaseModel):
    """The token of a reset link and the new password (judged by the same rules as at
    sign-up; a refusal says why)."""

    model_config = ConfigDict(extra="forbid", title="PasswordResetIn")

    token: Annotated[str, StringConstraints(min_length=1, max_length=1000)] = Field(
        description="The last part of the emailed link /password/reset/<token>.")
    password: Annotated[str, StringConstraints(min_length=1, max_length=PASSWORD_MAX)] = Field(
        description=PASSWORD_RULE)
