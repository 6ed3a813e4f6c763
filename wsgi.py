"""The WSGI entry point: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`, `flask --app wsgi ...`."""

from webapp import create_app

app = create_app()
