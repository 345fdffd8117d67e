"""`POST /v1/access/check`, answered without Flask's per-request machinery when it can be.

A portal backend asks for a decision on every page it renders, so this endpoint's cost is the
service's cost. Flask's request context, routing, hooks and response object cost more than the
decision itself; this WSGI layer in front of the Flask app reads a plain JSON check, asks the
access service exactly as the Flask view does (`authz.service.access.AccessService.check`) and writes
the 200 answer (with orjson), with the request id, metrics and access log line of every other
request (`api.observability.record`).

Anything else is handed to the Flask app untouched, body included: another path or method, a
body that is not a bounded JSON object, a request without a bearer token, and any error the
service raises (401, 403, 400, 503...). So every error answer still comes from the one place
errors become HTTP responses (`api.problems`), and the Flask view stays the reference. While
rate limits are on (`AUTHZ_RATE_LIMIT`), every check goes through Flask, where they apply.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from flask import Flask

from api import metrics, observability
from api.auth import bearer_from
from api.request import is_json, json_object
from authz.service import access

PATH = "/v1/access/check"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _HandOver(Exception):
    """This request is Flask's to answer."""


class CheckPath:
    """WSGI middleware: the check endpoint's answers that are decisions, else the Flask app."""

    def __init__(self, app: Flask, flask_wsgi: WsgiApp) -> None:
        self.flask_wsgi = flask_wsgi
        self.runtime = app.extensions["authz"]
        self.max_body: int = app.config["MAX_CONTENT_LENGTH"]
        self.enabled = "authz.limiter" not in app.extensions
        m = metrics.metrics()
        self._decided = {
            True: m.decisions.labels("check", "allowed"),
            False: m.decisions.labels("check", "denied"),
        }

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if (
            not self.enabled
            or environ.get("PATH_INFO") != PATH
            or environ.get("REQUEST_METHOD") != "POST"
        ):
            return self.flask_wsgi(environ, start_response)
        started = time.perf_counter()
        try:
            raw = self._body(environ)
        except _HandOver:
            return self.flask_wsgi(environ, start_response)
        # Flask reads the same bytes if it has to answer after all.
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            answer, principal = self._decide(environ, raw)
        except Exception:  # every error is answered by Flask, the one way
            return self.flask_wsgi(environ, start_response)
        self._decided[bool(answer["allowed"])].inc()
        payload = orjson.dumps(answer, option=orjson.OPT_APPEND_NEWLINE)
        request_id = observability.new_request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(payload))),
                (observability.REQUEST_ID_HEADER, request_id),
            ],
        )
        observability.record(
            "POST", PATH, 200, time.perf_counter() - started, request_id, principal
        )
        return [payload]

    def _body(self, environ: dict[str, Any]) -> bytes:
        """The request body when it is a JSON body of a stated, allowed length."""
        if not is_json(environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()):
            raise _HandOver
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            raise _HandOver from None
        if not 0 < length <= self.max_body:
            raise _HandOver
        raw: bytes = environ["wsgi.input"].read(length)
        return raw

    def _decide(self, environ: dict[str, Any], raw: bytes) -> tuple[dict[str, Any], Any]:
        token = bearer_from(environ.get("HTTP_AUTHORIZATION", ""))
        if token is None:
            raise _HandOver
        body = json_object(raw)  # what it refuses, the Flask view answers
        service = access.service(self.runtime)
        fresh = service.begin(token, body.get("consistency"))
        return service.check(fresh, body), fresh.principal


def install(app: Flask) -> None:
    """Put the check path in front of the Flask app (after every extension is set up)."""
    app.wsgi_app = CheckPath(app, app.wsgi_app)  # type: ignore[method-assign]
