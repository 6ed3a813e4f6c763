"""ASVS finding "removing the organizer role leaves control": the role is checked on every
organizer action, pages and API; a role change ends the person's sessions, tokens and
cached copy at once; `flask users grant-organizer / revoke-organizer` change it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.support.clients import Api

ORGANIZER_PAGES = ("/organizer/", "/organizer/events/new", "/organizer/events/{id}",
                   "/organizer/events/{id}/edit", "/organizer/events/{id}/attendees.csv",
                   "/organizer/events/{id}/waitlist.csv",
                   "/organizer/events/{id}/registrations/{user}/cancel")


def cli(app, *args):
    return app.test_cli_runner().invoke(args=["users", *args])


def role_changes(app, user_id):
    from webapp.auth.models import SecurityEvent
    from webapp.database import read_session

    with app.app_context(), read_session() as s:
        return [e.kind for e in s.scalars(select(SecurityEvent)
                                          .where(SecurityEvent.user_id == user_id))
                if e.kind.startswith("role_")]


@pytest.fixture
def host(app, make_user, make_event, make_client):
    """An organizer with an event one attendee holds a seat at, signed in on a page and
    the API: (user, event, attendee, page client, token)."""
    from webapp.registrations.services import register

    user = make_user(organizer=True)
    event = make_event(organizer=user)
    attendee = make_user()
    with app.app_context():
        register(event.id, attendee.id)
    page = make_client()
    assert page.login(user.email).status_code == 303
    return user, event, attendee, page, Api(app).token(user.email)


def organizer_answers(app, host) -> dict[str, int]:
    """Every organizer page and API call, as the host's page client and token."""
    _, event, attendee, page, token = host
    api = Api(app)
    answers = {path: page.get(path.format(id=event.id, user=attendee.id)).status_code
               for path in ORGANIZER_PAGES}
    answers["POST edit"] = page.post(f"/organizer/events/{event.id}/edit",
                                     data={"title": "Taken over"}).status_code
    answers["POST cancel"] = page.post(
        f"/organizer/events/{event.id}/registrations/{attendee.id}/cancel").status_code
    answers["API PATCH"] = api.patch(f"/api/events/{event.id}", token=token,
                                     json={"title": "Taken over"}).status_code
    answers["API list"] = api.get(f"/api/events/{event.id}/registrations",
                                  token=token).status_code
    answers["API cancel"] = api.delete(f"/api/events/{event.id}/registrations/{attendee.id}",
                                       token=token).status_code
    return answers


def test_revoking_the_role_ends_control_at_once_on_pages_and_api(app, host, counts):
    user, event, attendee, page, _ = host
    page.get("/organizer/")  # the cached copy of the organizer is in Redis now
    result = cli(app, "revoke-organizer", user.email.upper())
    assert result.exit_code == 0, result.output
    assert result.output == (f"{user.email} (id {user.id}) is an attendee; their sessions "
                             "and tokens were ended.\n")
    # The old cookie and token are dead at once: no 30-minute cached role.
    assert page.get("/organizer/").status_code in (302, 303)
    assert Api(app).get("/api/users/me", token=host[4]).status_code == 401
    # Signed in again, as the attendee they now are: every organizer action is refused.
    assert page.login(user.email).status_code == 303
    fresh = (user, event, attendee, page, Api(app).token(user.email))
    answers = organizer_answers(app, fresh)
    assert set(answers.values()) == {403}, answers
    assert counts(event.id)["confirmed"] == 1  # the attendee kept their seat
    assert role_changes(app, user.id).count("role_revoked") == 1


def test_granting_the_role_back_restores_control(app, host):
    user, event, attendee, page, _ = host
    assert cli(app, "revoke-organizer", user.email).exit_code == 0
    assert cli(app, "grant-organizer", user.email).exit_code == 0
    assert page.login(user.email).status_code == 303
    fresh = (user, event, attendee, page, Api(app).token(user.email))
    assert page.get(f"/organizer/events/{event.id}").status_code == 200
    assert Api(app).get(f"/api/events/{event.id}/registrations",
                        token=fresh[4]).status_code == 200
    assert role_changes(app, user.id) == ["role_revoked", "role_granted"]


def test_the_owner_check_itself_demands_the_role(app_ctx, make_user, make_event):
    """Even a stale copy of the person that still names them owner gets no control."""
    from webapp.errors import Forbidden
    from webapp.organizer.services import check_owner

    user = make_user(organizer=True)
    event = make_event(organizer=user)
    assert check_owner(event, user) is event
    user.is_organizer = False
    with pytest.raises(Forbidden):
        check_owner(event, user)


def test_cli_refuses_an_unknown_address_and_a_repeat_changes_nothing(app, make_user):
    result = cli(app, "grant-organizer", "nobody@example.org")
    assert result.exit_code == 1
    assert result.output == "Error: No account has the address nobody@example.org.\n"
    user = make_user()
    token = Api(app).token(user.email)
    assert cli(app, "revoke-organizer", user.email).exit_code == 0  # already an attendee
    assert Api(app).get("/api/users/me", token=token).status_code == 200  # nothing ended
    assert role_changes(app, user.id) == []


def test_operators_read_the_trail_with_flask_security_log(app, host):
    user = host[0]
    assert cli(app, "revoke-organizer", user.email).exit_code == 0
    result = app.test_cli_runner().invoke(args=["security-log", "--email", user.email])
    assert result.exit_code == 0, result.output
    lines = [line.split("\t") for line in result.output.splitlines()]
    # Oldest first: the host's two sign-ins (page, API), then the role change.
    assert [line[1] for line in lines] == ["sign_in", "sign_in", "role_revoked"]
    assert lines[-1][2:4] == [str(user.id), user.email]
    only = app.test_cli_runner().invoke(args=["security-log", "--kind", "role_revoked"])
    assert [line.split("\t")[1] for line in only.output.splitlines()] == ["role_revoked"]
    other = app.test_cli_runner().invoke(args=["security-log", "--email", "x@example.org"])
    assert other.exit_code == 0 and other.output == ""
