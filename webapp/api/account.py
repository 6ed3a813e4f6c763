"""The caller's own account over the API: change password, export my data, delete me.

The same services as the /account page (webapp/accounts/services.py).
"""

from __future__ import annotations

from flask import jsonify

from webapp.accounts import services as accounts
from webapp.accounts.schemas import DataExport, PasswordChangeIn
from webapp.api import bp
from webapp.api.guard import json_body, signed_in
from webapp.api.openapi import operation
from webapp.auth.audit import Origin
from webapp.auth.limits import password_check_limit


@operation(bp, "/users/me/password", "POST", summary="Change the caller's password", ok=204,
           body=PasswordChangeIn,
           errors={400: "`invalid_password`: the new password is the wrong length, too easy "
                        "to guess (the message says why) or the current one again.",
                   401: "`invalid_credentials`: `current_password` is wrong.",
                   429: "`too_many_requests`: too many password checks; wait a minute."})
@password_check_limit()
def change_my_password():
    """Sets a new password. Signs out every session and revokes every API token of the
    caller, the one of this request too: sign in again with the new password."""
    user = signed_in()
    data = json_body(PasswordChangeIn)
    accounts.change_password(user.id, data.current_password, data.new_password,
                             origin=Origin.of_request())
    return "", 204


@operation(bp, "/users/me/export", "GET", summary="Everything kept about the caller", ok=200,
           ok_model=DataExport)
def export_my_data():
    """The account, every registration (cancelled ones too), the activity log about the
    caller, the emails written to them, their security events (sign-ins, changes), the
    events they organize and their recent Idempotency-Keys. A download
    (`Content-Disposition: attachment`), never cached."""
    user = signed_in()
    response = jsonify(accounts.export_data(user.id, origin=Origin.of_request()))
    response.headers["Content-Disposition"] = (
        f'attachment; filename="turnout-data-{user.id}.json"')
    return response


@operation(bp, "/users/me", "DELETE", summary="Delete the caller's account", ok=204,
           errors={409: "`owns_events`: the caller organizes events that have not ended; "
                        "hand them over or delete them first."})
def delete_me():
    """Cancels the caller's registrations for events that have not ended (the next on
    each waitlist is promoted and told, as for any cancellation), then leaves an anonymous
    row in place of the account: no name, no email, no password. Every session and token
    stops working; the address can sign up again. No body."""
    accounts.delete_account(signed_in().id, origin=Origin.of_request())
    return "", 204
