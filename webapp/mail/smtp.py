"""Sending over SMTP with Flask-Mail, and telling a temporary failure from a permanent one."""

from __future__ import annotations

import smtplib

from flask import current_app
from flask_mail import Connection, Message

from webapp.extensions import mail


class TemporaryFailure(Exception):
    """Try again later: a 4xx answer, a refused or dropped connection, a timeout."""


class ServerUnreachable(TemporaryFailure):
    """No SMTP server answered at all (refused, timed out, no such host): an outage, which
    says nothing about the message, so it never counts towards giving up on it."""


class PermanentFailure(Exception):
    """Do not try again: a 5xx answer (no such mailbox, rejected as spam, ...)."""


class _Connection(Connection):
    """Flask-Mail's connection with a socket timeout, so a hung server cannot hold a worker."""

    def configure_host(self):
        timeout = current_app.config["MAIL_TIMEOUT_SECONDS"]
        m = self.mail
        try:
            if m.use_ssl:
                host = smtplib.SMTP_SSL(m.server, m.port, timeout=timeout)
            else:
                host = smtplib.SMTP(m.server, m.port, timeout=timeout)
        except (OSError, smtplib.SMTPConnectError) as exc:
            raise ServerUnreachable(f"{m.server}:{m.port}: {type(exc).__name__}: {exc}") from exc
        if m.use_tls:
            host.starttls()
        if m.username and m.password:
            host.login(m.username, m.password)
        return host


def send(message: Message) -> None:
    """Deliver one message to the SMTP server; raise TemporaryFailure (ServerUnreachable when
    none answered) or PermanentFailure."""
    state = current_app.extensions["mail"]
    try:
        with _Connection(state) as connection:
            connection.send(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise _by_code(min(codes), f"recipient refused: {exc.recipients}") from exc
    except smtplib.SMTPResponseException as exc:  # sender refused, data refused, auth ...
        raise _by_code(exc.smtp_code, f"{exc.smtp_code} {_text(exc.smtp_error)}") from exc
    except (smtplib.SMTPException, OSError) as exc:  # connect refused, dropped, timeout
        raise TemporaryFailure(f"{type(exc).__name__}: {exc}") from exc


def _by_code(code: int, text: str) -> Exception:
    return PermanentFailure(text) if 500 <= code < 600 else TemporaryFailure(text)


def _text(error: bytes | str) -> str:
    return error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)


__all__ = ["PermanentFailure", "ServerUnreachable", "TemporaryFailure", "mail", "send"]
