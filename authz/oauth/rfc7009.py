"""OAuth 2.0 Token Revocation, RFC 7009 (https://www.rfc-editor.org/rfc/rfc7009).

Authlib's endpoint over our revocation list. A client may revoke only tokens issued to it
(§2.1); an invalid or unknown token is answered 200 like a revoked one (§2.2). Each revocation
is in the audit trail with the client that asked; a refused attempt is audited too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidGrantError
from authlib.oauth2.rfc7009 import RevocationEndpoint

from authz.base.errors import StoreUnavailable
from authz.oauth import token_status
from authz.oauth.oauth_clients import RegisteredClient
from authz.oauth.rfc6749 import CurrentClientEndpoint, TemporarilyUnavailableError
from authz.service.runtime import Runtime
from authz.store import refusals
from authz.tokens import rfc9068


@dataclass(frozen=True)
class VerifiedToken:
    """One of our tokens whose signature holds (revocable even once its grant is gone)."""

    claims: dict[str, Any]

    def check_client(self, client: RegisteredClient) -> bool:
        return bool(
            self.claims.get("client_id") == client.client_id
            and self.claims.get("org") == client.org_id
        )


class Revocation(CurrentClientEndpoint, RevocationEndpoint):  # type: ignore[misc]
    """`POST /oauth/revoke`, for authenticated clients (client_secret_basic, private_key_jwt)."""

    runtime: Runtime

    def query_token(self, token_string: str, token_type_hint: str | None) -> VerifiedToken | None:
        try:
            claims = rfc9068.verify(self.runtime.keys, token_string, self.runtime.settings.issuer)
        except rfc9068.InvalidToken:
            return None
        return VerifiedToken(claims)

    def authenticate_token(self, request: Any, client: RegisteredClient) -> VerifiedToken | None:
        try:
            found: VerifiedToken | None = super().authenticate_token(request, client)
        except InvalidGrantError as exc:
            token = self.query_token(request.form.get("token", ""), None)
            claims = token.claims if token else {}
            refusals.record(
                self.runtime.store,
                "token_revocation.refused",
                f"service:{client.client_id}",
                client.org_id,
                {
                    "error": exc.error,
                    "reason": "the token was issued to another client",
                    "client_id": client.client_id,
                    "token_client_id": claims.get("client_id"),
                    "token_org": claims.get("org"),
                    "subject_jti": claims.get("jti"),
                },
                entity_id=client.client_id,
            )
            exc.description = "the token was not issued to this client"
            raise
        return found

    def revoke_token(self, token: VerifiedToken, request: Any) -> None:
        client: RegisteredClient = request.client
        try:
            token_status.revoke(self.runtime, token.claims, f"service:{client.client_id}")
        except StoreUnavailable as exc:
            # §2.2.1: the client retries when the server cannot revoke right now.
            raise TemporarilyUnavailableError(description="try again shortly") from exc
