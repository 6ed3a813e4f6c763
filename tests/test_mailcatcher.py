"""make run's mail catcher: every message a real SMTP client sends lands as an .eml file."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from tests.support.processes import free_port
from webapp.mailcatcher import KeepAsFiles


def test_each_message_is_kept_as_a_file_named_by_its_subject(tmp_path, capsys):
    port = free_port()
    controller = Controller(KeepAsFiles(tmp_path / "mail"), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        for subject in ("You are registered: Jazz on the Roof", "???"):
            message = EmailMessage()
            message["From"], message["To"] = "turnout@example.com", "ada@example.com"
            message["Subject"] = subject
            message.set_content("See you there.")
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                smtp.send_message(message)
    finally:
        controller.stop()
    kept = sorted(p.name for p in (tmp_path / "mail").iterdir())
    assert len(kept) == 2
    assert kept[0].endswith("-0001-you-are-registered-jazz-on-the-roof.eml")
    assert kept[1].endswith("-0002-message.eml")  # nothing left of the subject
    assert b"See you there." in (tmp_path / "mail" / kept[0]).read_bytes()
    assert "mail  to ada@example.com: You are registered: Jazz on the Roof" in \
        capsys.readouterr().out
