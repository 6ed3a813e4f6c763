"""Throttles of the account doors: per client address (429) and per email address (silent).

Sign-up and "forgot password" count per client address, the page and the API
against one shared limit each. Emails about an account count per address and
kind: past RATELIMIT_ACCOUNT_MAIL no more are sent, and the person asking is
not told, so the answer never reveals whether an address has an account.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import current_app
from limits import parse

from webapp.extensions import limiter

log = logging.getLogger("turnout.recovery")

SIGNUP_SCOPE, FORGOT_SCOPE = "signup", "password-forgot"


def signup_limit(**options) -> Callable:
    """RATELIMIT_SIGNUP per client address, shared by the sign-up page and the API."""
    return limiter.shared_limit(lambda: current_app.config["RATELIMIT_SIGNUP"], SIGNUP_SCOPE,
                                **options)


def forgot_limit(**options) -> Callable:
    """RATELIMIT_PASSWORD_FORGOT per client address, shared by the page and the API."""
    return limiter.shared_limit(lambda: current_app.config["RATELIMIT_PASSWORD_FORGOT"],
                                FORGOT_SCOPE, **options)


def allow_account_mail(kind: str, address: str) -> bool:
    """Whether one more email of this kind may go to this address now; counts it if so.

    Each kind has its own budget: three sign-ups tried with someone's address must
    not stop their own password reset. Redis down: allowed (as every limit here).
    """
    config = current_app.config
    if not config.get("RATELIMIT_ENABLED", True):
        return True
    try:
        return limiter.limiter.hit(parse(config["RATELIMIT_ACCOUNT_MAIL"]),
                                   "account-mail", str(kind), address)
    except Exception as exc:
        log.warning("account mail limit unavailable; allowed", extra={"error": str(exc)})
        return True
