"""Account emails (no event) go through the same outbox, and every To: header names its
person exactly, whatever commas, quotes or accents the name has."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from tests.support.inbox import link, outbox_rows, recipients_as_read, text_of
from webapp.database import write_session
from webapp.mail import jobs, services
from webapp.mail.models import ACCOUNT_MAIL, MailKind

STRANGE_NAME = 'Doe, "Jo" <x>'


def write_account_mail(kind: MailKind, user_id: int) -> int:
    with write_session() as session:
        return services.add_account_mail(session, kind, user_id=user_id)


@pytest.mark.parametrize("kind, subject, path", [
    (MailKind.PASSWORD_RESET, "Reset your Turnout password", "/password/reset/"),
    (MailKind.VERIFY_EMAIL, "Confirm your email address for Turnout", "/verify/"),
    (MailKind.ACCOUNT_EXISTS, "You already have a Turnout account", "/password/forgot"),
])
def test_an_account_email_is_an_outbox_row_without_event_sent_once(
        app_ctx, smtp, make_user, kind, subject, path):
    person = make_user(email="ada@example.org", name="Ada Lovelace")
    outbox_id = write_account_mail(kind, person.id)
    [row] = outbox_rows()
    assert (row.id, row.kind, row.user_id, row.event_id, row.registration_id, row.status) == (
        outbox_id, kind, person.id, None, None, "pending")
    assert services.email_queue().get_job_ids() != []  # enqueued after the commit

    assert jobs.deliver(outbox_id) == "sent"
    assert jobs.deliver(outbox_id) == "nothing to do"  # the same job again: no second email
    [message] = smtp.wait_for(1)
    assert smtp.data_commands == 1
    assert smtp.envelopes[0][1] == ["ada@example.org"]
    assert message["Subject"] == subject
    assert message["Message-ID"] == f"<outbox.{outbox_id}@turnout.example>"
    assert link(message, path).startswith(f"https://turnout.example{path}")
    assert "Ada Lovelace" in text_of(message)
    assert not any(part.get_content_type() == "text/calendar" for part in message.walk())
    [row] = outbox_rows()
    assert row.status == "sent" and row.attempts == 1


def test_an_event_kind_without_an_event_is_refused_by_the_schema(app_ctx, make_user):
    from sqlalchemy.exc import IntegrityError

    person = make_user()
    with pytest.raises(IntegrityError), write_session() as session:
        session.connection().execute(services._INSERT_MAIL, services.mail_row(
            MailKind.CONFIRMATION, event_id=None, user_id=person.id, registration_id=None))
    with pytest.raises(ValueError, match="event's email"), write_session() as session:
        services.add_account_mail(session, MailKind.CONFIRMATION, user_id=person.id)
    assert outbox_rows() == []


def test_the_reset_link_is_signed_when_sent_and_stored_nowhere(app_ctx, smtp, make_user):
    from webapp.auth.links import read_reset_token

    person = make_user()
    first = write_account_mail(MailKind.PASSWORD_RESET, person.id)
    second = write_account_mail(MailKind.PASSWORD_RESET, person.id)
    jobs.deliver(first)
    jobs.deliver(second)
    one, two = smtp.wait_for(2)
    tokens = [link(m, "/password/reset/").rsplit("/", 1)[1] for m in (one, two)]
    for token in tokens:
        claim = read_reset_token(token)
        assert (claim.user_id, claim.session_version) == (person.id, 1)
    # Nothing of either link is in the outbox row.
    for row in outbox_rows():
        assert not any(token in str(value) for token in tokens
                       for value in vars(row).values())


def test_a_deleted_account_gets_no_email_of_any_kind(app_ctx, smtp, make_user, make_event):
    from webapp.auth.models import User
    from webapp.registrations import services as registrations
    from webapp.sqltypes import utcnow

    person = make_user()
    registrations.register(make_event().id, person.id)
    ids = [row.id for row in outbox_rows()] + [
        write_account_mail(kind, person.id) for kind in ACCOUNT_MAIL]
    with write_session() as session:
        session.execute(update(User).where(User.id == person.id).values(deleted_at=utcnow()))
    assert [jobs.deliver(outbox_id) for outbox_id in ids] == ["dropped"] * 4
    assert smtp.data_commands == 0
    assert {(row.status, row.last_error) for row in outbox_rows()} == {
        ("failed", "not sent: the account was deleted")}


# --- the To: header --------------------------------------------------------------------

@pytest.mark.parametrize("name", [STRANGE_NAME, 'Zoë, "Jo" <x>'])
@pytest.mark.parametrize("kind", ["event", MailKind.PASSWORD_RESET])
def test_a_name_with_commas_quotes_and_brackets_is_one_exact_recipient(
        app_ctx, smtp, make_user, make_event, kind, name):
    from webapp.registrations import services as registrations

    person = make_user(email="jo@example.org", name=name)
    if kind == "event":
        registrations.register(make_event().id, person.id)
        [row] = outbox_rows()
        outbox_id = row.id
    else:
        outbox_id = write_account_mail(kind, person.id)
    assert jobs.deliver(outbox_id) == "sent"

    [message] = smtp.wait_for(1)
    assert smtp.envelopes == [(smtp.envelopes[0][0], ["jo@example.org"])]
    assert recipients_as_read(message) == [(name, "jo@example.org")]
    # Python's own parser agrees (a name this short is one encoded word).
    [address] = message["To"].addresses
    assert (address.display_name, address.addr_spec) == (name, "jo@example.org")


def test_a_long_accented_name_is_folded_without_changing_it(app_ctx, smtp, make_user):
    name = "Zoë Ångström-Müller, née «Ωμέγα» " * 3
    name = " ".join(name.split())[:100]
    person = make_user(email="zoe@example.org", name=name)
    jobs.deliver(write_account_mail(MailKind.ACCOUNT_EXISTS, person.id))
    [message] = smtp.wait_for(1)
    assert recipients_as_read(message) == [(name, "zoe@example.org")]
    folded = [line for key, value in message.raw_items() if key == "To"
              for line in str(value).splitlines()]
    assert len(folded) > 1 and all(len(line) <= 78 for line in folded)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
                    min_size=1, max_size=100))
def test_any_name_comes_back_exactly(app_ctx, name):
    """Every name a person can have (one line, 1 to 100 characters) reaches a mail client
    as itself, one recipient, in lines of at most 78 characters."""
    import email
    import email.policy

    from webapp.mail.compose import PersonalMessage, one_line

    name = one_line(name)
    if not name:
        return
    sent = PersonalMessage(subject="s", recipients=[(name, "jo@exämple.org")], body="b",
                           sender="Turnout <noreply@turnout.local>")
    message = email.message_from_bytes(sent.as_bytes(), policy=email.policy.default)
    assert recipients_as_read(message) == [(name, "jo@xn--exmple-cua.org")]
    [folded] = [str(value) for key, value in message.raw_items() if key == "To"]
    first, *more = folded.splitlines()
    assert len("To: " + first) <= 78 and all(len(line) <= 78 for line in more)
    assert sent.send_to == {"jo@exämple.org"}  # the envelope: the address alone
