"""Bearer authentication: the one place identity comes from (a verified token)."""

from __future__ import annotations

from flask import g, request

from api.runtime import runtime
from authz.base.errors import Unauthenticated
from authz.base.principals import Principal
from authz.oauth import token_status


def bearer_from(header: str) -> str | None:
    """The token of an `Authorization: Bearer …` header value, or None."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def bearer_token() -> str:
    """The bearer token of the request, or Unauthenticated."""
    token = bearer_from(request.headers.get("Authorization", ""))
    if token is None:
        raise Unauthenticated(
            "send an access token issued by this service: Authorization: Bearer …"
        )
    return token


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
