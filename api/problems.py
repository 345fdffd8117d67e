"""RFC 9457 problem details: the one place errors become HTTP responses."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from authz.base.errors import AuthzError, StoreUnavailable

log = logging.getLogger("authz.api")
PROBLEM_BASE = "https://authz.dev/problems/"
MEDIA_TYPE = "application/problem+json"


def problem(status: int, title: str, detail: str, slug: str, **extra: Any) -> Response:
    """A problem+json response."""
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    response = jsonify(body)
    response.status_code = status
    response.mimetype = MEDIA_TYPE
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


def init_app(app: Flask) -> None:
    """Map core errors, HTTP errors and anything unexpected to problems."""

    @app.errorhandler(AuthzError)
    def _core(exc: AuthzError) -> Response:
        newest = getattr(exc, "newest", None)
        return problem(
            exc.status,
            exc.title,
            exc.detail,
            exc.slug,
            errors=getattr(exc, "errors", None),
            newest_revision=str(newest) if newest is not None else None,
        )

    @app.errorhandler(StoreUnavailable)
    def _unavailable(exc: StoreUnavailable) -> Response:
        if request.path.startswith("/oauth/"):
            # OAuth clients read RFC 6749 §5.2 errors; issue nothing while the store is away.
            response = jsonify(
                {"error": "temporarily_unavailable", "error_description": exc.detail}
            )
            response.status_code = 503
            response.headers["Cache-Control"] = "no-store"
            response.headers["Retry-After"] = "1"
            return response
        response = problem(exc.status, exc.title, exc.detail, exc.slug)
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        slug = (exc.name or "error").lower().replace(" ", "-")
        response = problem(status, exc.name or "Error", exc.description or exc.name or "", slug)
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return problem(500, "Internal error", "the service failed; nothing was changed", "internal")
