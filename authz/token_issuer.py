"""The token generator Authlib's grants call: every token here is an RFC 9068 JWT."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from authz import rfc9068
from authz.oauth_clients import RegisteredClient
from authz.runtime import Runtime


@dataclass(frozen=True)
class Issuance:
    """What a grant decided to issue: for whom, to which audience, with which extra claims."""

    subject: rfc9068.TokenSubject
    audience: str | list[str]
    extra: dict[str, Any] = field(default_factory=dict)


def token_generator(runtime: Runtime) -> Callable[..., dict[str, Any]]:
    """A generator with Authlib's signature that signs our access tokens."""

    def generate(
        grant_type: str,
        client: RegisteredClient,
        user: Issuance | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        if user is None:
            # client_credentials (RFC 9068 §2.2): the client is the subject.
            user = Issuance(
                rfc9068.TokenSubject(sub=client.client_id, org=client.org_id),
                list(client.audiences) if len(client.audiences) > 1 else client.audiences[0],
            )
        ttl = min(expires_in or runtime.settings.token_ttl, runtime.settings.token_ttl)
        token, claims = rfc9068.issue(
            runtime.keys,
            runtime.settings.issuer,
            user.subject,
            client.client_id,
            user.audience,
            scope or "",
            ttl,
            extra=user.extra,
        )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": claims["exp"] - claims["iat"],
            "scope": claims["scope"],
        }

    return generate
