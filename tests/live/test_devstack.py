"""`make run` (webapp/devstack.py) from nothing: an embedded Redis, the mail catcher, the
migrations, the demo data, the worker and gunicorn; the event list answers; Ctrl-C (here
SIGTERM) stops everything it started."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import requests

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

    def open_the_site_then_stop() -> None:
        try:
            seen["page"] = wait_until(lambda: _get(f"http://127.0.0.1:{port}/"), seconds=90,
                                      what="make run's web app")
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # what Ctrl-C does to make run

    previous = signal.getsignal(signal.SIGTERM)
    visitor = threading.Thread(target=open_the_site_then_stop, daemon=True)
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
    with pytest.raises(requests.ConnectionError):  # nothing it started is left listening
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)


def _get(url: str) -> str | None:
    try:
        answer = requests.get(url, timeout=2)
    except requests.RequestException:
        return None
    return answer.text if answer.status_code == 200 else None
