"""Outgoing email through a transactional outbox.

A writer adds an OutboxMessage in the same SQL transaction as the change it
announces; after the commit the web process enqueues an RQ job for it; the
worker claims the row, sends it over SMTP and marks it sent. A sweeper
re-enqueues rows whose job was lost (Redis down, process killed).
"""

from flask import Blueprint

# No routes: the blueprint only makes templates/mail/* visible to render_template.
bp = Blueprint("mail", __name__, template_folder="templates")
