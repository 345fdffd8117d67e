"""The token generator Authlib's grants call: every token here is an RFC 9068 JWT."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from authz.oauth.oauth_clients import RegisteredClient
from authz.service.runtime import Runtime
from authz.tokens import rfc9068


@dataclass(frozen=True)
class Issuance:
    """What a grant decided to issue: for whom, to which audience, with which extra claims."""

    subject: rfc9068.TokenSubject
    audience: str | list[str]
    extra: dict[str, Any] = field(default_factory=dict)
    #: What the audit trail calls it: sign-in, toggle, switch, switch back (service: a client's
    #: own token).
    kind: str = "service"
    #: The login that signed in (`iss|sub`), on a sign-in.
    login: str | None = None


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


def record_issued(runtime: Runtime, access_token: str, issuance: Issuance | None) -> None:
    """Append the issued token to the hash-chained audit trail before it is handed out: kind,
    login, account, grant, OAuth client, scopes, `jti` and expiry (never the token itself).
    A store that cannot record it fails the issuance (StoreUnavailable)."""
    # The token was signed a moment ago in this process: its payload needs no verification.
    payload = access_token.split(".")[1]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    claims: dict[str, Any] = json.loads(raw)
    kind = issuance.kind if issuance is not None else "service"
    act = (claims.get("act") or {}).get("sub")
    sub = str(claims["sub"])
    accounts = [
        label.partition(":")[2]
        for label in dict.fromkeys((sub, act))
        if isinstance(label, str) and label.startswith("client:")
    ]
    with runtime.store.append_audit(f"service:{claims['client_id']}", claims.get("org")) as txn:
        txn.record(
            "token.issued",
            claims["jti"],
            None,
            {
                "kind": kind,
                "login": (issuance.login if issuance is not None else None) or act or sub,
                "account": sub,
                "act": act,
                "via": claims.get("authz_via"),
                "grant": claims.get("grant"),
                "client_id": claims["client_id"],
                "audience": claims.get("aud"),
                "scope": claims.get("scope"),
                "jti": claims["jti"],
                "expires_at": claims["exp"],
            },
            accounts or None,
        )
