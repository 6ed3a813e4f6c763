"""The event schemas, called directly (forms and the API reuse them)."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from tests.support.event_data import event_create
from webapp.errors import Invalid
from webapp.events.schemas import EventCreate, EventUpdate
from webapp.http_errors import status_of
from webapp.validation import validation_error_to_invalid


def test_schemas_accept_python_values_from_forms():
    """Forms pass ints, bools and aware datetimes; naive ones are refused with a clear message."""
    data = event_create(capacity=7, waitlist_capacity=0)
    assert data.capacity == 7 and data.waitlist_capacity == 0
    assert data.starts_at.tzinfo is not None
    with pytest.raises(ValidationError) as caught:
        event_create(starts_at=datetime(2099, 1, 1, 10, 0))
    invalid = validation_error_to_invalid(caught.value)
    assert invalid.fields[0]["field"] == "starts_at"
    assert "time zone offset" in invalid.message


def test_validation_error_to_invalid_lists_every_field_once():
    with pytest.raises(ValidationError) as caught:
        EventCreate.model_validate({"title": "", "capacity": 0, "bogus": 1})
    invalid = validation_error_to_invalid(caught.value)
    assert isinstance(invalid, Invalid) and status_of(invalid) == 400
    fields = [f["field"] for f in invalid.fields]
    assert fields == ["title", "starts_at", "ends_at", "location", "capacity", "bogus"]
    assert invalid.message.startswith("title: must not be empty; starts_at: is required")


def test_event_update_refuses_null_except_waitlist_capacity():
    assert EventUpdate.model_validate({"waitlist_capacity": None}).changes() == {
        "waitlist_capacity": None}
    for name in ("title", "capacity", "starts_at", "waitlist_enabled", "location"):
        with pytest.raises(ValidationError):
            EventUpdate.model_validate({name: None})
