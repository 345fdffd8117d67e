"""JWT client authentication (`private_key_jwt`), RFC 7523 §2.2 (https://www.rfc-editor.org/rfc/rfc7523).

Authlib's assertion checker, pointed at the client's registered JWKS, with `jti` replay refused.
"""

from __future__ import annotations

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
