"""Background work: RQ jobs as plain functions, and the worker that runs them."""

from webapp.mail.services import QUEUE_NAME

QUEUES = (QUEUE_NAME,)  # the one queue: emails (everything else runs in the upkeep loop)
