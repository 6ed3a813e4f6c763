"""Reading what the checker judges: SQL rows of a trial's events, their gate keys in
Redis, and the SMTP sink's record, as the checker's plain data."""

from __future__ import annotations

import redis
from sqlalchemy import Engine, text

from loadtests.chaos.checker import Change, EventInfo, Mail, Received, RedisView, Row
from loadtests.chaos.servers import outbox_id
from webapp.registrations.gate import EventKeys


def _stamp(value) -> float:
    return value.timestamp()


def read_sql(engine: Engine, event_ids: list[int]
             ) -> tuple[dict[int, EventInfo], list[Row], list[Change], list[Mail]]:
    with engine.connect() as conn:
        events = {r.id: EventInfo(r.id, r.capacity, r.waitlist_enabled, r.waitlist_capacity)
                  for r in conn.execute(text(
                      "SELECT id, capacity, waitlist_enabled, waitlist_capacity FROM events"
                      " WHERE id = ANY(:e)"), {"e": event_ids})}
        rows = [Row(r.id, r.event_id, r.user_id, r.status) for r in conn.execute(text(
            "SELECT id, event_id, user_id, status FROM registrations WHERE event_id = ANY(:e)"),
            {"e": event_ids})]
        changes = [Change(r.event_id, r.user_id, r.outcome, _stamp(r.occurred_at), r.request_id)
                   for r in conn.execute(text(
                       "SELECT event_id, user_id, outcome, occurred_at, request_id"
                       " FROM activity_log WHERE event_id = ANY(:e) AND outcome IN"
                       " ('confirmed', 'waitlisted', 'promoted', 'cancelled', 'offer_expired')"),
                       {"e": event_ids})]
        mails = [Mail(r.id, r.kind, r.event_id, r.user_id, r.status, _stamp(r.created_at))
                 for r in conn.execute(text(
                     "SELECT id, kind, event_id, user_id, status, created_at FROM outbox"
                     " WHERE event_id = ANY(:e)"), {"e": event_ids})]
    return events, rows, changes, mails


def outbox_pending(engine: Engine) -> int:
    """Outbox rows not sent yet (and not given up on)."""
    with engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM outbox WHERE status NOT IN ('sent', 'failed')")).scalar() or 0)


def read_redis(redis_url: str, event_ids: list[int]) -> dict[int, RedisView | None]:
    """Each event's gate keys (webapp/registrations/gate.py EventKeys); None where absent."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        seconds, micros = client.time()
        now_ms = seconds * 1000 + micros // 1000
        views: dict[int, RedisView | None] = {}
        for event_id in event_ids:
            k = EventKeys.for_event(event_id)
            capacity = client.hget(k.seats, "capacity")
            if capacity is None:
                views[event_id] = None
                continue
            holds = (client.zcount(k.holds, f"({now_ms}", "+inf")
                     + client.zcount(k.wholds, f"({now_ms}", "+inf"))
            views[event_id] = RedisView(
                int(capacity), frozenset(map(int, client.smembers(k.confirmed))),
                frozenset(map(int, client.smembers(k.waitlisted))), holds)
        return views
    finally:
        client.close()


def received(record: list[dict]) -> list[Received]:
    return [Received(outbox_id(m.get("message_id")), m["at"]) for m in record]
