"""OAuth 2.0 Token Introspection, RFC 7662 (https://www.rfc-editor.org/rfc/rfc7662).

Authlib's endpoint, answering from the store as it is now: a token is `active` only while its
signature holds, it is not revoked, its account and OAuth client still exist and, when it was
delegated, its grant still allows it. A client sees only tokens of its own organization; any
other token is simply `active: false` (§2.2: nothing about why).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from authz.base.errors import StoreUnavailable
from authz.oauth import token_status
from authz.oauth.oauth_clients import RegisteredClient
from authz.oauth.rfc6749 import CurrentClientEndpoint, TemporarilyUnavailableError
from authz.service.runtime import Runtime

#: Claims an introspection answer repeats from the token (§2.2 and our extensions).
CLAIMS = (
    "scope",
    "client_id",
    "sub",
    "aud",
    "iss",
    "exp",
    "iat",
    "nbf",
    "jti",
    "org",
    "authz_via",
    "act",
    "grant",
)


@dataclass(frozen=True)
class CheckedToken:
    """A token string as the store sees it now, in the shape Authlib's endpoint expects."""

    status: token_status.TokenStatus

    def is_expired(self) -> bool:
        return not self.status.active

    def is_revoked(self) -> bool:
        return not self.status.active


class Introspection(CurrentClientEndpoint, IntrospectionEndpoint):  # type: ignore[misc]
    """`POST /oauth/introspect` for authenticated clients (client_secret_basic, private_key_jwt)."""

    runtime: Runtime

    def query_token(self, token_string: str, token_type_hint: str | None) -> CheckedToken | None:
        # The hint only narrows the search (§2.1); we issue access tokens alone.
        try:
            return CheckedToken(token_status.check(self.runtime, token_string))
        except StoreUnavailable as exc:
            raise TemporarilyUnavailableError(description="try again shortly") from exc

    def check_permission(self, token: CheckedToken, client: RegisteredClient, request: Any) -> bool:
        # Nothing crosses organizations: another organization's token is just inactive.
        return bool(token.status.claims.get("org") == client.org_id)

    def introspect_token(self, token: CheckedToken) -> dict[str, Any]:
        claims = token.status.claims
        body: dict[str, Any] = {"active": True, "token_type": "Bearer"}
        body.update({name: claims[name] for name in CLAIMS if name in claims})
        return body
