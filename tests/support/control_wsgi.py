"""The control run's WSGI app for a live gunicorn: `tests.support.control_wsgi:app`.

The production app with the naive registration swapped in (control.py), the
seat gate off; TURNOUT_CONTROL_WINDOW_MS sets the check-to-write window.
"""

import os

from tests.support.control import WINDOW_ENV, WINDOW_MS, swap_in
from webapp import create_app

app = create_app({"SEAT_GATE_ENABLED": False})
swap_in(app, int(os.environ.get(WINDOW_ENV, WINDOW_MS)))
