"""The OAuth 2.0 client credentials grant, RFC 6749 §4.4 (https://www.rfc-editor.org/rfc/rfc6749).

Authlib's grant, with the scope rule of this service: a requested scope the client does not hold
is `invalid_scope` (§5.2), never silently narrowed; no scope asked means all the client holds.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidScopeError, OAuth2Error
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant

from authz.base.errors import StoreUnavailable
from authz.oauth import client_lookup
from authz.oauth.oauth_clients import SERVICE_SCOPES, RegisteredClient
from authz.service.runtime import Runtime
from authz.store.db import Store


class TemporarilyUnavailableError(OAuth2Error):  # type: ignore[misc]
    """The store did not answer: issue, answer or revoke nothing (fail closed), retry later."""

    error = "temporarily_unavailable"
    status_code = 503


class ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    """A portal backend's own token (`authz:check`, `authz:admin`, …)."""

    #: Set by the server factory.
    store: Store

    def validate_token_request(self) -> None:
        super().validate_token_request()
        client: RegisteredClient = self.request.client
        client_lookup.require_current_now(self.store, client)
        held = client.scopes & frozenset(SERVICE_SCOPES)
        requested = self.request.payload.scope
        if requested is None:
            scope = " ".join(sorted(held))
        else:
            wanted = set(requested.split())
            if not wanted or not wanted <= held:
                raise InvalidScopeError(description="requested scope exceeds the client's scopes")
            scope = " ".join(sorted(wanted))
        self._issued_scope = scope

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        token = self.generate_token(scope=self._issued_scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class CurrentClientEndpoint:
    """Mixin for Authlib's introspection and revocation endpoints: after authentication, the
    client must still be registered as it was (disabled or changed clients are refused now)."""

    runtime: Runtime

    def authenticate_endpoint_client(self, request: Any) -> RegisteredClient:
        client: RegisteredClient = super().authenticate_endpoint_client(request)  # type: ignore[misc]
        try:
            client_lookup.require_current_now(self.runtime.store, client)
        except StoreUnavailable as exc:
            raise TemporarilyUnavailableError(description="try again shortly") from exc
        return client
