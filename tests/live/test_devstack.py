"""`make run` (webapp/devstack.py) from nothing: an embedded Redis, the mail catcher, the
migrations, the demo data, the worker and gunicorn; the event list answers; a child killed
is started again; Ctrl-C (here SIGTERM) stops everything it started."""

from __future__ import annotations

import os
import signal
import threading

import psutil
import pytest
import requests

from tests.support.outages import process_tree, still_running
from tests.support.processes import free_port, wait_until
from webapp import devstack

pytestmark = pytest.mark.slow

SET_BY_MAKE_RUN = ("REDIS_URL", "MAIL_SERVER", "MAIL_PORT", "PUBLIC_URL", "TURNOUT_INSTANCE",
                   "RECONCILE_INTERVAL_SECONDS", "DATABASE_URL", "PORT", "WEB_CONCURRENCY")


def test_make_run_starts_everything_and_stops_it(tmp_path, monkeypatch, capsys, backend):
    if backend != "sqlite":
        pytest.skip("make run's embedded default is SQLite")
    for name in SET_BY_MAKE_RUN:  # main() writes these into os.environ: undo it afterwards
        monkeypatch.delenv(name, raising=False)
    port = free_port()
    monkeypatch.setenv("TURNOUT_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'turnout.db'}")
    monkeypatch.setenv("PORT", str(port))
    monkeypatch.setenv("WEB_CONCURRENCY", "1")
    seen: dict = {}

    def open_the_site_kill_children_then_stop() -> None:
        try:
            seen["page"] = wait_until(lambda: _get(f"http://127.0.0.1:{port}/"), seconds=90,
                                      what="make run's web app")
            for name in ("worker", "web"):
                killed = _child(name)
                killed.kill()  # SIGKILL: the worker's own children die with it
                seen[name] = wait_until(
                    lambda name=name, old=killed.pid: (new := _child(name)) and new.pid != old,
                    seconds=20, what=f"a new {name}")
            seen["page again"] = wait_until(lambda: _get(f"http://127.0.0.1:{port}/"),
                                            seconds=30, what="the restarted web app")
            seen["tree"] = [p for child in psutil.Process().children()
                            for p in process_tree(child.pid)]
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # what Ctrl-C does to make run

    previous = signal.getsignal(signal.SIGTERM)
    visitor = threading.Thread(target=open_the_site_kill_children_then_stop, daemon=True)
    visitor.start()
    try:
        code = devstack.main()
    finally:
        signal.signal(signal.SIGTERM, previous)
        visitor.join(5)
    out = capsys.readouterr().out
    assert code == 0
    assert "Python Meetup: Async in Practice" in seen["page"]  # the demo data
    assert f"Turnout is running: http://127.0.0.1:{port}/" in out
    assert "* embedded Redis on 127.0.0.1:" in out
    assert "organizer@turnout.test   organizer" in out
    assert "* worker exited with code -9; restarting it in 1 s" in out
    assert "* web exited with code -9; restarting it in 1 s" in out
    assert "* worker restarted (pid " in out and "* web restarted (pid " in out
    assert "Python Meetup: Async in Practice" in seen["page again"]
    with pytest.raises(requests.ConnectionError):  # nothing it started is left listening
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)
    wait_until(lambda: not still_running(seen["tree"]), seconds=10, what="no process left")


def _child(name: str) -> psutil.Process | None:
    """make run's child `name` (worker: `python -m workers`, web: gunicorn's master)."""
    marker = {"worker": ["-m", "workers"], "web": ["-m", "gunicorn"]}[name]
    for child in psutil.Process().children():
        try:
            if child.cmdline()[1:3] == marker:
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def _get(url: str) -> str | None:
    try:
        answer = requests.get(url, timeout=2)
    except requests.RequestException:
        return None
    return answer.text if answer.status_code == 200 else None
