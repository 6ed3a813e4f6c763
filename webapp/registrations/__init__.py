"""Registering, cancelling, the confirmation page and "My Registered Events"."""

from flask import Blueprint

bp = Blueprint("registrations", __name__, template_folder="templates")


@bp.record_once
def _states_for_templates(state) -> None:
    """Templates compare with the enums, never with bare strings; each Register form
    carries an Idempotency-Key of its own (webapp/registrations/idempotency.py)."""
    import uuid

    from webapp.registrations.models import Status
    from webapp.registrations.panel import PanelState

    state.app.jinja_env.globals.update(Status=Status, PanelState=PanelState,
                                       new_idempotency_key=lambda: uuid.uuid4().hex)


from webapp.registrations import views  # noqa: E402,F401
