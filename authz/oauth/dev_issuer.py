"""The development issuer's sign-in (development mode only): OpenID Connect authorization code
flow with PKCE, so that the hosted pages sign in locally with nothing else running.

Codes are short JWTs signed with the development issuer's key, so any worker can redeem them;
being development-only, a code is not tracked as used (it lives 60 seconds).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

import jwt

from authz.base import clock
from authz.base.config import Settings
from authz.base.emails import normalize_email
from authz.base.errors import Forbidden, ValidationFailed
from authz.oauth import identity
from authz.tokens.keys import ALGORITHMS, KeyRing

CODE_TTL = 60
CODE_TYP = "authz-dev-code"
SCOPES = ("openid", "email")


def metadata(settings: Settings) -> dict[str, Any]:
    """The development issuer's OpenID Provider metadata (discovery document)."""
    base = settings.issuer.rstrip("/") + "/dev-issuer"
    return {
        "issuer": settings.dev_issuer,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "jwks_uri": f"{base}/jwks.json",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(ALGORITHMS),
        "scopes_supported": list(SCOPES),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "grant_types_supported": ["authorization_code"],
    }


def check_authorize(settings: Settings, params: dict[str, str]) -> dict[str, str]:
    """The authorization request's parameters if this issuer will answer it (its own pages'
    client, a redirect back to them, PKCE S256), else ValidationFailed."""
    errors = []
    if params.get("response_type") != "code":
        errors.append(("response_type", "must be code"))
    if params.get("client_id") != settings.pages_client_id:
        errors.append(("client_id", "is not this service's pages client"))
    portal = settings.issuer.rstrip("/") + "/portal/"
    if not str(params.get("redirect_uri", "")).startswith(portal):
        errors.append(("redirect_uri", f"must be under {portal}"))
    if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
        errors.append(("code_challenge", "PKCE with S256 is required"))
    if "openid" not in str(params.get("scope", "")).split():
        errors.append(("scope", "must include openid"))
    if errors:
        raise ValidationFailed(errors)
    keep = ("client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge")
    return {k: str(params.get(k, "")) for k in keep}


def issue_code(settings: Settings, keys: KeyRing, params: dict[str, str], email: str) -> str:
    """A code for `email`'s sign-in, carrying the request it answers."""
    email = normalize_email(email)
    now = int(clock.now().timestamp())
    key = keys.signing_key()
    claims = {
        "typ": CODE_TYP,
        "email": email,
        "client_id": params["client_id"],
        "redirect_uri": params["redirect_uri"],
        "nonce": params.get("nonce", ""),
        "code_challenge": params["code_challenge"],
        "iat": now,
        "exp": now + CODE_TTL,
        "jti": secrets.token_urlsafe(12),
    }
    return jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": key.kid})


def redeem(
    settings: Settings, keys: KeyRing, form: dict[str, str], client_id: str, secret: str
) -> dict[str, Any]:
    """The token response for a code (RFC 6749 §4.1.3, PKCE RFC 7636 §4.6), or Forbidden /
    ValidationFailed."""
    if not (
        hmac.compare_digest(client_id, settings.pages_client_id)
        and hmac.compare_digest(secret, settings.pages_client_secret or "")
    ):
        raise Forbidden("client authentication failed")
    if form.get("grant_type") != "authorization_code":
        raise ValidationFailed([("grant_type", "must be authorization_code")])
    code = form.get("code", "")
    try:
        kid = jwt.get_unverified_header(code).get("kid")
        key = keys.get(str(kid))
        if key is None:
            raise ValidationFailed([("code", "is not valid")])
        claims = jwt.decode(code, key.public, algorithms=[key.alg], options={"require": ["exp"]})
    except jwt.PyJWTError as exc:
        raise ValidationFailed([("code", "is not valid or has expired")]) from exc
    if claims.get("typ") != CODE_TYP or claims.get("client_id") != client_id:
        raise ValidationFailed([("code", "was not issued to this client")])
    if claims.get("redirect_uri") != form.get("redirect_uri"):
        raise ValidationFailed([("redirect_uri", "does not match the authorization request")])
    verifier = form.get("code_verifier", "")
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    if not verifier or not hmac.compare_digest(challenge, str(claims.get("code_challenge"))):
        raise ValidationFailed([("code_verifier", "does not match the code challenge")])
    id_token = identity.mint_dev_id_token(
        settings, keys, str(claims["email"]), nonce=str(claims.get("nonce") or "") or None
    )
    return {
        "access_token": secrets.token_urlsafe(24),
        "token_type": "Bearer",
        "expires_in": identity.ID_TOKEN_TTL,
        "id_token": id_token,
        "scope": "openid email",
    }
