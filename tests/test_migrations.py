"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import Migrate  # noqa: F401  (keeps the import path honest)
from sqlalchemy import inspect

from tests.support.processes import ROOT


def test_one_head():
    from alembic.config import Config

    config = Config(str(ROOT / "migrations" / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def test_models_match_migrations(app_ctx):
    from webapp.extensions import db

    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_invariants_are_in_the_schema(app_ctx):
    from webapp.extensions import db

    inspector = inspect(db.engine)
    uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("registrations")}
    assert ("event_id", "user_id") in uniques
    checks = " ".join(c["sqltext"] for c in inspector.get_check_constraints("events"))
    assert "confirmed_count <= capacity" in checks


def test_schema_refuses_an_oversold_counter_and_a_second_row(app_ctx, make_event, make_user):
    """Even raw SQL that skips the service cannot oversell or double-book."""
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from webapp.extensions import db

    event = make_event(capacity=2)
    user = make_user()
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(text("UPDATE events SET confirmed_count = 3 WHERE id = :e"), {"e": event.id})
    insert = text("INSERT INTO registrations (event_id, user_id, status, registered_at, updated_at)"
                  " VALUES (:e, :u, 'confirmed', :t, :t)")
    values = {"e": event.id, "u": user.id, "t": "2026-01-01 00:00:00"}
    with db.engine.begin() as conn:
        conn.execute(insert, values)
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(insert, values)
