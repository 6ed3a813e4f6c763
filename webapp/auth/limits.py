"""Sign-in rate limits, shared by every sign-in door (the page and POST /api/auth/login)."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app

from webapp.extensions import limiter

# Shared scopes: the page and the API count against the same limits.
LOGIN_IP_SCOPE, LOGIN_ACCOUNT_SCOPE = "login-ip", "login-account"


def login_account_key(email: object) -> str:
    """One counter per account for every sign-in door."""
    return "login:" + (email.strip().lower() if isinstance(email, str) else "")


def login_limits(account_key: Callable[[], str], **options) -> Callable:
    """Decorate a sign-in view with both limits: per client address and per account
    (`account_key` reads the email the request names)."""
    by_ip = limiter.shared_limit(lambda: current_app.config["RATELIMIT_LOGIN_IP"],
                                 LOGIN_IP_SCOPE, **options)
    by_account = limiter.shared_limit(lambda: current_app.config["RATELIMIT_LOGIN_ACCOUNT"],
                                      LOGIN_ACCOUNT_SCOPE, key_func=account_key, **options)
    return lambda view: by_ip(by_account(view))
