"""Reading and dropping an event's seat-gate keys in Redis, as a test needs to."""

from __future__ import annotations

from webapp.registrations.gate import EventKeys, SeatGate


def held_count(gate: SeatGate, event_id: int) -> int:
    """Seat holds in flight for the event."""
    return int(gate.client.zcard(EventKeys.for_event(event_id).holds))


def forget(gate: SeatGate, event_id: int) -> None:
    """Redis loses the event (a restart, an eviction): the next attempt rebuilds it."""
    keys = EventKeys.for_event(event_id)
    gate.client.delete(keys.seats, keys.confirmed, keys.waitlisted, keys.holds, keys.wholds,
                       keys.tokens)
