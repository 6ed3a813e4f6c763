"""Which passwords are acceptable: long enough and hard to guess, with the reason when not.

Strength is zxcvbn's estimate (Dropbox's, kept by the Python port): it knows
repeats, sequences, keyboard patterns, dates, common passwords and words, and
the person's own email and name passed as `user_inputs`. There are no
composition rules (ASVS 2.1.9). zxcvbn reads at most 72 characters; a longer
password is judged by its first 72, which only makes the estimate stricter.
"""

from __future__ import annotations

import re

from flask import current_app, has_app_context
from zxcvbn import zxcvbn

from webapp.errors import Invalid

PASSWORD_MIN, PASSWORD_MAX = 12, 128
ESTIMATED_CHARACTERS = 72
# zxcvbn's scores: 0 too guessable, 1 very, 2 somewhat (~1e8 guesses), 3 safely
# unguessable (~1e10), 4 very unguessable. 3 holds against an offline attack on a
# leaked scrypt hash for a while, not only against our sign-in throttle.
DEFAULT_MIN_SCORE = 3


class WeakPassword(Invalid):
    code = "invalid_password"


def _min_score() -> int:
    if has_app_context():
        return int(current_app.config["PASSWORD_MIN_SCORE"])
    return DEFAULT_MIN_SCORE


def _own_words(email: str | None, name: str | None) -> list[str]:
    """The person's own words: the address, its parts, and the name and its parts."""
    words: list[str] = []
    for value in (email, name):
        if value:
            words.append(value.lower())
            words.extend(part for part in re.split(r"[\W_]+", value.lower()) if len(part) >= 3)
    return words


def check_password(password: str, *, email: str | None = None, name: str | None = None) -> str:
    """The password, if long enough and hard enough to guess.

    :raise Invalid: wrong length (code invalid_password).
    :raise WeakPassword: too easy to guess; the message says why and what helps.
    """
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise Invalid(f"Password: {PASSWORD_MIN} to {PASSWORD_MAX} characters.",
                      code="invalid_password")
    estimate = zxcvbn(password[:ESTIMATED_CHARACTERS], user_inputs=_own_words(email, name),
                      max_length=ESTIMATED_CHARACTERS)
    if estimate["score"] >= _min_score():
        return password
    feedback = estimate["feedback"]
    if any(match.get("dictionary_name") == "user_inputs" for match in estimate["sequence"]):
        reason = "It contains your email address or name"
    else:
        reason = feedback.get("warning") or "It would be easy to guess"
    advice = " ".join(feedback.get("suggestions") or [])
    if not advice:
        advice = "A few uncommon words together are strong and easy to remember."
    raise WeakPassword(f"Password: too easy to guess. {reason.rstrip('.')}. {advice}".strip())
