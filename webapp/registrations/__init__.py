"""Registering, cancelling, the confirmation page and "My Registered Events"."""

from flask import Blueprint

bp = Blueprint("registrations", __name__, template_folder="templates")


@bp.record_once
def _states_for_templates(state) -> None:
    """Templates compare with the enums, never with bare strings."""
    from webapp.registrations.models import Status
    from webapp.registrations.panel import PanelState

    state.app.jinja_env.globals.update(Status=Status, PanelState=PanelState)


from webapp.registrations import views  # noqa: E402,F401
