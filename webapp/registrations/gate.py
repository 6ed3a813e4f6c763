"""The seat gate: one atomic Redis script admits or rejects a person before SQL is touched.

Redis only decides who may try; SQL decides who gets the seat. Each event's
keys share the hash tag ``{event:<id>}`` so every script works on Redis Cluster.

    reserve  -> seat hold | waitlist hold (TTL) | full | registered | waitlisted
                | pending, unsure (ask SQL) | missing (rebuild from SQL first)
    confirm  -> after the SQL commit: the hold becomes what SQL decided (seat or waitlist)
    release  -> after a failed commit: the hold is given back (idempotent per token)
    vacate   -> after a committed cancellation: the person leaves, promotions move in
    rebuild  -> load capacity, waitlist settings and people from SQL (lazy, or reconcile)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from importlib import resources

import redis
from flask import current_app
from sqlalchemy import select

from webapp.database import read_session
from webapp.errors import NotFound
from webapp.events.models import Event
from webapp.extensions import redis_store
from webapp.registrations import liveness
from webapp.registrations.models import LIVE, Registration, Status

log = logging.getLogger("turnout.gate")

HELD, WAIT_HELD, FULL, MISSING = "held", "wait_held", "full", "missing"
REGISTERED, WAITLISTED_ALREADY, PENDING = "registered", "waitlisted", "pending"
UNSURE = "unsure"  # full only counting an old hold, whose attempt may have died: ask SQL
_MAX_REBUILD_TRIES = 20


class GateUnavailable(Exception):
    """Redis could not be asked; the caller falls back to the SQL guard alone."""


class GateBusy(GateUnavailable):
    """An event kept changing while it was rebuilt; the next attempt may succeed."""


@dataclass(frozen=True)
class EventKeys:
    seats: str
    confirmed: str
    waitlisted: str
    holds: str
    wholds: str
    tokens: str
    version: str

    @classmethod
    def for_event(cls, event_id: int) -> EventKeys:
        tag = f"turnout:{{event:{int(event_id)}}}"
        return cls(*(f"{tag}:{name}" for name in (
            "seats", "confirmed", "waitlisted", "holds", "wholds", "tokens", "version")))

    @property
    def all(self) -> list[str]:
        """The seven keys, in the order every script takes them."""
        return [self.seats, self.confirmed, self.waitlisted, self.holds, self.wholds,
                self.tokens, self.version]


@dataclass(frozen=True)
class Decision:
    status: str
    seats_left: int
    owners: tuple[str, ...] = ()  # for "full": the processes whose holds count

    def dead_holders(self, client) -> bool:
        """Whether a hold that makes this "full" belongs to a process that died."""
        return bool(self.owners) and bool(liveness.dead_owners(client, list(self.owners)))


@dataclass(frozen=True)
class Drift:
    """What a rebuild found: Redis before, SQL now."""

    event_id: int
    existed: bool
    redis_capacity: int
    redis_confirmed: int
    sql_capacity: int
    sql_confirmed: int
    missing: int
    extra: int
    waitlist_drift: int = 0

    @property
    def drifted(self) -> bool:
        return (not self.existed or self.redis_capacity != self.sql_capacity
                or self.missing > 0 or self.extra > 0 or self.waitlist_drift > 0)


@cache
def _source(name: str) -> str:
    return resources.files("webapp.registrations").joinpath("lua", f"{name}.lua").read_text()


class SeatGate:
    """Typed wrappers around the Lua scripts, registered once per Redis client."""

    def __init__(self, client: redis.Redis, hold_ttl_ms: int, hold_trust_ms: int) -> None:
        self.client = client
        self.hold_ttl_ms = hold_ttl_ms
        self.hold_trust_ms = min(hold_trust_ms, hold_ttl_ms)
        # register_script sends EVALSHA and reloads the script on NOSCRIPT
        # (after a Redis restart, failover or SCRIPT FLUSH).
        self._reserve = client.register_script(_source("reserve"))
        self._confirm = client.register_script(_source("confirm"))
        self._release = client.register_script(_source("release"))
        self._vacate = client.register_script(_source("vacate"))
        self._rebuild = client.register_script(_source("rebuild"))

    def reserve(self, event_id: int, user_id: int, token: str) -> Decision:
        """Hold a seat for this attempt, rebuilding the event from SQL if Redis lost it.

        :raise NotFound: the event does not exist.
        :raise GateUnavailable: Redis did not answer.
        """
        k = EventKeys.for_event(event_id)
        for _ in range(_MAX_REBUILD_TRIES):
            status, seats_left, *owners = self._call(
                self._reserve, k.all, [user_id, token, self.hold_ttl_ms, self.hold_trust_ms])
            if status != MISSING:
                return Decision(status, int(seats_left), tuple(owners))
            self.rebuild(event_id, force=False)
        raise GateUnavailable(f"event {event_id} could not be loaded into Redis")

    def token(self) -> str:
        """A new attempt's hold token, naming this process (webapp/registrations/liveness.py)."""
        return liveness.token(self.client)

    def confirm(self, event_id: int, user_id: int, token: str | None,
                status: Status = Status.CONFIRMED) -> bool:
        """Count the person as SQL committed them: 'confirmed' or 'waitlisted'."""
        return bool(self._call(self._confirm, EventKeys.for_event(event_id).all,
                               [user_id, token or "", status]))

    def release(self, event_id: int, user_id: int, token: str) -> bool:
        return bool(self._call(self._release, EventKeys.for_event(event_id).all,
                               [user_id, token]))

    def vacate(self, event_id: int, user_id: int | None,
               promoted: list[int] | tuple[int, ...] = ()) -> bool:
        """Mirror a committed cancellation (user_id leaves) and its promotions.

        Returns whether the leaver was counted in Redis and now is not."""
        return bool(self._call(self._vacate, EventKeys.for_event(event_id).all,
                              ["" if user_id is None else user_id, *promoted]))

    def rebuild(self, event_id: int, *, force: bool) -> Drift | None:
        """Load the event's seats from SQL; with force, replace what Redis has (reconcile).

        Returns the drift found, or None when another process rebuilt it first.
        :raise NotFound: the event does not exist.
        """
        k = EventKeys.for_event(event_id)
        for _ in range(_MAX_REBUILD_TRIES):
            # Read the version before SQL: if a commit lands in between, the
            # script sees the version moved and we read SQL again.
            version = self._call(self.client.get, k.version) or "0"
            snap = _sql_snapshot(event_id)
            result = self._call(self._rebuild, k.all, [
                version, snap.capacity, "1" if force else "0",
                "1" if snap.waitlist_enabled else "0",
                -1 if snap.waitlist_capacity is None else snap.waitlist_capacity,
                len(snap.confirmed), *snap.confirmed, *snap.waitlisted,
            ])
            status, existed, redis_capacity, redis_confirmed, missing, extra, wdrift = result
            if status == "retry":
                continue
            if status == "exists":
                return None
            drift = Drift(event_id, bool(existed), int(redis_capacity), int(redis_confirmed),
                          snap.capacity, len(snap.confirmed), int(missing), int(extra),
                          int(wdrift))
            if drift.drifted and drift.existed:
                log.warning("seat counter drift repaired", extra=vars(drift))
            return drift
        raise GateBusy(f"event {event_id} kept changing while it was rebuilt")

    @staticmethod
    def _call(fn, *args):
        """Run a script (keys list, args list) or a plain command; Redis errors become
        GateUnavailable so callers can fall back to the SQL guard."""
        try:
            if len(args) == 2 and isinstance(args[0], list):
                return fn(keys=args[0], args=args[1])
            return fn(*args)
        except redis.RedisError as exc:
            raise GateUnavailable(str(exc)) from exc


@dataclass(frozen=True)
class Snapshot:
    capacity: int
    waitlist_enabled: bool
    waitlist_capacity: int | None
    confirmed: list[int]
    waitlisted: list[int]


def _sql_snapshot(event_id: int) -> Snapshot:
    """An event's seats and waitlist as SQL has them right now."""
    with read_session() as s:
        row = s.execute(select(Event.capacity, Event.waitlist_enabled, Event.waitlist_capacity)
                        .where(Event.id == event_id)).one_or_none()
        if row is None:
            raise NotFound("That event does not exist.")
        people = s.execute(
            select(Registration.user_id, Registration.status)
            .where(Registration.event_id == event_id,
                   Registration.status.in_(LIVE))
            .order_by(Registration.position)
        ).all()
    return Snapshot(row.capacity, row.waitlist_enabled, row.waitlist_capacity,
                    [u for u, status in people if status == Status.CONFIRMED],
                    [u for u, status in people if status == Status.WAITLISTED])


def get_gate() -> SeatGate | None:
    """The app's seat gate, or None when it is switched off (SEAT_GATE_ENABLED)."""
    app = current_app
    if not app.config["SEAT_GATE_ENABLED"]:
        return None
    gate = app.extensions.get("turnout_gate")
    if gate is None:
        gate = app.extensions["turnout_gate"] = SeatGate(
            redis_store.client, app.config["SEAT_HOLD_TTL_MS"], app.config["SEAT_HOLD_TRUST_MS"])
    return gate


def mirror(event_id: int, user_id: int | None, promoted: list[int]) -> None:
    """After a committed cancellation: the leaver out of Redis, the promoted into seats,
    in one script. If Redis fails, SQL stands and reconcile repairs Redis."""
    gate = get_gate()
    if gate is None:
        return
    try:
        gate.vacate(event_id, user_id, promoted)
    except GateUnavailable:
        log.warning("change committed in SQL but not in Redis; reconcile repairs it",
                    extra={"event_id": event_id, "user_id": user_id, "promoted": promoted})


def reload(event_id: int) -> None:
    """After a committed change of seats or settings: one versioned rebuild from SQL."""
    gate = get_gate()
    if gate is None:
        return
    try:
        gate.rebuild(event_id, force=True)
    except GateUnavailable:
        log.warning("seats changed in SQL but not in Redis; reconcile repairs it",
                    extra={"event_id": event_id})
