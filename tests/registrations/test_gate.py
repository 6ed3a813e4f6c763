"""The seat gate's Lua scripts against a real Redis: every status, idempotency, races, NOSCRIPT."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import astuple
from importlib import resources

import pytest
from redis.crc import key_slot
from sqlalchemy import update

from tests.support.seat_keys import forget, held_count
from webapp.database import write_session
from webapp.events.models import Event
from webapp.registrations import gate as seat_gate
from webapp.registrations import services
from webapp.registrations.gate import EventKeys, get_gate
from webapp.registrations.models import Registration, Status


@pytest.fixture
def gate(app_ctx) -> seat_gate.SeatGate:
    gate = get_gate()
    assert gate is not None, "the gate must be on in the default test config"
    return gate


def token() -> str:
    return uuid.uuid4().hex


def raw_reserve(gate, event_id: int, user_id: int, hold_token: str, ttl_ms: int = 60_000,
                trust_ms: int = 3_000):
    """The reserve script itself, without the wrapper's rebuild-on-missing loop."""
    k = EventKeys.for_event(event_id)
    status, seats_left, *_owners = gate._reserve(keys=k.all,
                                                 args=[user_id, hold_token, ttl_ms, trust_ms])
    return status, int(seats_left)


def redis_state(client, event_id: int) -> dict:
    k = EventKeys.for_event(event_id)
    return {
        "exists": bool(client.exists(k.seats)),
        "capacity": client.hget(k.seats, "capacity"),
        "confirmed": {int(u) for u in client.smembers(k.confirmed)},
        "holds": {int(u) for u in client.zrange(k.holds, 0, -1)},
        "tokens": {int(u): t for u, t in client.hgetall(k.tokens).items()},
        "version": int(client.get(k.version) or 0),
    }


def event_keys_in_redis(client, event_id: int) -> list[str]:
    return sorted(client.scan_iter(match=f"turnout:{{event:{event_id}}}:*"))


def commit_confirmed(event_id: int, user_id: int) -> None:
    """What another process's successful registration leaves in SQL."""
    with write_session() as s:
        s.add(Registration(event_id=event_id, user_id=user_id, status=Status.CONFIRMED))
        s.execute(update(Event).where(Event.id == event_id)
                  .values(confirmed_count=Event.confirmed_count + 1)
                  .execution_options(synchronize_session=False))


# --- reserve -----------------------------------------------------------------

def test_reserve_on_a_missing_event_key_says_missing_and_writes_nothing(
        gate, make_event, make_user, redis_client):
    event, user = make_event(capacity=5), make_user()

    assert raw_reserve(gate, event.id, user.id, token()) == ("missing", 0)
    assert raw_reserve(gate, event.id, user.id, token()) == ("missing", 0)
    assert event_keys_in_redis(redis_client, event.id) == []


def test_reserve_rebuilds_from_sql_before_admitting_anyone(
        gate, make_event, make_user, redis_client):
    event = make_event(capacity=3)
    first, second, third, fourth = (make_user() for _ in range(4))
    services.register(event.id, first.id)
    services.register(event.id, second.id)
    forget(gate, event.id)  # Redis lost the event (restart, eviction)
    assert not redis_state(redis_client, event.id)["exists"]

    decision = gate.reserve(event.id, third.id, token())

    assert decision == seat_gate.Decision(seat_gate.HELD, 0)
    state = redis_state(redis_client, event.id)
    assert state["capacity"] == "3"
    assert state["confirmed"] == {first.id, second.id}
    assert state["holds"] == {third.id}
    # An empty key would have admitted everyone; the rebuilt one knows it is full.
    assert gate.reserve(event.id, fourth.id, token()) == seat_gate.Decision(seat_gate.FULL, 0)
    assert gate.reserve(event.id, first.id, token()).status == seat_gate.REGISTERED


def test_reserve_of_an_unknown_event_raises_not_found_and_writes_nothing(
        gate, make_user, redis_client):
    from webapp.errors import NotFound

    user = make_user()
    with pytest.raises(NotFound):
        gate.reserve(987654, user.id, token())
    assert event_keys_in_redis(redis_client, 987654) == []


def test_reserve_statuses_held_pending_full_registered(gate, make_event, make_user,
                                                       redis_client):
    event = make_event(capacity=2)
    a, b, c = make_user(), make_user(), make_user()
    gate.rebuild(event.id, force=False)
    ta = token()

    assert raw_reserve(gate, event.id, a.id, ta) == ("held", 1)
    assert raw_reserve(gate, event.id, a.id, ta) == ("held", 1)  # same attempt retried
    assert redis_state(redis_client, event.id)["holds"] == {a.id}
    assert raw_reserve(gate, event.id, a.id, token()) == ("pending", 1)  # a second tab
    assert raw_reserve(gate, event.id, b.id, token()) == ("held", 0)
    assert raw_reserve(gate, event.id, c.id, token()) == ("full", 0)

    assert gate.confirm(event.id, a.id, ta) is True
    assert raw_reserve(gate, event.id, a.id, token()) == ("registered", 0)
    state = redis_state(redis_client, event.id)
    assert state["confirmed"] == {a.id}
    assert state["holds"] == {b.id}
    assert set(state["tokens"]) == {b.id}


def test_same_token_retry_never_takes_a_second_seat(gate, make_event, make_user, redis_client):
    event = make_event(capacity=3)
    a = make_user()
    gate.rebuild(event.id, force=False)
    ta = token()

    answers = {raw_reserve(gate, event.id, a.id, ta) for _ in range(10)}

    assert answers == {("held", 2)}
    assert held_count(gate, event.id) == 1
    assert redis_state(redis_client, event.id)["tokens"] == {a.id: ta}


def test_an_expired_hold_gives_its_seat_back(gate, make_event, make_user, redis_client):
    event = make_event(capacity=1)
    a, b = make_user(), make_user()
    gate.rebuild(event.id, force=False)
    ta = token()

    assert raw_reserve(gate, event.id, a.id, ta, ttl_ms=80) == ("held", 0)
    # (every hold of an app has the same time to live; the trust is counted from it)
    assert raw_reserve(gate, event.id, b.id, token(), ttl_ms=80, trust_ms=80) == ("full", 0)
    time.sleep(0.15)
    assert raw_reserve(gate, event.id, b.id, token()) == ("held", 0)
    state = redis_state(redis_client, event.id)
    assert state["holds"] == {b.id}
    assert set(state["tokens"]) == {b.id}
    # The dead attempt retrying with its old token does not get its seat back.
    assert raw_reserve(gate, event.id, a.id, ta) == ("full", 0)


# --- release, confirm, vacate ------------------------------------------------

def test_release_is_idempotent_and_only_releases_the_owning_token(
        gate, make_event, make_user, redis_client):
    event = make_event(capacity=2)
    a, b = make_user(), make_user()
    gate.rebuild(event.id, force=False)
    old, b_token = token(), token()
    raw_reserve(gate, event.id, a.id, old)
    raw_reserve(gate, event.id, b.id, b_token)

    assert gate.release(event.id, a.id, "not-the-owner") is False
    assert redis_state(redis_client, event.id)["holds"] == {a.id, b.id}
    assert gate.release(event.id, a.id, old) is True
    assert gate.release(event.id, a.id, old) is False
    assert redis_state(redis_client, event.id)["holds"] == {b.id}

    # A newer attempt of the same person holds a seat: the old attempt's late
    # compensation must not give that seat away.
    new = token()
    assert raw_reserve(gate, event.id, a.id, new) == ("held", 0)
    assert gate.release(event.id, a.id, old) is False
    state = redis_state(redis_client, event.id)
    assert state["holds"] == {a.id, b.id}
    assert state["tokens"] == {a.id: new, b.id: b_token}


def test_confirm_moves_the_hold_to_a_confirmed_seat_once(gate, make_event, make_user,
                                                          redis_client):
    event = make_event(capacity=2)
    a, b, c = make_user(), make_user(), make_user()
    gate.rebuild(event.id, force=False)
    ta = token()
    raw_reserve(gate, event.id, a.id, ta)
    version = redis_state(redis_client, event.id)["version"]

    assert gate.confirm(event.id, a.id, ta) is True
    assert gate.confirm(event.id, a.id, ta) is True  # a retried confirm
    state = redis_state(redis_client, event.id)
    assert state["confirmed"] == {a.id}
    assert state["holds"] == set()
    assert state["tokens"] == {}
    assert state["version"] == version + 2
    # One seat taken, not two: exactly one more person fits.
    assert raw_reserve(gate, event.id, b.id, token()) == ("held", 0)
    assert raw_reserve(gate, event.id, c.id, token()) == ("full", 0)


def test_confirm_of_an_event_redis_lost_writes_no_seat_but_bumps_the_version(
        gate, make_event, make_user, redis_client):
    event, a = make_event(capacity=2), make_user()

    assert gate.confirm(event.id, a.id, token()) is False
    assert gate.confirm(event.id, a.id, None) is False
    state = redis_state(redis_client, event.id)
    assert state["exists"] is False
    assert state["confirmed"] == set()
    assert state["version"] == 2


def test_vacate_frees_the_seat_once(gate, make_event, make_user, redis_client):
    event = make_event(capacity=1)
    a, b = make_user(), make_user()
    gate.rebuild(event.id, force=False)
    ta = token()
    raw_reserve(gate, event.id, a.id, ta)
    gate.confirm(event.id, a.id, ta)
    assert raw_reserve(gate, event.id, b.id, token()) == ("full", 0)
    version = redis_state(redis_client, event.id)["version"]

    assert gate.vacate(event.id, a.id) is True
    assert gate.vacate(event.id, a.id) is False
    assert redis_state(redis_client, event.id)["version"] == version + 2
    assert raw_reserve(gate, event.id, b.id, token()) == ("held", 0)


# --- rebuild -----------------------------------------------------------------

def test_rebuild_script_refuses_to_write_when_the_version_moved(gate, make_event,
                                                                 redis_client):
    event = make_event(capacity=4)
    k = EventKeys.for_event(event.id)
    redis_client.set(k.version, 7)

    result = gate._rebuild(keys=k.all, args=["6", 4, "0", "0", -1, 2, 1, 2])

    assert result == ["retry", 0, 0, 0, 0, 0, 0]
    assert not redis_client.exists(k.seats, k.confirmed)


def test_rebuild_reads_sql_again_when_a_commit_lands_in_between(
        gate, make_event, make_user, redis_client, monkeypatch):
    event = make_event(capacity=3)
    early, late = make_user(), make_user()
    services.register(event.id, early.id)
    forget(gate, event.id)
    real_snapshot = seat_gate._sql_snapshot
    snapshots = []

    def snapshot_then_a_commit_lands(event_id):
        seen = real_snapshot(event_id)
        snapshots.append(seen)
        if len(snapshots) == 1:
            # Another process commits a seat and tells Redis, which still has no
            # event: confirm writes nothing but moves the version.
            commit_confirmed(event_id, late.id)
            assert gate.confirm(event_id, late.id, None) is False
        return seen

    monkeypatch.setattr(seat_gate, "_sql_snapshot", snapshot_then_a_commit_lands)
    drift = gate.rebuild(event.id, force=False)

    assert [(snap.capacity, sorted(snap.confirmed)) for snap in snapshots] == [
        (3, [early.id]), (3, sorted([early.id, late.id]))]
    assert drift.sql_confirmed == 2
    assert redis_state(redis_client, event.id)["confirmed"] == {early.id, late.id}


def test_rebuild_retries_when_a_cancellation_lands_in_between(
        gate, make_event, make_user, redis_client, monkeypatch):
    event = make_event(capacity=3)
    stays, leaves = make_user(), make_user()
    services.register(event.id, stays.id)
    services.register(event.id, leaves.id)
    real_snapshot = seat_gate._sql_snapshot
    snapshots = []

    def snapshot_then_a_cancellation_lands(event_id):
        seen = real_snapshot(event_id)
        snapshots.append(seen)
        if len(snapshots) == 1:
            services.cancel(event_id, leaves.id)  # commits, then vacates (bumps the version)
        return seen

    monkeypatch.setattr(seat_gate, "_sql_snapshot", snapshot_then_a_cancellation_lands)
    drift = gate.rebuild(event.id, force=True)

    assert len(snapshots) == 2
    assert drift.sql_confirmed == 1
    assert redis_state(redis_client, event.id)["confirmed"] == {stays.id}


def test_rebuild_writes_only_a_missing_event_unless_forced(gate, make_event, make_user,
                                                           redis_client):
    event, a = make_event(capacity=2), make_user()
    services.register(event.id, a.id)
    forget(gate, event.id)

    first = gate.rebuild(event.id, force=False)
    assert (first.existed, first.sql_capacity, first.sql_confirmed, first.drifted) == (
        False, 2, 1, True)
    assert gate.rebuild(event.id, force=False) is None  # someone else got there first
    forced = gate.rebuild(event.id, force=True)
    assert (forced.existed, forced.redis_capacity, forced.redis_confirmed, forced.missing,
            forced.extra, forced.drifted) == (True, 2, 1, 0, 0, False)


def test_rebuild_leaves_live_holds_alone(gate, make_event, make_user, redis_client):
    event = make_event(capacity=2)
    a, b, c = make_user(), make_user(), make_user()
    gate.rebuild(event.id, force=False)
    ta = token()
    raw_reserve(gate, event.id, a.id, ta)

    gate.rebuild(event.id, force=True)

    assert redis_state(redis_client, event.id)["tokens"] == {a.id: ta}
    assert raw_reserve(gate, event.id, b.id, token()) == ("held", 0)
    assert raw_reserve(gate, event.id, c.id, token()) == ("full", 0)


# --- NOSCRIPT and Redis Cluster ----------------------------------------------

def test_scripts_reload_transparently_after_script_flush(gate, make_event, make_user,
                                                         redis_client):
    event = make_event(capacity=2)
    a, b = make_user(), make_user()
    gate.reserve(event.id, a.id, token())  # loads reserve and rebuild
    scripts = [gate._reserve, gate._confirm, gate._release, gate._vacate, gate._rebuild]

    # Flush and look in one transaction: the script cache is shared with other runs.
    flushed = redis_client.pipeline(transaction=True)
    flushed.script_flush()
    flushed.script_exists(*(s.sha for s in scripts))
    assert flushed.execute()[1] == [False] * 5

    tb = token()
    assert gate.reserve(event.id, b.id, tb) == seat_gate.Decision(seat_gate.HELD, 0)
    assert gate.release(event.id, b.id, tb) is True
    assert gate.confirm(event.id, b.id, None) is True
    assert gate.vacate(event.id, b.id) is True
    assert gate.rebuild(event.id, force=True).existed is True
    redis_client.script_flush()
    outcome = services.register(event.id, b.id)
    assert outcome.status == Status.CONFIRMED
    # register ran reserve and confirm: each was loaded again on NOSCRIPT. (The script
    # cache is server-wide, so other test runs may have loaded the rest meanwhile.)
    assert redis_client.script_exists(gate._reserve.sha, gate._confirm.sha) == [True, True]


def crc16_xmodem(data: bytes) -> int:
    """The CRC Redis Cluster uses for key slots (CRC16-CCITT, XMODEM)."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def cluster_slot(key: str) -> int:
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return crc16_xmodem(key.encode()) % 16384


@pytest.mark.parametrize("event_id", [1, 42, 99_999])
def test_every_key_of_one_event_hashes_to_one_cluster_slot(event_id):
    assert crc16_xmodem(b"123456789") == 0x31C3  # the reference value in the cluster spec
    keys = astuple(EventKeys.for_event(event_id))

    assert len(set(keys)) == 7
    assert all(key.count(f"{{event:{event_id}}}") == 1 for key in keys)
    assert {cluster_slot(key) for key in keys} == {cluster_slot(f"event:{event_id}")}
    assert {key_slot(key.encode()) for key in keys} == {cluster_slot(keys[0])}


@pytest.mark.parametrize("script", ["reserve", "confirm", "release", "vacate", "rebuild"])
def test_scripts_touch_only_the_keys_they_are_given(script):
    """Redis Cluster routes a script by its KEYS; a key built inside the script breaks that."""
    source = resources.files("webapp.registrations").joinpath("lua", f"{script}.lua").read_text()
    calls = re.findall(r"redis\.call\('(\w+)'(?:,\s*([^,)]+))?", source)

    assert calls
    # Keys come from KEYS (directly or through a local that aliases KEYS entries),
    # never from a string the script builds.
    code = "\n".join(line.split("--", 1)[0] for line in source.splitlines())
    assert ".." not in code, f"{script}.lua builds a string"
    for command, first_arg in calls:
        if command == "TIME":
            continue
        assert re.fullmatch(r"KEYS\[\d\]|[a-z_]+", first_arg), (script, command, first_arg)
        if not first_arg.startswith("KEYS"):
            aliases = re.findall(rf"(?:local\s+{first_arg}\s*=|{first_arg}\s+in\s+ipairs|"
                                 rf"function\s+\w+\({first_arg}\b)[^\n]*", source)
            assert aliases, f"{script}.lua: {first_arg} is not an alias of KEYS"
            assert all("KEYS[" in a or "function" in a for a in aliases), aliases


# --- the scripts under concurrency -------------------------------------------

def run_at_once(fns) -> list:
    barrier = threading.Barrier(len(fns))
    results = [None] * len(fns)

    def run(i, fn):
        barrier.wait(10)
        results[i] = fn()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    return results


def test_fifty_concurrent_reserves_hold_exactly_the_free_seats(gate, make_event, redis_client):
    event = make_event(capacity=5)
    gate.rebuild(event.id, force=False)

    results = run_at_once([lambda u=u: raw_reserve(gate, event.id, u, token())[0]
                           for u in range(1000, 1050)])

    assert Counter(results) == {"held": 5, "full": 45}
    assert held_count(gate, event.id) == 5


def test_one_person_in_twenty_tabs_holds_one_seat(gate, make_event, redis_client):
    event = make_event(capacity=5)
    gate.rebuild(event.id, force=False)

    results = run_at_once([lambda: raw_reserve(gate, event.id, 77, token())[0]
                           for _ in range(20)])

    assert Counter(results) == {"held": 1, "pending": 19}
    assert redis_state(redis_client, event.id)["holds"] == {77}


def test_thirty_reserves_racing_on_a_missing_event_rebuild_it_once_and_hold_exactly(
        app, gate, make_event, make_user, redis_client):
    event = make_event(capacity=5)
    seated = [make_user() for _ in range(3)]
    for person in seated:
        services.register(event.id, person.id)
    forget(gate, event.id)

    def reserve(user_id):
        with app.app_context():
            return gate.reserve(event.id, user_id, token()).status

    results = run_at_once([lambda u=u: reserve(u) for u in range(5000, 5030)])

    assert Counter(results) == {"held": 2, "full": 28}
    state = redis_state(redis_client, event.id)
    assert state["capacity"] == "5"
    assert state["confirmed"] == {p.id for p in seated}
    assert len(state["holds"]) == 2


def test_a_late_confirm_after_the_cancellation_vacated_counts_no_seat(
        gate, make_event, make_user, redis_client):
    """Commit, then a cancellation commits and vacates, then the first confirm arrives."""
    event = make_event(capacity=1)
    a, b = make_user(), make_user()
    gate.rebuild(event.id, force=False)
    ta = token()
    raw_reserve(gate, event.id, a.id, ta)

    assert gate.vacate(event.id, a.id) is False  # a's seat was not counted yet ...
    assert redis_state(redis_client, event.id)["tokens"] == {}  # ... but its hold is void
    assert gate.confirm(event.id, a.id, ta) is False

    state = redis_state(redis_client, event.id)
    assert (state["confirmed"], state["holds"]) == (set(), set())
    assert raw_reserve(gate, event.id, b.id, token()) == ("held", 0)


def test_a_confirm_after_the_hold_expired_leaves_the_count_to_sql(
        gate, make_event, make_user, redis_client):
    event = make_event(capacity=2)
    a, b = make_user(), make_user()
    gate.rebuild(event.id, force=False)
    ta = token()
    raw_reserve(gate, event.id, a.id, ta, ttl_ms=50)
    time.sleep(0.1)
    raw_reserve(gate, event.id, b.id, token())  # sweeps the expired hold

    assert gate.confirm(event.id, a.id, ta) is False
    assert redis_state(redis_client, event.id)["confirmed"] == set()
    # Never a seat counted that SQL does not have; a rebuild counts what SQL has.
    commit_confirmed(event.id, a.id)
    drift = gate.rebuild(event.id, force=True)
    assert (drift.missing, drift.extra) == (1, 0)
    assert redis_state(redis_client, event.id)["confirmed"] == {a.id}
