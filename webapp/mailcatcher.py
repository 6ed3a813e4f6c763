"""A development mail catcher: a local SMTP server that keeps every message as a file.

`make run` starts it when MAIL_SERVER is unset, so a newcomer sees the emails:
each one lands in instance/mail/ as an .eml file and is announced with a line.
`python -m webapp.mailcatcher --port 8025 --dir instance/mail`
"""

from __future__ import annotations

import argparse
import email
import email.policy
import re
import signal
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller


class KeepAsFiles:
    """aiosmtpd handler: write each message to `directory` and print where it went."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls it by this name
        self.count += 1
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        subject = str(message.get("Subject", ""))
        slug = re.sub(r"[^a-z0-9]+", "-", subject.lower()).strip("-")[:50] or "message"
        path = self.directory / f"{time.strftime('%Y%m%d-%H%M%S')}-{self.count:04d}-{slug}.eml"
        path.write_bytes(envelope.content)
        print(f"mail  to {', '.join(envelope.rcpt_tos)}: {subject}  -> {path}", flush=True)
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--dir", type=Path, default=Path("instance/mail"))
    args = parser.parse_args()
    controller = Controller(KeepAsFiles(args.dir), hostname=args.host, port=args.port)
    controller.start()
    print(f"mail catcher on smtp://{args.host}:{args.port}, keeping messages in {args.dir}/",
          flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
