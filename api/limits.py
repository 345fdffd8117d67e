"""Rate limits per OAuth client on the token and access-check endpoints (flask-limiter).

`AUTHZ_RATE_LIMIT` (e.g. `600/minute`) turns them on; `AUTHZ_RATE_LIMIT_STORAGE` (default
`memory://`, or `redis://host:6379`) is where the counters live, so replicas can share them.
The key is the OAuth client: the `client_id` claim of a verified bearer token, or the client
authenticating at the token endpoint; requests with neither are limited by remote address.
"""

from __future__ import annotations

import jwt
from flask import Flask, Response, g, jsonify, request
from flask_limiter import Limiter, RateLimitExceeded

from api.auth import bearer_from
from api.metrics import metrics
from api.problems import problem
from api.runtime import runtime
from authz.base.errors import StoreUnavailable, Unauthenticated
from authz.service import access
from authz.tokens import rfc9068

TOKEN_PATH = "/oauth/token"
#: The paths that are limited. The policy engine's check endpoints join when they exist.
LIMITED_PATHS = frozenset({TOKEN_PATH, "/v1/access/check", "/v1/access/check-batch"})


def client_key() -> str:
    """Who to count this request against."""
    if request.path == TOKEN_PATH:
        auth = request.authorization
        if auth is not None and auth.type == "basic" and auth.username:
            return f"client:{auth.username}"
        assertion = request.form.get("client_assertion")
        if assertion:
            # private_key_jwt: iss = sub = client_id (RFC 7523 §3); verified later by the grant.
            try:
                claimed = jwt.decode(assertion, options={"verify_signature": False})
            except jwt.PyJWTError:
                claimed = {}
            if isinstance(claimed.get("iss"), str):
                return f"client:{claimed['iss']}"
        if request.form.get("client_id"):
            return f"client:{request.form['client_id']}"
    else:
        token = bearer_from(request.headers.get("Authorization", ""))
        if token is not None:
            try:
                # Signature only: a forged token must not spend another client's budget. The
                # access service's cache holds only tokens whose signature verified (until
                # `exp`), so the check that follows does not pay for an ES256 verify twice.
                claims, _ = access.service(runtime()).tokens.verify(token)
            except (rfc9068.InvalidToken, Unauthenticated, StoreUnavailable):
                claims = {}
            if isinstance(claims.get("client_id"), str):
                return f"client:{claims['client_id']}"
    return f"addr:{request.remote_addr or 'unknown'}"


def init_app(app: Flask) -> None:
    """Limit the token and check endpoints when `AUTHZ_RATE_LIMIT` is set."""
    settings = app.extensions["authz"].settings
    if not settings.rate_limit:
        return
    limiter = Limiter(
        key_func=client_key,
        app=app,
        default_limits=[settings.rate_limit],
        default_limits_exempt_when=lambda: request.path not in LIMITED_PATHS,
        storage_uri=settings.rate_limit_storage,
        headers_enabled=True,
        key_prefix="authz",
        strategy="moving-window",
    )
    app.extensions["authz.limiter"] = limiter

    @app.errorhandler(RateLimitExceeded)
    def _limited(exc: RateLimitExceeded) -> Response:
        route = request.url_rule.rule if request.url_rule is not None else request.path
        metrics().rate_limited.labels(route).inc()
        detail = f"rate limit {exc.description} exceeded for this client; retry later"
        g.rate_limited = True
        if request.path == TOKEN_PATH:
            # RFC 6749 has no rate-limit error; clients retry on temporarily_unavailable, and
            # RFC 6585 §4 gives the status and Retry-After.
            response = jsonify({"error": "temporarily_unavailable", "error_description": detail})
            response.status_code = 429
            response.headers["Cache-Control"] = "no-store"
            return response
        return problem(429, "Too many requests", detail, "rate-limited")
