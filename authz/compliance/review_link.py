"""A short-lived signed link to the access review, so that a reviewer can open it in a browser.

A reviewer (bearer token) asks for a link; the link carries a ticket: a JWT signed with the
service's access-token key, of its own type (`review-link+jwt`, so it is never an access token
and an access token is never a ticket), for this service's review page only, naming the reviewer
and the organization, valid for `TTL`. Whoever opens it reads the review as that reviewer and may
re-approve or end grants from it; every opening and every action is audited under the
reviewer's name. A bad, expired or foreign ticket, or a reviewer removed since, opens nothing.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import jwt

from authz.base import clock
from authz.base.errors import Unauthenticated
from authz.base.principals import REVIEW_SCOPE, Principal
from authz.policy.facts import FactIndex
from authz.store.db import Store
from authz.tokens.keys import KeyRing

TTL = dt.timedelta(minutes=15)
TYP = "review-link+jwt"
ISSUED = "review.link_issued"


def audience(issuer: str) -> str:
    """The one place a ticket is good for: this service's review page."""
    return issuer.rstrip("/") + "/v1/review/open"


def issue(
    store: Store, keys: KeyRing, issuer: str, principal: Principal, client_id: str | None
) -> dict[str, Any]:
    """A ticket for the reviewer `principal`, and when it expires; the issuing is audited."""
    now = clock.now()
    expires, jti = now + TTL, secrets.token_urlsafe(16)
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience(issuer),
        "sub": principal.label,
        "org": principal.org_id,
        "client": client_id,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": jti,
    }
    key = keys.signing_key()
    ticket = jwt.encode(
        claims, key.private, algorithm=key.alg, headers={"kid": key.kid, "typ": TYP}
    )
    with store.append_audit(principal.label, principal.org_id) as txn:
        txn.record(
            ISSUED,
            jti,
            None,
            {"client": client_id, "expires_at": expires.isoformat()},
            [client_id] if client_id else None,
        )
    return {"ticket": ticket, "expires_at": expires.isoformat(), "client": client_id}


def verify(keys: KeyRing, issuer: str, facts: FactIndex, ticket: Any) -> tuple[Principal, Any]:
    """The reviewer a ticket speaks for and the client it was issued for; Unauthenticated
    (fail closed) for anything else."""
    if not isinstance(ticket, str) or not ticket or len(ticket) > 4096:
        raise Unauthenticated("open the review with a link issued by POST /v1/review/links")
    try:
        header = jwt.get_unverified_header(ticket)
        key = keys.get(str(header.get("kid", "")))
        if key is None or header.get("typ") != TYP or header.get("alg") != key.alg:
            raise jwt.InvalidTokenError("not a review link of this service")
        claims = jwt.decode(
            ticket,
            key.public,
            algorithms=[key.alg],
            audience=audience(issuer),
            issuer=issuer,
            options={"verify_exp": False, "verify_iat": False, "require": ["exp", "sub", "org"]},
        )
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"review link rejected: {exc}") from exc
    if clock.now().timestamp() >= float(claims["exp"]):  # the service's clock, not the OS's
        raise Unauthenticated("review link rejected: it has expired; ask for a new one")
    kind, _, ident = str(claims["sub"]).partition(":")
    if kind != "reviewer" or facts.staff_org("reviewer", ident) != claims["org"]:
        raise Unauthenticated("review link rejected: its reviewer no longer exists")
    reviewer = Principal(
        kind="reviewer",
        id=ident,
        org_id=str(claims["org"]),
        scopes=frozenset({REVIEW_SCOPE}),
        claims={"review_link": claims["jti"]},
    )
    return reviewer, claims.get("client")
