"""GET /healthz: the floor endpoint of the benchmark and the probe of load balancers."""

from __future__ import annotations

from tests.support.app import base_config


def test_healthz_answers_ok_as_plain_text(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "ok"
    assert response.mimetype == "text/plain"
    assert "Set-Cookie" not in response.headers  # no session is touched


def test_healthz_needs_neither_database_nor_redis():
    from webapp import create_app

    app = create_app(base_config("postgresql+psycopg://nobody@127.0.0.1:1/none",
                                 "redis://127.0.0.1:1/0"))
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "ok"
