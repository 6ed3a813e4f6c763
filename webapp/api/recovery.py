"""The API of account recovery: ask for a reset link, use it, ask for a verification link.

Like sign-up and sign-in, the first two need no credentials, so no CSRF token
either unless a session cookie comes along (webapp/api/guard.py).
"""

from __future__ import annotations

from flask import jsonify
from pydantic import ConfigDict

from webapp.api import bp
from webapp.api.guard import json_body, signed_in
from webapp.api.openapi import operation
from webapp.api.schemas import Out
from webapp.auth.audit import Origin
from webapp.auth.limits import forgot_limit
from webapp.recovery import services as recovery
from webapp.recovery.schemas import ForgotIn, ResetIn

FORGOT_ANSWER = ("If this address belongs to an account, we sent it a link to choose a new "
                 "password. The link works once, for 1 hour.")
VERIFY_ANSWER = ("Unless your address is confirmed already, we sent it a new link. "
                 "It may take a minute to arrive.")


class AcceptedOut(Out):
    """The request was taken; what happens next happens by email."""

    model_config = ConfigDict(title="Accepted")

    message: str


@operation(bp, "/auth/password/forgot", "POST", summary="Ask for a password reset link",
           ok=202, ok_model=AcceptedOut, body=ForgotIn, auth=False,
           errors={429: "`too_many_requests`: too many requests from this client address; "
                        "wait a while."})
@forgot_limit()
def password_forgot():
    """Emails a reset link to the account of this address, if there is one. The answer is
    the same whether or not there is, even for a malformed address: it never tells."""
    data = json_body(ForgotIn)
    recovery.ask_password_reset(data.email, origin=Origin.of_request())
    return jsonify(AcceptedOut.dump({"message": FORGOT_ANSWER})), 202


@operation(bp, "/auth/password/reset", "POST", summary="Set a new password with a reset link",
           ok=204, body=ResetIn, auth=False,
           errors={400: "`invalid_token`: the link is forged, expired (1 hour) or used; "
                        "`invalid_password`: the password is refused (the message says "
                        "why)."})
def password_reset():
    """Sets the new password. Every session and API token of the person stops working
    (sign in again); the link works once."""
    data = json_body(ResetIn)
    recovery.reset_password(data.token, data.password, origin=Origin.of_request())
    return "", 204


@operation(bp, "/users/me/verification", "POST", summary="Send the verification link again",
           ok=202, ok_model=AcceptedOut)
def resend_verification():
    """With REQUIRE_EMAIL_VERIFICATION, registering waits until the emailed link is opened
    (403 `email_not_verified`); this sends a new link."""
    recovery.send_verification_again(signed_in().id)
    return jsonify(AcceptedOut.dump({"message": VERIFY_ANSWER})), 202
