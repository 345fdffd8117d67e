"""The app factory: `create_app(config)` builds everything; importing builds nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from api import (
    accounts,
    check_path,
    health,
    limits,
    metrics,
    oauth,
    observability,
    openapi,
    problems,
)
from api.access import bp as access_bp
from api.compliance import bp as compliance_bp
from authz.base.config import Settings
from authz.service.runtime import Runtime


def create_app(config: Mapping[str, Any] | Settings | None = None) -> Flask:
    """A Flask app over a runtime made from `config` (a Settings, a mapping of env-style
    `AUTHZ_*` names, or None for the process environment)."""
    if isinstance(config, Settings):
        settings = config
    else:
        settings = Settings.from_env(None if config is None else {**_env(), **config})
    app = Flask("authz")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    rt = Runtime.create(settings)
    app.extensions["authz"] = rt
    problems.init_app(app)
    oauth.build_server(app, rt)
    app.register_blueprint(oauth.bp)
    app.register_blueprint(accounts.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(compliance_bp)
    app.register_blueprint(access_bp)
    health.init_app(app)
    metrics.init_app(app)
    observability.init_app(app)
    limits.init_app(app)
    if settings.smtp_url:
        from authz.accounts.outbox import DeliveryLoop, SmtpSender

        loop = DeliveryLoop(rt.store, SmtpSender(settings.smtp_url, settings.mail_from))
        app.extensions["authz.outbox"] = loop
        loop.start()
    check_path.install(app)
    return app


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k.startswith("AUTHZ_")}
