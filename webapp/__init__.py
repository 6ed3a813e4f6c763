"""Turnout: event registration that never oversells. create_app() builds the app."""

from __future__ import annotations

from typing import Any

from flask import Flask, request, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp import config as config_module


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: settings from the environment, overridden by `config` (tests)."""
    app = Flask(__name__, instance_path=str(config_module.INSTANCE_DIR))
    app.config.update(config_module.from_env())
    if config:
        app.config.update(config)
    _refuse_a_weak_secret(app)
    if app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = config_module.normalize_database_url(
            app.config["SQLALCHEMY_DATABASE_URI"])
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)  # Redis down: don't lock people out
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)

    configure_extensions(app)
    configure_blueprints(app)
    configure_security(app)
    configure_cli(app)
    return app


def _refuse_a_weak_secret(app: Flask) -> None:
    """Sessions, API tokens and reset links are all signed with SECRET_KEY: with a known
    or guessable one, anyone can forge them. Production refuses to start with one."""
    if app.testing or app.config.get("TURNOUT_ENV") != "production":
        return
    problem = config_module.secret_key_problem(app.config.get("SECRET_KEY"))
    if problem:
        raise RuntimeError(
            f"Refusing to start: {problem}. Anyone who knows or guesses it can forge "
            f"sessions and API tokens. Set SECRET_KEY to at least "
            f"{config_module.SECRET_KEY_MIN_BYTES} random bytes, e.g. the output of "
            f"{config_module.GENERATE_KEY_HINT}.")


def configure_extensions(app: Flask) -> None:
    from webapp import database, logs
    from webapp.auth import sessions
    from webapp.auth.tokens import load_token_user
    from webapp.extensions import csrf, db, limiter, login_manager, mail, migrate, redis_store
    from webapp.htmx import full_redirect

    logs.init_app(app)
    database.configure(app)  # engine options: before db.init_app makes the engine
    db.init_app(app)
    database.init_app(app)
    migrate.init_app(app, db, directory=str(app.root_path + "/../migrations"))
    csrf.init_app(app)
    mail.init_app(app)
    limiter.init_app(app)
    redis_store.init_app(app)

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in first."
    login_manager.login_message_category = "info"
    login_manager.user_loader(sessions.load_user)  # the session's lifetimes, then its person
    sessions.init_app(app)
    login_manager.request_loader(load_token_user)  # API bearer tokens, /api/ only

    @login_manager.unauthorized_handler
    def _sign_in_first():
        from flask import flash

        from webapp.auth.views import safe_next
        from webapp.http_errors import error_body, wants_json

        if wants_json():
            return error_body("unauthorized", "Sign in first.", 401)
        # After signing in, come back to the page the person was on, not to a POST URL.
        if request.method == "GET":
            back = request.full_path.rstrip("?")
        else:
            back = _local_referrer() or url_for("events.index")
        flash("Please sign in first.", "info")
        return full_redirect(url_for("auth.login", next=safe_next(back, "/")))


def _local_referrer() -> str | None:
    from urllib.parse import urlsplit

    referrer = request.headers.get("HX-Current-URL") or request.referrer
    if not referrer:
        return None
    parts = urlsplit(referrer)
    if parts.netloc and parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def configure_blueprints(app: Flask) -> None:
    from webapp.routing import IdConverter

    # Before any rule is added: every id in a URL is <id:...>, 1 to 2**31 - 1.
    app.url_map.converters["id"] = IdConverter
    from webapp.accounts import bp as accounts_bp
    from webapp.api import bp as api_bp
    from webapp.auth import bp as auth_bp
    from webapp.events import bp as events_bp
    from webapp.health import bp as health_bp
    from webapp.mail import bp as mail_bp
    from webapp.organizer import bp as organizer_bp
    from webapp.recovery import bp as recovery_bp
    from webapp.registrations import bp as registrations_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(events_bp)
    app.register_blueprint(mail_bp)
    app.register_blueprint(registrations_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(organizer_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(recovery_bp)


# htmx runs with allowEval and inline indicator styles off, so nothing inline is needed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def configure_security(app: Flask) -> None:
    from webapp.http_errors import register_handlers

    register_handlers(app)
    hops = app.config["PROXY_FIX_TRUSTED_HOPS"]
    if hops:
        # Exactly the proxies we run (nginx): one hop trusted, a spoofed extra hop ignored.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    @app.after_request
    def _security_headers(response):
        h = response.headers
        h.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("X-Frame-Options", "DENY")
        if app.config["SESSION_COOKIE_SECURE"]:
            h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        # Pages, fragments and JSON speak of a signed-in person (their registrations,
        # attendee lists, data export) or may: nothing in between keeps a copy. A view
        # that is safe to cache says so itself.
        if request.endpoint != "static" and "Cache-Control" not in h:
            h["Cache-Control"] = "no-store"
        return response


def configure_cli(app: Flask) -> None:
    from webapp.cli import register_commands

    register_commands(app)
