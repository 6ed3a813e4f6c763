"""How often a signed-in person may have their current password checked (change, delete).

A stolen session must not become a way to guess the password: the page and the API
share one counter per account, RATELIMIT_LOGIN_ACCOUNT as for signing in.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app
from flask_login import current_user

from webapp.extensions import limiter

PASSWORD_CHECK_SCOPE = "password-check"  # noqa: S105 - a counter's name


def _account_key() -> str:
    return f"password-check:{current_user.id}"


def password_check_limit(**options) -> Callable:
    """Decorate a view that checks the signed-in person's password. Anonymous requests
    are not counted: they are refused (401 or a redirect) without a check."""
    return limiter.shared_limit(lambda: current_app.config["RATELIMIT_LOGIN_ACCOUNT"],
                                PASSWORD_CHECK_SCOPE, key_func=_account_key,
                                exempt_when=lambda: not current_user.is_authenticated,
                                **options)
