"""Signed links made by hand with the app's real key: older than allowed, or for a
payload the app would never make, to see them refused."""

from __future__ import annotations

import time

from itsdangerous import TimestampSigner, URLSafeTimedSerializer


def signed(app, salt: str, payload, *, age_seconds: int = 0) -> str:
    """`payload` signed with the app's SECRET_KEY and `salt`, as if made age_seconds ago."""

    class Earlier(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age_seconds

    return URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=salt,
                                  signer=Earlier).dumps(payload)
