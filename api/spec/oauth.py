"""OpenAPI paths of `api/oauth.py`: the token endpoint (RFC 6749/8693), metadata and JWKS."""

from __future__ import annotations

from typing import Any

from api.spec.common import ERRORS, JSON, obj, ref
from authz.oauth.oauth_clients import GRANT_TYPES
from authz.oauth.rfc8693 import ACCESS_TOKEN_TYPE, SUBJECT_TOKEN_TYPES

TAG = "oauth"
STR = {"type": "string"}
FORM = "application/x-www-form-urlencoded"


def oauth_error(status: int) -> dict[str, Any]:
    """An RFC 6749 §5.2 error response (not problem+json: OAuth clients expect this shape)."""
    response: dict[str, Any] = {
        "description": {
            400: "RFC 6749 error: invalid_request, invalid_grant, invalid_scope, invalid_target, …",
            401: "invalid_client: the client did not authenticate",
            429: ERRORS[429],
            503: "temporarily_unavailable: the store did not answer; nothing was issued",
        }.get(status, ERRORS.get(status, "Error")),
        "content": {JSON: {"schema": ref("OAuthError")}},
    }
    if status == 429:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 0}}}
    return response


SCHEMAS: dict[str, Any] = {
    "OAuthError": obj(
        {"error": STR, "error_description": STR, "error_uri": STR}, ("error",), closed=False
    ),
    "TokenRequest": {
        "type": "object",
        "description": (
            "RFC 6749 §4.4 client credentials or RFC 8693 token exchange. Unknown parameters "
            "are ignored, as RFC 6749 §3.2 requires of the token endpoint."
        ),
        "required": ["grant_type"],
        "properties": {
            "grant_type": {"enum": list(GRANT_TYPES)},
            "scope": STR,
            "subject_token": STR,
            "subject_token_type": {"enum": list(SUBJECT_TOKEN_TYPES)},
            "requested_token_type": {"const": ACCESS_TOKEN_TYPE},
            "actor_token": STR,
            "actor_token_type": {"enum": list(SUBJECT_TOKEN_TYPES)},
            "resource": {
                "type": "string",
                "description": "client:<id>, provider:<id> or reviewer:<id>",
            },
            "audience": {"type": "string", "description": "The portal the token is for"},
            "client_id": STR,
            "client_assertion_type": {
                "const": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            },
            "client_assertion": {"type": "string", "description": "private_key_jwt"},
        },
    },
    "TokenResponse": obj(
        {
            "access_token": STR,
            "token_type": {"enum": ["Bearer", "bearer", "N_A"]},
            "expires_in": {"type": "integer", "maximum": 900},
            "scope": STR,
            "issued_token_type": STR,
        },
        ("access_token", "token_type", "expires_in"),
        closed=False,
    ),
    "ServerMetadata": obj(
        {
            "issuer": STR,
            "token_endpoint": STR,
            "introspection_endpoint": STR,
            "revocation_endpoint": STR,
            "jwks_uri": STR,
            "grant_types_supported": {"type": "array", "items": STR},
        },
        ("issuer", "token_endpoint", "jwks_uri"),
        closed=False,
    ),
    "TokenParam": {
        "type": "object",
        "required": ["token"],
        "properties": {
            "token": STR,
            "token_type_hint": {"enum": ["access_token", "refresh_token"]},
            "client_id": STR,
            "client_assertion_type": STR,
            "client_assertion": STR,
        },
    },
    "Introspection": obj(
        {
            "active": {"type": "boolean"},
            "scope": STR,
            "client_id": STR,
            "sub": STR,
            "aud": {},
            "iss": STR,
            "exp": {"type": "integer"},
            "iat": {"type": "integer"},
            "jti": STR,
            "token_type": STR,
            "org": STR,
            "authz_via": STR,
            "grant": STR,
            "act": {"type": "object"},
        },
        ("active",),
        closed=False,
    ),
    "JWKS": obj(
        {"keys": {"type": "array", "items": {"type": "object", "required": ["kid", "kty"]}}},
        ("keys",),
        closed=False,
    ),
}

PATHS: dict[str, Any] = {
    "/oauth/token": {
        "post": {
            "operationId": "token",
            "summary": "Issue an access token (client credentials or token exchange)",
            "tags": [TAG],
            "security": [{"clientBasic": []}, {}],
            "requestBody": {
                "required": True,
                "content": {FORM: {"schema": ref("TokenRequest")}},
            },
            "responses": {
                "200": {
                    "description": "An RFC 9068 access token",
                    "content": {JSON: {"schema": ref("TokenResponse")}},
                },
                **{str(s): oauth_error(s) for s in (400, 401, 429, 503)},
                "405": {"description": ERRORS[405]},
                "500": {"description": ERRORS[500]},
            },
        }
    },
    "/oauth/introspect": {
        "post": {
            "operationId": "introspect",
            "summary": "RFC 7662: is this token active right now (revocations and grants included)",
            "tags": [TAG],
            "security": [{"clientBasic": []}, {}],
            "requestBody": {"required": True, "content": {FORM: {"schema": ref("TokenParam")}}},
            "responses": {
                "200": {
                    "description": "`active` and, when active, the token's claims",
                    "content": {JSON: {"schema": ref("Introspection")}},
                },
                **{str(s): oauth_error(s) for s in (400, 401, 429, 503)},
                "405": {"description": ERRORS[405]},
                "500": {"description": ERRORS[500]},
            },
        }
    },
    "/oauth/revoke": {
        "post": {
            "operationId": "revoke",
            "summary": "RFC 7009: revoke one of the calling client's tokens",
            "tags": [TAG],
            "security": [{"clientBasic": []}, {}],
            "requestBody": {"required": True, "content": {FORM: {"schema": ref("TokenParam")}}},
            "responses": {
                "200": {"description": "Revoked (or unknown: RFC 7009 §2.2 answers the same)"},
                **{str(s): oauth_error(s) for s in (400, 401, 429, 503)},
                "405": {"description": ERRORS[405]},
                "500": {"description": ERRORS[500]},
            },
        }
    },
    "/.well-known/oauth-authorization-server": {
        "get": {
            "operationId": "serverMetadata",
            "summary": "RFC 8414 authorization server metadata",
            "tags": [TAG],
            "security": [],
            "responses": {
                "200": {
                    "description": "Metadata",
                    "content": {JSON: {"schema": ref("ServerMetadata")}},
                }
            },
        }
    },
    "/.well-known/jwks.json": {
        "get": {
            "operationId": "jwks",
            "summary": "Public signing keys (tokens carry `kid`)",
            "tags": [TAG],
            "security": [],
            "responses": {
                "200": {"description": "JWKS", "content": {JSON: {"schema": ref("JWKS")}}},
                "503": {"description": ERRORS[503]},
            },
        }
    },
}
