"""ASVS finding "a form post can be 30 MB": page bodies are bounded (MAX_CONTENT_LENGTH)."""

from __future__ import annotations


def test_a_huge_form_post_is_refused_before_it_is_read(app, client):
    from webapp.auth.models import User
    from webapp.database import read_session

    limit = app.config["MAX_CONTENT_LENGTH"]
    assert limit == 128 * 1024
    response = client.post("/signup", data={"email": "big@example.org", "name": "x" * (30 << 20),
                                            "password": "correct horse battery"})
    assert response.status_code == 413
    assert "Traceback" not in response.get_data(as_text=True)
    with app.app_context(), read_session() as s:
        assert s.query(User).count() == 0


def test_an_ordinary_form_is_far_below_the_limit(client):
    response = client.post("/signup", data={"email": "ok@example.org", "name": "Ok " * 30,
                                            "password": "correct horse battery"})
    assert response.status_code == 303
