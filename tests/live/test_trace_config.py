"""loadtests/gunicorn_trace.conf.py: the deploy config, plus one line per request for
loadtests/anatomy.py (accepted <= taken up by a thread <= answered, by a worker's pid)."""

from __future__ import annotations

import psutil
import requests

from tests.support.live import start_live_server


def _lines(trace_dir) -> list[list[str]]:
    return [line.split() for path in sorted(trace_dir.glob("requests.*"))
            for line in path.read_text().splitlines()]


def test_every_request_leaves_one_ordered_line(database_url, redis_url, tmp_path):
    trace_dir = tmp_path / "trace"
    trace_dir.mkdir()
    (tmp_path / "server").mkdir()
    server = start_live_server(database_url, redis_url, extra_env={"TRACE_DIR": str(trace_dir)},
                               workdir=tmp_path / "server", workers=2, threads=2,
                               conf_file="loadtests/gunicorn_trace.conf.py")
    try:
        workers = {str(p.pid) for p in psutil.Process(server.proc.pid).children()}
        before = len(_lines(trace_dir))
        with requests.Session() as kept_alive:  # later requests reuse the connection
            answers = [kept_alive.get(server.url + "/healthz", timeout=10) for _ in range(5)]
        answers += [requests.get(server.url + "/healthz", timeout=10,
                                 headers={"Connection": "close"}) for _ in range(5)]
        log = server.log_since()
    finally:
        server.stop()

    assert [a.text for a in answers] == ["ok"] * 10
    assert "Using worker: gthread" in log  # the deploy config's worker class and hooks
    lines = _lines(trace_dir)
    assert len(lines) - before == 10
    for pid, accepted, started, finished in lines:
        assert pid in workers
        assert float(accepted) <= float(started) <= float(finished)
