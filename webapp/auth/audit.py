"""The security audit trail: one row per sign-in, failure, reset, change, role change or deletion.

Rows are written in their own short transaction (or in the caller's, when the
event is part of a change the caller commits), and also logged as one JSON line
on the `turnout.security` logger. Services never read the request: the web layer
passes them an Origin (client address and request id), made by Origin.of_request().
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import g, request
from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session

from webapp.auth.models import SecurityEvent, SecurityKind, User
from webapp.database import write_session
from webapp.extensions import db

log = logging.getLogger("turnout.security")

EMAIL_MAX, DETAIL_MAX = 254, 200


@dataclass(frozen=True)
class Origin:
    """Where a request came from: the client address and the request id."""

    ip: str | None = None
    request_id: str | None = None

    @classmethod
    def of_request(cls) -> Origin:
        """The current request's origin; the web layer hands it to services."""
        return cls(ip=request.remote_addr, request_id=g.get("request_id"))


NOWHERE = Origin()  # the command line, the worker


def _row(kind: SecurityKind, user_id: int | None, email: str | None, origin: Origin,
         detail: str | None) -> dict:
    return {"kind": kind, "user_id": user_id,
            "email": email.strip().lower()[:EMAIL_MAX] if isinstance(email, str) else None,
            "ip": (origin.ip or None) and origin.ip[:64],
            "request_id": (origin.request_id or None) and origin.request_id[:64],
            "detail": detail[:DETAIL_MAX] if detail else None}


def record(kind: SecurityKind, *, user_id: int | None = None, email: str | None = None,
           origin: Origin = NOWHERE, detail: str | None = None,
           session: Session | None = None) -> None:
    """Keep one security event: in `session`'s transaction when given, else in its own."""
    row = _row(kind, user_id, email, origin, detail)
    log.info("security event", extra={"security_event": str(kind), "user_id": user_id,
                                      "email": row["email"], "ip": row["ip"],
                                      "request_id": row["request_id"], "detail": detail})
    if session is not None:
        session.execute(insert(SecurityEvent).values(**row))
        return
    with write_session() as own:
        own.execute(insert(SecurityEvent).values(**row))


def events_of(user_id: int) -> list[SecurityEvent]:
    """A person's own security events, oldest first (their data export)."""
    return list(db.session.scalars(select(SecurityEvent).where(SecurityEvent.user_id == user_id)
                                   .order_by(SecurityEvent.id)))


def recent(*, email: str | None = None, kind: str | None = None,
           limit: int = 100) -> list[SecurityEvent]:
    """The newest events first, for operators (`flask security-log`): about an address
    (the account that has it now, or any attempt that named it) and of a kind."""
    statement = select(SecurityEvent)
    if email:
        address = email.strip().lower()
        owner = select(User.id).where(User.email == address).scalar_subquery()
        statement = statement.where(or_(SecurityEvent.email == address,
                                        SecurityEvent.user_id == owner))
    if kind:
        statement = statement.where(SecurityEvent.kind == kind)
    return list(db.session.scalars(statement.order_by(SecurityEvent.id.desc()).limit(limit)))
