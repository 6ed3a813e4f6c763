"""RQ job functions for email (run by `python -m workers`, inside the app context)."""

from __future__ import annotations

import logging
import os
import time

from webapp.mail import services, smtp
from webapp.mail.compose import compose

log = logging.getLogger("turnout.mail")

_pid = os.getpid()


def deliver(outbox_id: int) -> str:
    """Send one outbox row, once. Raises on a temporary failure so RQ retries with backoff."""
    from flask import current_app
    from rq import get_current_job

    started = time.monotonic()
    _fresh_connections_after_fork()
    job = get_current_job()
    timeout = (job.timeout if job and job.timeout and job.timeout > 0
               else current_app.config["MAIL_JOB_TIMEOUT_SECONDS"])
    # Recording the outcome may wait for the database through 3/4 of the job's time.
    claimed = services.claim(outbox_id, record_until=started + timeout * 3 / 4)
    if claimed is None:  # sent, failed, or another sender holds a live claim
        return "nothing to do"
    row = services.load(outbox_id)
    # Deletion withdraws what is unsent (services.withdraw_mail_to); this catches a row
    # written after it, or one a job claimed before it.
    if row.user.deleted_at is not None:
        services.mark_failed(claimed, services.WITHDRAWN_ACCOUNT_DELETED)
        log.info("email dropped: account deleted", extra={"outbox_id": outbox_id,
                                                          "kind": row.kind})
        return "dropped"
    try:
        message = compose(row)
        smtp.send(message)
    except smtp.PermanentFailure as exc:
        services.mark_failed(claimed, str(exc))
        log.warning("email refused permanently", extra={"outbox_id": outbox_id,
                                                       "error": str(exc)})
        return "failed"
    except Exception as exc:
        max_attempts = current_app.config["MAIL_MAX_ATTEMPTS"]
        # An SMTP outage is waited out however long it lasts (SPEC: confirmations made
        # during an outage go out within 5 minutes of its end); a 4xx answer is not.
        if claimed.attempt >= max_attempts and not isinstance(exc, smtp.ServerUnreachable):
            services.mark_failed(claimed, f"gave up after {claimed.attempt} attempts: {exc}")
            log.error("email given up", extra={"outbox_id": outbox_id, "error": str(exc)})
            return "failed"
        intervals = services.retry_intervals() or [60]
        delay = intervals[min(claimed.attempt - 1, len(intervals) - 1)]
        services.mark_for_retry(claimed, str(exc), delay)
        log.warning("email not sent, will retry", extra={
            "outbox_id": outbox_id, "attempt": claimed.attempt, "retry_in_s": delay,
            "error": str(exc)})
        raise
    services.mark_sent(claimed)
    log.info("email sent", extra={"outbox_id": outbox_id, "kind": row.kind,
                                  "attempt": claimed.attempt})
    return "sent"


def _fresh_connections_after_fork() -> None:
    """RQ forks a work-horse per job: never reuse a pooled socket of the parent."""
    global _pid
    if os.getpid() != _pid:
        from webapp.extensions import db, redis_store

        _pid = os.getpid()
        db.engine.dispose(close=False)
        redis_store.reset()
