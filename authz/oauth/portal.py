"""Verifying this service's access tokens in a portal backend.

Imports only PyJWT and requests: a portal backend uses it without the store or Flask.

    verifier = PortalVerifier("https://authz.example", audience="https://portal.example")
    caller = verifier.verify(bearer_token)                   # signature, iss, aud, typ, times
    caller = verifier.verify(bearer_token, introspect=True)  # and still active (RFC 7662)

`caller.account` is the account acted on, `caller.human` the person acting (the caregiver
named in `act` when delegated), `caller.scopes` what the token allows. A signature proves what
was true when the token was issued; for revocation-sensitive actions (payments, sharing
documents, changing who has access) ask for introspection, which answers from the grant as it
is now.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
import requests

ALGORITHMS = ("ES256", "EdDSA")
TYP = "at+jwt"
MAX_LIFETIME = 900
REQUIRED = ("iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "org", "authz_via")


class PortalTokenError(Exception):
    """The token must not be trusted; the message says why (never the token)."""


@dataclass(frozen=True)
class Caller:
    """Who a verified token speaks for."""

    account: str
    human: str
    delegated: bool
    scopes: frozenset[str]
    org: str
    via: str
    grant: str | None
    client_id: str
    claims: dict[str, Any] = field(repr=False, compare=False)

    @property
    def account_id(self) -> str:
        """The bare id (`cli_…`) of the account acted on."""
        return self.account.partition(":")[2]

    def require(self, *scopes: str) -> None:
        """Raise PortalTokenError unless the token carries every one of `scopes`."""
        missing = sorted(set(scopes) - self.scopes)
        if missing:
            raise PortalTokenError(f"token lacks scope {' '.join(missing)}")


class PortalVerifier:
    """Verifies tokens against the service's JWKS (cached; refetched on an unknown `kid`)."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        jwks_url: str | None = None,
        introspection_url: str | None = None,
        jwks_lifespan: float = 300.0,
        refresh_cooldown: float = 10.0,
        leeway: int = 5,
        timeout: float = 5.0,
    ) -> None:
        base = issuer.rstrip("/")
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.timeout = timeout
        self.refresh_cooldown = refresh_cooldown
        self.introspection_url = introspection_url or f"{base}/oauth/introspect"
        self._auth = (client_id, client_secret) if client_id and client_secret else None
        self._jwks = jwt.PyJWKClient(
            jwks_url or f"{base}/.well-known/jwks.json", lifespan=jwks_lifespan, timeout=timeout
        )
        self._http = requests.Session()
        self._lock = threading.Lock()
        self._last_refresh = float("-inf")

    def verify(self, token: str, introspect: bool = False) -> Caller:
        """The caller behind a valid token; with `introspect`, only if it is still active."""
        claims = self._decode(token)
        if introspect and not self.is_active(token):
            raise PortalTokenError("token is no longer active (revoked, or its grant ended)")
        act = claims.get("act")
        actor = act.get("sub") if isinstance(act, dict) else None
        return Caller(
            account=claims["sub"],
            human=actor or claims["sub"],
            delegated=actor is not None,
            scopes=frozenset(str(claims["scope"]).split()),
            org=claims["org"],
            via=claims["authz_via"],
            grant=claims.get("grant"),
            client_id=claims["client_id"],
            claims=claims,
        )

    def is_active(self, token: str) -> bool:
        """RFC 7662 introspection (needs client credentials); any failure answers False."""
        if self._auth is None:
            raise PortalTokenError("introspection needs the portal's client_id and secret")
        try:
            r = self._http.post(
                self.introspection_url,
                data={"token": token, "token_type_hint": "access_token"},
                auth=self._auth,
                timeout=self.timeout,
            )
            return bool(r.status_code == 200 and r.json().get("active") is True)
        except (requests.RequestException, ValueError):
            return False  # fail closed

    def _decode(self, token: str) -> dict[str, Any]:
        if not isinstance(token, str) or token.count(".") != 2 or len(token) > 8192:
            raise PortalTokenError("not a compact JWS")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise PortalTokenError("malformed token header") from exc
        if header.get("alg") not in ALGORITHMS:
            raise PortalTokenError(f"algorithm {header.get('alg')!r} is not accepted")
        if str(header.get("typ", "")).lower() not in (TYP, "application/at+jwt"):
            raise PortalTokenError("not an RFC 9068 access token (typ)")
        key = self._key(header.get("kid"))
        if key.algorithm_name != header["alg"]:
            raise PortalTokenError("algorithm does not match the key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[header["alg"]],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED)},
            )
        except jwt.PyJWTError as exc:
            raise PortalTokenError(f"invalid token: {type(exc).__name__}") from exc
        if claims["exp"] - claims["iat"] > MAX_LIFETIME + self.leeway:
            raise PortalTokenError("token lifetime out of bounds")
        return claims

    def _key(self, kid: Any) -> jwt.PyJWK:
        if not isinstance(kid, str) or not kid:
            raise PortalTokenError("token has no kid")
        try:
            found = self._jwks.match_kid(self._jwks.get_signing_keys(), kid)
            if found is None:
                # A new kid after a rotation: refetch, but not on every forged kid.
                with self._lock:
                    due = time.monotonic() - self._last_refresh >= self.refresh_cooldown
                    if due:
                        self._last_refresh = time.monotonic()
                if due:
                    found = self._jwks.match_kid(self._jwks.get_signing_keys(refresh=True), kid)
        except jwt.PyJWKClientError as exc:
            raise PortalTokenError(f"cannot get the signing keys: {exc}") from exc
        if found is None:
            raise PortalTokenError("unknown signing key")
        return found
