"""JWT client authentication (`private_key_jwt`), RFC 7523 §2.2 (https://www.rfc-editor.org/rfc/rfc7523).

Authlib's assertion checker, pointed at the client's registered JWKS, with `jti` replay refused.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc.jwk import KeySet

from authz.base import clock
from authz.service.runtime import Runtime
from authz.store.models import RevokedToken


class PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.runtime = runtime

    def __call__(self, query_client: Any, request: Any) -> Any:
        """Bound the assertion before Authlib parses it: its JSON is read before the signature
        is checked, so an unauthenticated caller chooses its size and nesting."""
        assertion = request.form.get("client_assertion")
        if assertion is not None and not _bounded(assertion):
            raise InvalidClientError(description="client_assertion is not a JWT of a sane size")
        try:
            return super().__call__(query_client, request)
        except (RecursionError, ValueError) as exc:
            raise InvalidClientError(description="client_assertion is not a readable JWT") from exc

    def get_audiences(self) -> list[str]:
        issuer = self.runtime.settings.issuer.rstrip("/")
        return [issuer + "/oauth/token", issuer]

    def resolve_client_public_key(self, client: Any) -> Any:
        if not client.jwks:
            raise InvalidClientError(description="client has no registered keys")
        return KeySet.import_key_set(client.jwks)

    def validate_jti(self, claims: Any, jti: str) -> bool:
        """A client assertion is single use: its `jti` is remembered until it expires."""
        key = f"assertion:{claims.get('iss')}:{jti}"[:64]
        expires = dt.datetime.fromtimestamp(int(claims.get("exp", 0)), dt.UTC)
        with self.runtime.store.write(f"service:{claims.get('iss')}") as txn:
            if txn.session.get(RevokedToken, key) is not None:
                return False
            txn.session.add(RevokedToken(jti=key, expires_at=expires, revoked_at=clock.now()))
        return True


#: Longest client assertion read; a signed ES256/RS256 JWT with its claims fits in far less.
MAX_ASSERTION = 8192
#: Deepest JSON nesting read in its header or claims (they are flat objects).
MAX_DEPTH = 8


def _bounded(assertion: str) -> bool:
    """A compact JWS of at most `MAX_ASSERTION` characters whose JSON parts nest at most
    `MAX_DEPTH` deep (counted without parsing, so nothing recurses on hostile input)."""
    parts = assertion.split(".")
    if len(assertion) > MAX_ASSERTION or len(parts) != 3:
        return False
    for part in parts[:2]:
        try:
            raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        except (binascii.Error, ValueError):
            return False
        if _depth(raw) > MAX_DEPTH:
            return False
    return True


def _depth(raw: bytes) -> int:
    """The deepest nesting of `{`/`[` outside strings."""
    deepest = depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest
