"""RFC 6749 (https://www.rfc-editor.org/rfc/rfc6749): the client credentials grant (§4.4) and
the request rules every token-endpoint request and client authentication follows.

Authlib's grant, with the scope rule of this service: a requested scope the client does not hold
is `invalid_scope` (§5.2), never silently narrowed; no scope asked means all the client holds.
Every request to the token, introspection and revocation endpoints is read strictly: each
parameter at most once (§3.1, §3.2), none in the URL, no control characters, and one client
authentication method (§2.3).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError, OAuth2Error
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


def strict_request(request: Any, several: tuple[str, ...] = ()) -> None:
    """Refuse what RFC 6749 forbids or leaves to chance, before any client is looked up:
    parameters in the URL or given twice (but those a grant allows `several` of), control
    characters, two authentication methods."""
    if request.args:
        # Secrets in a URL end up in logs; §3.2 puts every parameter in the body.
        names = ", ".join(sorted({_shown(name) for name in request.args}))
        raise InvalidRequestError(description=f"send {names} in the form-encoded body, not the URL")
    form = request.form
    for name in form:
        values = form.getlist(name)
        if len(values) > 1 and name not in several:
            raise InvalidRequestError(description=f"{_shown(name)} is given more than once")
        if _CONTROL.search(name) or any(_CONTROL.search(value) for value in values):
            raise InvalidRequestError(description=f"{_shown(name)} contains a control character")
    _one_authentication(request.headers.get("Authorization", ""), form)


#: The one client assertion type the token endpoint takes (RFC 7523 §2.2).
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _shown(name: str, otherwise: str = "a parameter") -> str:
    """A caller's name or id as an error may quote it: `error_description` is printable ASCII
    only (§5.2), and a caller's junk is not echoed."""
    return name if _NAME.fullmatch(name) else otherwise


def _one_authentication(authorization: str, form: Any) -> None:
    basic = authorization[:6].lower() == "basic "
    methods = [
        name
        for name, used in (
            ("HTTP Basic", basic),
            ("client_secret in the body", "client_secret" in form),
            ("client_assertion", "client_assertion" in form),
        )
        if used
    ]
    if len(methods) > 1:
        raise InvalidRequestError(
            description=f"use one client authentication method, not {' and '.join(methods)}"
        )
    if ("client_assertion_type" in form or "client_assertion" in form) and (
        form.get("client_assertion_type") != JWT_BEARER_ASSERTION or "client_assertion" not in form
    ):
        # RFC 7521 §4.2: both or neither, and the one type this server takes (RFC 7523 §2.2).
        raise InvalidRequestError(
            description=f"client_assertion needs client_assertion_type {JWT_BEARER_ASSERTION}"
        )
    if basic and "client_id" in form:
        try:
            named = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return  # Authlib refuses the header itself as invalid_client
        if named.partition(":")[0] != form["client_id"]:
            raise InvalidRequestError(
                description="client_id in the body names another client than the "
                "Authorization header"
            )


class ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    """A portal backend's own token (`authz:check`, `authz:admin`, …)."""

    #: Set by the server factory.
    store: Store

    def validate_token_request(self) -> None:
        strict_request(self.request)
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
        strict_request(request)
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
        named = _shown(client_id or request.form.get("client_id") or "", "that client_id")
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
            f"client {_shown(client_id)} authenticates with a client_assertion (private_key_jwt), "
            "not a secret"
        )
    return "the client secret does not match"
