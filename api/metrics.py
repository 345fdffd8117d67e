"""Prometheus metrics: requests, latency, token issuance, store errors, rate limiting, and how far
this replica's policy facts are behind the store (revision lag).

Under gunicorn, set `PROMETHEUS_MULTIPROC_DIR` (`authz serve --workers N` does) so that every
worker writes its samples there and `/metrics` adds them up, whichever worker answers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess
from sqlalchemy import event

from authz.base.errors import AuthzError
from authz.service.replication import ReplicaState, listener_of
from authz.service.runtime import Runtime

bp = Blueprint("metrics", __name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The RFC 6749/8693 error codes a token response can carry; anything else counts as "error".
TOKEN_RESULTS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "invalid_target",
        "temporarily_unavailable",
        "rate_limited",
    }
)


@dataclass(frozen=True)
class Metrics:
    requests: Counter
    latency: Histogram
    tokens: Counter
    decisions: Counter
    store_errors: Counter
    rate_limited: Counter
    store_revision: Gauge
    facts_revision: Gauge
    revision_lag: Gauge
    listening: Gauge
    notifications: Gauge
    reconnects: Gauge


_metrics: Metrics | None = None


def metrics() -> Metrics:
    """The process's metrics, registered once (several apps in one process share them)."""
    global _metrics
    if _metrics is None:
        _metrics = Metrics(
            requests=Counter(
                "authz_http_requests",
                "HTTP requests by route and status",
                ["method", "route", "status"],
            ),
            latency=Histogram(
                "authz_http_request_duration_seconds",
                "HTTP request latency by route",
                ["method", "route"],
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            ),
            tokens=Counter(
                "authz_token_requests",
                "Token endpoint requests by grant type and result (issued or the OAuth error)",
                ["grant_type", "result"],
            ),
            decisions=Counter(
                "authz_decisions",
                "Access decisions by endpoint and result (allowed or denied)",
                ["endpoint", "result"],
            ),
            store_errors=Counter(
                "authz_store_errors",
                "Store failures: lost connections, timeouts, unavailable answers",
                ["kind"],
            ),
            rate_limited=Counter(
                "authz_rate_limited", "Requests refused by a rate limit", ["route"]
            ),
            # Under gunicorn each worker is a replica of its own: the store's revision is the
            # newest any worker saw, the facts' the oldest, the lag the worst.
            store_revision=Gauge(
                "authz_store_revision",
                "Newest store revision this process saw",
                multiprocess_mode="livemax",
            ),
            facts_revision=Gauge(
                "authz_facts_revision",
                "Revision of the policy facts decisions use (oldest worker)",
                multiprocess_mode="livemin",
            ),
            revision_lag=Gauge(
                "authz_revision_lag",
                "Revisions the policy facts are behind the newest revision seen (worst worker)",
                multiprocess_mode="livemax",
            ),
            listening=Gauge(
                "authz_replication_listening",
                "1 while the LISTEN/NOTIFY channel is connected (0 if any worker lost it)",
                multiprocess_mode="livemin",
            ),
            notifications=Gauge(
                "authz_replication_notifications",
                "Revision notifications received",
                multiprocess_mode="livesum",
            ),
            reconnects=Gauge(
                "authz_replication_reconnects",
                "Times the notification channel was lost and reconnected",
                multiprocess_mode="livesum",
            ),
        )
    return _metrics


def init_app(app: Flask) -> None:
    """Count the store's errors and serve `/metrics`."""
    m = metrics()
    engine = app.extensions["authz"].store.engine

    @event.listens_for(engine, "handle_error")
    def _store_error(context: Any) -> None:
        m.store_errors.labels("disconnect" if context.is_disconnect else "error").inc()

    app.register_blueprint(bp)


def observe_replica(state: ReplicaState) -> None:
    """Publish one process's freshness (the listener calls this on every change)."""
    m = metrics()
    m.store_revision.set(state.seen)
    m.facts_revision.set(state.facts)
    m.revision_lag.set(state.lag)
    if state.channel:
        m.listening.set(1 if state.listening else 0)
    m.notifications.set(state.notifications)
    m.reconnects.set(state.reconnects)


def freshness(rt: Runtime) -> ReplicaState:
    """This process's freshness now: the store's revision (one read) against the facts'.

    Raises AuthzError when the store does not answer."""
    listener = listener_of(rt)
    state = dataclasses.replace(listener.state) if listener is not None else ReplicaState()
    state.seen = max(state.seen, rt.store.revision())
    service = rt.extras.get("access")
    if service is not None:
        state.facts = service.facts.revision
    else:
        # Nothing decided here yet: the facts will load at the newest revision on first use.
        state.facts = state.seen
    return state


def observe_decisions(endpoint: str, allowed: int, denied: int) -> None:
    """Count access decisions by result."""
    if allowed:
        metrics().decisions.labels(endpoint, "allowed").inc(allowed)
    if denied:
        metrics().decisions.labels(endpoint, "denied").inc(denied)


def observe_token(grant_type: str | None, status: int, body: Any) -> None:
    """Count one token endpoint answer by grant type and result."""
    known = {"client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"}
    grant = grant_type if grant_type in known else "other"
    if status == 200:
        result = "issued"
    else:
        error = body.get("error") if isinstance(body, dict) else None
        result = error if error in TOKEN_RESULTS else "error"
    metrics().tokens.labels(grant, result).inc()


@bp.get("/metrics")
def serve_metrics() -> Response:
    from api.runtime import runtime

    # The store may be away: then the store error counters tell that story.
    with contextlib.suppress(AuthzError):
        observe_replica(freshness(runtime()))
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
        data = generate_latest(registry)
    else:
        data = generate_latest(REGISTRY)
    return Response(data, mimetype=CONTENT_TYPE_LATEST)


def worker_exit(pid: int) -> None:
    """Gunicorn's child_exit hook: drop a dead worker's live gauges."""
    if os.environ.get(MULTIPROC_ENV):
        prom_multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
