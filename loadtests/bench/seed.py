"""People and events in bulk SQL, and the browser sessions the wrk runs send."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import requests
from sqlalchemy import create_engine

from loadtests import people
from loadtests.bench.state import Bench

# (capacity, waitlist, waitlist capacity) of the events people browse and register for
BROWSE_EVENTS = [(20, False, None), (50, True, None), (10, True, 5),
                 (200, False, None), (5, False, None), (100, True, 20)]


def rushes(bench: Bench) -> list[tuple[str, str]]:
    """The rush through htmx directly and through nginx, and through the JSON API."""
    args = bench.args
    via_proxy = "direct" if args.no_nginx else "nginx"
    runs = [("htmx", "direct")] + ([] if args.no_nginx else [("htmx", "nginx")])
    return runs + ([] if args.no_api else [("api", via_proxy)])


def prepare_data(bench: Bench) -> None:
    """Everyone the scenarios sign in as, the organizer, the rush, browse and full events."""
    from webapp import create_app

    args, config = bench.args, bench.config
    bench.phase("people and events (bulk SQL)")
    bench.app = create_app({"SQLALCHEMY_DATABASE_URI": config.database_url,
                            "REDIS_URL": config.redis_url,
                            "SECRET_KEY": config.secret_key,
                            "PROXY_FIX_TRUSTED_HOPS": 1})
    bench.engine = engine = create_engine(bench.app.config["SQLALCHEMY_DATABASE_URI"])
    total = max(args.people, args.browse_users, args.wrk_people)
    started = time.monotonic()
    people.create_people(engine, 1, total)
    bench.organizer = organizer = people.create_organizer(engine)
    bench.say(f"{total} people inserted in {time.monotonic() - started:.1f} s "
              f"(one precomputed {people.BENCH_HASH_METHOD} hash)")
    e = people.create_event
    bench.events = {
        **{f"rush_{kind}_{where}": e(engine, organizer, f"Rush ({kind}, {where})", args.seats)
           for kind, where in rushes(bench)},
        "browse": [e(engine, organizer, f"Browse {i}", cap, waitlist=wl, waitlist_capacity=wc,
                     starts_in=timedelta(days=3 + i))
                   for i, (cap, wl, wc) in enumerate(BROWSE_EVENTS)],
        "full": e(engine, organizer, "Already full", 1),
    }
    bench.say(f"events: {json.dumps(bench.events)}")


def forge_credentials(bench: Bench) -> None:
    """Session cookies and CSRF tokens of the wrk people, checked against the server;
    the full event filled with a real registration; every event page opened once."""
    bench.phase("sessions for the wrk runs")
    started = time.monotonic()
    ids = people.ids_by_email(bench.engine, 1, bench.args.wrk_people)
    bench.wrk_user_ids = sorted(ids.values())
    creds = people.browser_sessions(bench.app, bench.wrk_user_ids)
    bench.htmx_creds = bench.run_dir / "wrk-people-htmx.tsv"
    bench.htmx_creds.write_text("".join(f"{c.cookie}\t{c.csrf}\n" for c in creds))
    full, url = bench.events["full"], bench.web.url
    # The forged cookie must be exactly what /login would give: check one.
    page = requests.get(f"{url}/events/{full}", timeout=10,
                        headers={"Cookie": creds[0].cookie,
                                 "User-Agent": people.BENCH_USER_AGENT})
    if "Sign out" not in page.text or "Set-Cookie" in page.headers:
        raise RuntimeError("a prepared session cookie is not accepted as a signed-in person")
    # Fill the (c) event with a real registration.
    filled = requests.post(f"{url}/events/{full}/register", timeout=10,
                           headers={"Cookie": creds[-1].cookie, "X-CSRFToken": creds[-1].csrf,
                                    "HX-Request": "true", "User-Agent": people.BENCH_USER_AGENT})
    if "confirmation" not in filled.headers.get("HX-Location", ""):
        raise RuntimeError(f"could not fill the full event: {filled.status_code}")
    started_pages = time.monotonic()
    people.open_event_page(url, creds, full)
    bench.say(f"every wrk person opened the event page first, as in a real rush "
              f"({time.monotonic() - started_pages:.1f} s)")
    bench.wrk_attempts.setdefault((full,), []).append((1, 0))
    bench.say(f"{len(creds)} browser sessions in {time.monotonic() - started:.1f} s, "
              f"checked against the server")
