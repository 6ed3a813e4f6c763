"""Background work: RQ jobs as plain functions, and the worker that runs them."""

QUEUES = ("emails", "default")
