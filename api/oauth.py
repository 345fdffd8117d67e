"""The OAuth 2.0 authorization server endpoints: token, introspection (RFC 7662), revocation
(RFC 7009), metadata (RFC 8414) and JWKS."""

from __future__ import annotations

from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from flask import Blueprint, Flask, Response, current_app, jsonify

from api.runtime import runtime
from authz.base.errors import StoreUnavailable
from authz.oauth import oauth_clients, rfc8693
from authz.oauth.client_lookup import ClientCache
from authz.oauth.oauth_clients import RegisteredClient
from authz.oauth.rfc6749 import ClientCredentials, TemporarilyUnavailableError
from authz.oauth.rfc7009 import Revocation
from authz.oauth.rfc7523 import PrivateKeyJWT
from authz.oauth.rfc7662 import Introspection
from authz.oauth.token_issuer import record_issued, token_generator
from authz.policy.grants import CLIENT_SCOPES
from authz.service.runtime import Runtime
from authz.tokens.keys import ALGORITHMS

bp = Blueprint("oauth", __name__)
AUTH_METHODS = ["client_secret_basic", "private_key_jwt"]


def build_server(app: Flask, rt: Runtime) -> AuthorizationServer:
    """Authlib's server with our grants, client authentication and token generator."""
    server = AuthorizationServer()

    cache = ClientCache(rt.store)

    def query_client(client_id: str) -> RegisteredClient | None:
        try:
            return cache(client_id)
        except StoreUnavailable as exc:
            # Inside Authlib's error handling, so the client gets an RFC 6749 error.
            raise TemporarilyUnavailableError(description="try again shortly") from exc

    server.init_app(
        app,
        query_client=query_client,
        # JWTs are self-contained: what is saved is the audit of every token issued.
        save_token=lambda token, request: record_issued(
            rt, token["access_token"], getattr(request, "user", None)
        ),
    )
    server.register_token_generator("default", token_generator(rt))
    server.register_client_auth_method("private_key_jwt", PrivateKeyJWT(rt))
    exchange = type(
        "TokenExchange",
        (rfc8693.TokenExchangeGrant,),
        {"runtime": rt, "TOKEN_ENDPOINT_AUTH_METHODS": AUTH_METHODS},
    )
    credentials = type(
        "ClientCredentialsGrant",
        (ClientCredentials,),
        {"TOKEN_ENDPOINT_AUTH_METHODS": AUTH_METHODS, "store": rt.store},
    )
    server.register_grant(credentials)
    server.register_grant(exchange)
    for endpoint in (Introspection, Revocation):
        server.register_endpoint(
            type(
                endpoint.__name__, (endpoint,), {"runtime": rt, "CLIENT_AUTH_METHODS": AUTH_METHODS}
            )
        )
    app.extensions["authz.oauth"] = server
    return server


def metadata(rt: Runtime) -> dict[str, Any]:
    """RFC 8414 authorization server metadata."""
    issuer = rt.settings.issuer.rstrip("/")
    return {
        "issuer": rt.settings.issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": list(oauth_clients.GRANT_TYPES),
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": [*ALGORITHMS, "RS256"],
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "scopes_supported": list(oauth_clients.SERVICE_SCOPES) + list(CLIENT_SCOPES),
        "access_token_signing_alg_values_supported": list(ALGORITHMS),
        "subject_token_types_supported": list(rfc8693.SUBJECT_TOKEN_TYPES),
        "service_documentation": f"{issuer}/openapi.json",
    }


def _server() -> AuthorizationServer:
    server: AuthorizationServer = current_app.extensions["authz.oauth"]
    return server


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/oauth/token")
def token() -> Response:
    return _no_store(_server().create_token_response())


@bp.post("/oauth/introspect")
def introspect() -> Response:
    return _no_store(_server().create_endpoint_response(Introspection.ENDPOINT_NAME))


@bp.post("/oauth/revoke")
def revoke() -> Response:
    return _no_store(_server().create_endpoint_response(Revocation.ENDPOINT_NAME))


@bp.get("/.well-known/oauth-authorization-server")
def server_metadata() -> Response:
    return jsonify(metadata(runtime()))


@bp.get("/.well-known/jwks.json")
def jwks() -> Response:
    response = jsonify(runtime().keys.jwks())
    response.headers["Cache-Control"] = "public, max-age=60"
    return response
