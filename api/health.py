"""`/healthz` (the process answers) and `/readyz` (it can serve: store, keys, policy)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify

from api.metrics import freshness, observe_replica
from api.problems import problem
from api.runtime import runtime
from authz.base.errors import AuthzError
from authz.service.replication import listener_of

bp = Blueprint("health", __name__)
Check = Callable[[], str | None]
_CHECKS = "authz.readiness"


def add_check(app: Flask, name: str, check: Check) -> None:
    """Make readiness depend on `check`: it returns a detail to show, or raises when not ready."""
    app.extensions.setdefault(_CHECKS, {})[name] = check


def init_app(app: Flask) -> None:
    """Register the endpoints and the built-in checks (store and signing keys)."""
    rt = app.extensions["authz"]
    add_check(app, "store", lambda: rt.store.ping())

    def _keys() -> str:
        rt.keys.load()
        return f"signing key {rt.keys.signing_key().kid}"

    add_check(app, "signing_keys", _keys)

    def _replication() -> str:
        # Informational, never failing: a replica without its notification channel still
        # answers correctly (each check reads the revision); it is only colder.
        listener = listener_of(rt)
        if listener is None:
            if rt.store.published_revision() is not None:
                return "SQLite: writes publish their revision beside the database; checks read it"
            return "no notification channel (single process); checks read the revision"
        if listener.state.listening:
            return f"listening; {listener.state.notifications} notifications"
        return f"notification channel lost ({listener.state.last_error}); reconnecting"

    add_check(app, "replication", _replication)
    app.register_blueprint(bp)


@bp.get("/healthz")
def healthz() -> Response:
    # Deliberately touches nothing: a slow store must not get a live process restarted.
    response = jsonify({"status": "ok"})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/readyz")
def readyz() -> Response:
    results: dict[str, dict[str, Any]] = {}
    for name, check in current_app.extensions.get(_CHECKS, {}).items():
        try:
            detail = check()
        except (AuthzError, OSError, ValueError) as exc:
            detail_text = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
            results[name] = {"ok": False, "detail": detail_text}
        else:
            results[name] = {"ok": True, "detail": detail or "ok"}
    failed = [name for name, result in results.items() if not result["ok"]]
    if failed:
        response = problem(
            503,
            "Not ready",
            "; ".join(f"{name}: {results[name]['detail']}" for name in failed),
            "not-ready",
            checks=results,
        )
    else:
        state = freshness(runtime())
        observe_replica(state)
        response = jsonify(
            {
                "status": "ready",
                "revision": str(state.seen),
                "facts_revision": str(state.facts),
                "revision_lag": state.lag,
                "checks": results,
            }
        )
    response.headers["Cache-Control"] = "no-store"
    return response
