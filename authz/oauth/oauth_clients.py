"""OAuth clients (portal backends): registration, lookup and the model Authlib expects."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin
from sqlalchemy import select

from authz.base import clock, ids
from authz.base.errors import NotFound, ValidationFailed
from authz.store.db import Store
from authz.store.models import OAuthClient, Organization

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
GRANT_TYPES = ("client_credentials", TOKEN_EXCHANGE)
AUTH_METHODS = ("client_secret_basic", "private_key_jwt")
#: Scopes an OAuth client can hold. Client scopes (`profile`, `billing`, …) are what user
#: tokens carry; `authz:*` scopes are the backend's own, via client_credentials.
SERVICE_SCOPES = ("authz:check", "authz:check:subjects", "authz:admin", "authz:review")


def hash_secret(secret: str) -> str:
    """Secrets are 256 random bits, so one SHA-256 is enough and keeps the token path fast."""
    return "sha256$" + hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class RegisteredClient(ClientMixin):  # type: ignore[misc]
    """A portal backend as Authlib sees it."""

    client_id: str
    org_id: str
    name: str
    secret_hash: str | None
    auth_method: str
    audiences: tuple[str, ...]
    scopes: frozenset[str]
    grant_types: tuple[str, ...]
    jwks: dict[str, Any] | None = field(default=None, compare=False)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        return " ".join(s for s in scope.split() if s in self.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        if not self.secret_hash:
            return False
        return hmac.compare_digest(self.secret_hash, hash_secret(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


def _record(row: OAuthClient) -> RegisteredClient:
    return RegisteredClient(
        client_id=row.client_id,
        org_id=row.org_id,
        name=row.name,
        secret_hash=row.secret_hash,
        auth_method=row.auth_method,
        audiences=tuple(row.audiences or ()),
        scopes=frozenset(row.scopes or ()),
        grant_types=tuple(row.grant_types or ()),
        jwks=row.jwks,
    )


def query_client(store: Store, client_id: str) -> RegisteredClient | None:
    """The active client with that id, or None."""
    if not isinstance(client_id, str) or len(client_id) > 40:
        return None
    with store.read() as session:
        row = session.get(OAuthClient, client_id)
        if row is None or row.disabled_at is not None:
            return None
        return _record(row)


def create_client(
    store: Store,
    actor: str,
    org_id: str,
    audiences: list[str],
    scopes: list[str],
    name: str = "",
    auth_method: str = "client_secret_basic",
    jwks: dict[str, Any] | None = None,
    grant_types: list[str] | None = None,
) -> dict[str, Any]:
    """Register a portal backend; the secret is returned once and stored hashed."""
    from authz.policy.grants import CLIENT_SCOPES

    errors: list[tuple[str, str]] = []
    if not audiences or not all(isinstance(a, str) and a for a in audiences):
        errors.append(("audience", "at least one audience is required"))
    unknown = sorted(set(scopes) - set(SERVICE_SCOPES) - set(CLIENT_SCOPES))
    if unknown:
        errors.append(("scope", f"unknown scopes: {', '.join(unknown)}"))
    if auth_method not in AUTH_METHODS:
        errors.append(("auth_method", f"must be one of {', '.join(AUTH_METHODS)}"))
    if auth_method == "private_key_jwt" and not (isinstance(jwks, dict) and jwks.get("keys")):
        errors.append(("jwks", "private_key_jwt needs the client's public JWKS"))
    grant_types = grant_types or list(GRANT_TYPES)
    if set(grant_types) - set(GRANT_TYPES):
        errors.append(("grant_type", f"must be among {', '.join(GRANT_TYPES)}"))
    if errors:
        raise ValidationFailed(errors)
    secret = secrets.token_urlsafe(32) if auth_method == "client_secret_basic" else None
    with store.write(actor, org_id) as txn:
        if txn.session.get(Organization, org_id) is None:
            raise NotFound(f"organization {org_id} not found")
        row = OAuthClient(
            client_id=ids.new_id("oc"),
            org_id=org_id,
            name=name,
            secret_hash=hash_secret(secret) if secret else None,
            auth_method=auth_method,
            jwks=jwks,
            audiences=sorted(set(audiences)),
            scopes=sorted(set(scopes)),
            grant_types=grant_types,
            created_at=clock.now(),
        )
        txn.session.add(row)
        txn.record(
            "oauth_client.created",
            row.client_id,
            None,
            {
                "client_id": row.client_id,
                "audiences": row.audiences,
                "scopes": row.scopes,
                "auth_method": auth_method,
            },
        )
    out: dict[str, Any] = {
        "client_id": row.client_id,
        "org_id": org_id,
        "audiences": row.audiences,
        "scopes": row.scopes,
        "auth_method": auth_method,
        "grant_types": grant_types,
        "revision": str(txn.revision),
    }
    if secret:
        out["client_secret"] = secret
    return out


def disable_client(store: Store, actor: str, org_id: str, client_id: str) -> dict[str, Any]:
    """Disable a portal backend: it authenticates no more, and every token issued to it dies."""
    with store.write(actor, org_id) as txn:
        row = txn.session.get(OAuthClient, client_id)
        if row is None or row.org_id != org_id:
            raise NotFound(f"OAuth client {client_id} not found")
        if row.disabled_at is None:
            row.disabled_at = clock.now()
            txn.record("oauth_client.disabled", client_id, {"disabled": False}, {"disabled": True})
    return {"client_id": client_id, "disabled": True, "revision": str(txn.revision)}


def list_clients(store: Store, org_id: str) -> list[dict[str, Any]]:
    with store.read() as session:
        rows = session.scalars(select(OAuthClient).where(OAuthClient.org_id == org_id))
        return [
            {"client_id": r.client_id, "name": r.name, "audiences": r.audiences, "scopes": r.scopes}
            for r in rows
        ]
