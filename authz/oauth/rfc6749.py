"""The OAuth 2.0 client credentials grant, RFC 6749 §4.4 (https://www.rfc-editor.org/rfc/rfc6749).

Authlib's grant, with the scope rule of this service: a requested scope the client does not hold
is `invalid_scope` (§5.2), never silently narrowed; no scope asked means all the client holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidScopeError, OAuth2Error
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.util import extract_basic_authorization

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


#: What Authlib says when no method authenticated the client: true, and of no help to anyone.
_NO_METHOD = "The client cannot authenticate with methods"
_NO_CLIENT = "The client does not exist on this server."


def plain_client_error(
    description: str, request: Any, query_client: Callable[[str], RegisteredClient | None]
) -> str:
    """§5.2 `invalid_client`, said in plain words: what was sent and what was wrong with it."""
    client_id, secret = extract_basic_authorization(request.headers)
    if description == _NO_CLIENT:
        named = client_id or request.form.get("client_id") or "that client_id"
        return f"no active OAuth client {named} (unknown, or disabled)"
    if not description.startswith(_NO_METHOD):
        return description
    if request.form.get("client_assertion"):
        return "the client_assertion did not verify (private_key_jwt)"
    if not request.headers.get("Authorization"):
        return (
            "no client authentication: send client_id:client_secret with HTTP Basic "
            "(client_secret_basic), or a client_assertion (private_key_jwt)"
        )
    if not client_id or not secret:
        return "the Authorization header is not Basic base64(client_id:client_secret)"
    client = query_client(client_id)
    if client is not None and client.auth_method == "private_key_jwt":
        return (
            f"client {client_id} authenticates with a client_assertion (private_key_jwt), "
            "not a secret"
        )
    return "the client secret does not match"
