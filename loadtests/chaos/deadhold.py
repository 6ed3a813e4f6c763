"""`python -m loadtests.chaos.deadhold EVENT USER TOKEN`: hold a seat through the gate's
own reserve() and exit at once, as a worker killed between the gate and SQL would."""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> None:
    from webapp import create_app
    from webapp.registrations.gate import get_gate

    event_id, user_id, token = int(argv[0]), int(argv[1]), argv[2]
    app = create_app()
    with app.app_context():
        decision = get_gate().reserve(event_id, user_id, token)
    print(decision.status, decision.seats_left, flush=True)
    os._exit(0)  # no release, no cleanup: the hold stays behind


if __name__ == "__main__":
    main(sys.argv[1:])
