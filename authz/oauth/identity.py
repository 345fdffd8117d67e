"""Logins: verified identities from trusted issuers, and the development issuer."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt

from authz.base import clock
from authz.base.config import Settings, TrustedIssuer
from authz.base.emails import normalize_email
from authz.base.errors import ValidationFailed
from authz.tokens.keys import ALGORITHMS, KeyRing
from authz.tokens.rfc9068 import LEEWAY, InvalidToken, check_times

DEV_AUDIENCE = "authz-dev"
ID_TOKEN_TTL = 600


@dataclass(frozen=True)
class Login:
    """A human, known by a verified identity: issuer, subject and email."""

    iss: str
    sub: str
    email: str
    email_verified: bool

    @property
    def label(self) -> str:
        return f"login:{self.iss}|{self.sub}"


class IssuerKeys:
    """JWKS of the trusted issuers, fetched and cached; refetched on an unknown `kid`."""

    def __init__(self) -> None:
        self._clients: dict[str, jwt.PyJWKClient] = {}
        self._lock = threading.Lock()

    def key_for(self, issuer: TrustedIssuer, token: str) -> Any:
        if issuer.jwks is not None:
            kid = jwt.get_unverified_header(token).get("kid")
            for k in issuer.jwks.get("keys", []):
                if k.get("kid") == kid or (kid is None and len(issuer.jwks["keys"]) == 1):
                    return jwt.PyJWK(k).key
            raise InvalidToken("unknown signing key for that issuer")
        if not issuer.jwks_uri:
            raise InvalidToken("issuer has no keys configured")
        with self._lock:
            client = self._clients.get(issuer.jwks_uri)
            if client is None:
                client = jwt.PyJWKClient(issuer.jwks_uri, cache_keys=True, lifespan=300, timeout=5)
                self._clients[issuer.jwks_uri] = client
        try:
            return client.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientError as exc:
            raise InvalidToken(f"cannot get the issuer's key: {exc}") from exc


_issuer_keys = IssuerKeys()


def verify_id_token(token: str, settings: Settings, dev_keys: KeyRing | None) -> Login:
    """A verified login from an ID token or JWT of a trusted issuer, or InvalidToken."""
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > 16384:
        raise InvalidToken("subject_token is not a JWT")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise InvalidToken("subject_token is not a JWT") from exc
    alg = header.get("alg")
    iss = unverified.get("iss")
    if settings.dev_mode and dev_keys is not None and iss == settings.dev_issuer:
        if alg not in ALGORITHMS:
            raise InvalidToken(f"algorithm {alg!r} is not accepted")
        dev_key = dev_keys.get(str(header.get("kid")))
        if dev_key is None:
            raise InvalidToken("unknown signing key for the development issuer")
        key, audience, algorithms = dev_key.public, DEV_AUDIENCE, [dev_key.alg]
    elif iss == settings.issuer:
        raise InvalidToken(
            "this service's own tokens are exchanged with subject_token_type "
            "urn:ietf:params:oauth:token-type:access_token"
        )
    else:
        trusted = next((t for t in settings.trusted_issuers if t.issuer == iss), None)
        if trusted is None:
            raise InvalidToken("subject_token is not from a trusted issuer")
        # Identity providers commonly sign with RSA; HMAC and `none` are never accepted.
        if alg not in (*ALGORITHMS, "RS256", "PS256", "ES384", "RS384", "RS512"):
            raise InvalidToken(f"algorithm {alg!r} is not accepted")
        key, audience, algorithms = _issuer_keys.key_for(trusted, token), trusted.audience, [alg]
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=audience,
            issuer=iss,
            options={
                "require": ["iss", "sub", "aud", "exp", "iat"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"subject_token rejected: {type(exc).__name__}") from exc
    check_times(claims, max_lifetime=None, exp_leeway=LEEWAY)
    email = claims.get("email")
    if not isinstance(email, str):
        raise InvalidToken("subject_token has no email")
    try:
        email = normalize_email(email)
    except ValidationFailed as exc:
        raise InvalidToken("subject_token email is not an address") from exc
    return Login(
        str(claims["iss"]), str(claims["sub"]), email, claims.get("email_verified") is True
    )


def mint_dev_id_token(
    settings: Settings, dev_keys: KeyRing, email: str, verified: bool = True, sub: str | None = None
) -> str:
    """An ID token from the built-in development issuer (development mode only)."""
    if not settings.dev_mode:
        raise ValidationFailed(
            [("dev_mode", "the development issuer exists only in development mode")]
        )
    email = normalize_email(email)
    now = int(clock.now().timestamp())
    key = dev_keys.signing_key()
    claims = {
        "iss": settings.dev_issuer,
        "sub": sub or f"dev|{email}",
        "aud": DEV_AUDIENCE,
        "iat": now,
        "exp": now + ID_TOKEN_TTL,
        "email": email,
        "email_verified": verified,
        "nonce": secrets.token_urlsafe(8),
        "auth_time": int(time.time()),
    }
    return jwt.encode(
        claims, key.private, algorithm=key.alg, headers={"kid": key.kid, "typ": "JWT"}
    )
