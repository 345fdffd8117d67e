"""Bearer authentication: the one place identity comes from (a verified token)."""

from __future__ import annotations

from flask import g, request

from api.runtime import runtime
from authz import token_status
from authz.errors import Unauthenticated
from authz.principals import Principal


def bearer_token() -> str:
    """The bearer token of the request, or Unauthenticated."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "send an access token issued by this service: Authorization: Bearer …"
        )
    return token.strip()


def principal() -> Principal:
    """The caller, from a token that is valid and active right now."""
    cached: Principal | None = g.get("principal")
    if cached is not None:
        return cached
    status = token_status.check(runtime(), bearer_token())
    if not status.active:
        raise Unauthenticated(f"access token rejected: {status.reason}")
    found = Principal.from_claims(status.claims)
    g.principal = found
    return found
