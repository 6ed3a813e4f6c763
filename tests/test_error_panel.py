"""An unexpected error during registration: a clear message in the panel, nothing half-written."""

import pytest


@pytest.fixture
def failing_commit(at_registration_commit):
    """Make the next registration transaction fail at commit time."""

    def boom():
        raise RuntimeError("injected commit failure")

    at_registration_commit("before", boom)


@pytest.mark.parametrize("htmx", [True, False])
def test_commit_failure_shows_message_and_leaves_nothing(
        signed_in, make_event, counts, redis_client, failing_commit, htmx):
    from webapp.registrations.gate import EventKeys

    client, _user = signed_in
    event = make_event(capacity=3)
    response = client.post(f"/events/{event.id}/register", htmx=htmx)
    body = response.get_data(as_text=True)

    assert response.status_code == 500, (response.headers, body)
    assert "your registration was not saved" in body
    assert 'id="registration-panel"' in body
    assert ">Register</button>" in body  # the person can simply try again
    assert "Traceback" not in body and "injected commit failure" not in body
    assert ("<html" in body) is not htmx
    assert response.headers["X-Request-ID"] in body  # a reference to quote to support

    state = counts(event.id)
    assert state["confirmed"] == 0 and state["confirmed_count"] == 0
    assert state["activity"] == {"failed": 1}
    assert redis_client.zcard(EventKeys.for_event(event.id).holds) == 0
    assert redis_client.scard(EventKeys.for_event(event.id).confirmed) == 0
