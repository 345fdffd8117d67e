"""Request ids, one structured access log line per request, and request metrics.

Logs are JSON lines (`configure_logging`). Neither tokens nor secrets reach them: the access line
names the route pattern (never the raw path, which can hold an invite token) and a filter masks
anything that looks like a JWT, a bearer credential or a secret parameter in every record.
"""

from __future__ import annotations

import json
import logging
import random
import re
import sys
import time
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from werkzeug.exceptions import RequestEntityTooLarge

from api.metrics import metrics, observe_token

log = logging.getLogger("authz.access")
REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_SECRETS = [
    (re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[jwt]"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (
        re.compile(
            r"(?i)\b(client_secret|subject_token|actor_token|client_assertion|token|password)"
            r"(\"?\s*[=:]\s*\"?)[^\s&\",]+"
        ),
        r"\1\2[redacted]",
    ),
]
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def scrub(text: str) -> str:
    """`text` with tokens, credentials and secret parameters masked."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            out["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record logged while handling it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context() and not hasattr(record, "request_id"):
            record.request_id = g.get("request_id")
        return True


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for the whole process (the `serve` command and its workers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # Werkzeug's own access line repeats the raw path (which may hold an invite token).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def _request_id() -> str:
    """128 random bits as hex. A correlation handle, not a secret: the `random` module's PRNG
    (which Python reseeds in every forked worker) serves. `uuid4` reads `os.urandom`, a syscall
    that releases the GIL on every request; under gthread the request thread then queues for
    the GIL behind the other request threads and the decision-log writer."""
    return f"{random.getrandbits(128):032x}"


def new_request_id(incoming: str) -> str:
    """The caller's `X-Request-Id` when it is a safe token, else a new one."""
    return incoming if _SAFE_ID.fullmatch(incoming) else _request_id()


_MAX_CHILDREN = 512


class _Children:
    """Labelled metric children by label values: `labels()` costs more than the increment."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], Any] = {}
        self.latency: dict[tuple[str, str], Any] = {}

    def observe(self, method: str, route: str, status: int, elapsed: float) -> None:
        key = (method, route, str(status))
        counter = self.requests.get(key)
        if counter is None:
            counter = metrics().requests.labels(*key)
            if len(self.requests) < _MAX_CHILDREN:  # a client's odd methods must not grow it
                self.requests[key] = counter
        counter.inc()
        histogram = self.latency.get(key[:2])
        if histogram is None:
            histogram = metrics().latency.labels(method, route)
            if len(self.latency) < _MAX_CHILDREN:
                self.latency[key[:2]] = histogram
        histogram.observe(elapsed)


_children = _Children()


def record(
    method: str,
    route: str,
    status: int,
    elapsed: float,
    request_id: str,
    principal: Any = None,
    problem: str | None = None,
) -> None:
    """Count, time and log one answered request (every path that answers one calls this)."""
    _children.observe(method, route, status, elapsed)
    if log.isEnabledFor(logging.INFO):
        log.info(
            "%s %s %s",
            method,
            route,
            status,
            extra={
                "request_id": request_id,
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "principal": principal.label if principal is not None else None,
                "oauth_client": principal.client_id if principal is not None else None,
                "problem": problem,
            },
        )


def init_app(app: Flask) -> None:
    """Give every request an id, time it, count it and log it in one line."""

    @app.before_request
    def _start() -> None:
        g.request_id = new_request_id(request.headers.get(REQUEST_ID_HEADER, ""))
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id") or _request_id()
        response.headers[REQUEST_ID_HEADER] = request_id
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        body = _json(response) if response.status_code >= 400 else None
        if body and (
            body.get("type", "").endswith("/store-unavailable")
            or (body.get("error") == "temporarily_unavailable" and response.status_code == 503)
        ):
            metrics().store_errors.labels("unavailable").inc()
        if request.endpoint == "oauth.token":
            result = {"error": "rate_limited"} if g.get("rate_limited") else body
            try:
                grant_type = request.form.get("grant_type")
            except RequestEntityTooLarge:
                grant_type = None  # the body was never read: it is over the limit
            observe_token(grant_type, response.status_code, result)
        record(
            request.method,
            route,
            response.status_code,
            elapsed,
            request_id,
            g.get("principal"),
            body.get("type") or body.get("error") if body else None,
        )
        return response


def _json(response: Response) -> dict[str, Any] | None:
    if response.is_streamed or not response.is_json:
        return None
    data = response.get_json(silent=True)
    return data if isinstance(data, dict) else None
