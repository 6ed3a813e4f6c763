"""Reading the security audit trail in tests: what a test did, without the sign-ins it took."""

from __future__ import annotations

# Every signed-in test client writes these; tests about other changes leave them out.
SIGN_IN_KINDS = frozenset({"sign_in", "sign_in_failed", "sign_in_throttled", "sign_out"})


def changes(events) -> list:
    """The events (rows or dicts with a kind) that are not sign-ins or sign-outs, in order."""
    return [e for e in events
            if (e["kind"] if isinstance(e, dict) else e.kind) not in SIGN_IN_KINDS]
