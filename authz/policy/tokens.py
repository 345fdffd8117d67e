"""Access tokens at decision time: signatures verified once per token, liveness from the facts.

A check verifies two RFC 9068 tokens (the portal backend's and the user's). An ES256 verification
costs ~130 µs, more than the decision, so `TokenCache` keeps the claims of tokens whose signature
verified, keyed by the SHA-256 of the token (the token itself is never kept), bounded in size and
never past `exp`. Whether a verified token is still good *now* (`token_problem`) is the question
`authz.token_status.status_in` answers from the store, answered here from the `FactIndex`, which
the caller has made fresh by revision: a revoke that returned is seen by the next check.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

from authz import clock, grants, rfc9068
from authz.keys import KeyRing
from authz.policy.facts import FactIndex
from authz.principals import Principal
from authz.token_status import email_group

#: Tokens kept; a claims set and its principal take about 1.5 kB, so this bounds the cache at a
#: few MB whatever callers send (unknown subjects must not grow memory).
DEFAULT_SIZE = 4096


class TokenCache:
    """Verified tokens by hash: `claims` and `Principal`, dropped at `exp`, oldest out first."""

    def __init__(self, keys: KeyRing, issuer: str, size: int = DEFAULT_SIZE) -> None:
        self.keys, self.issuer, self.size = keys, issuer, size
        self._entries: OrderedDict[bytes, tuple[float, dict[str, Any], Principal]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def verify(self, token: str) -> tuple[dict[str, Any], Principal]:
        """The claims and principal of a token whose signature is ours; `rfc9068.InvalidToken`
        otherwise (expired included). Liveness is `token_problem`'s business."""
        if not isinstance(token, str) or len(token) > 8192:
            raise rfc9068.InvalidToken("not a compact JWS")
        key = hashlib.sha256(token.encode()).digest()
        now = clock.now().timestamp()
        found = self._entries.get(key)
        if found is not None:
            if now < found[0]:
                self.hits += 1
                return found[1], found[2]
            with self._lock:
                self._entries.pop(key, None)
        self.misses += 1
        claims = rfc9068.verify(self.keys, token, self.issuer)
        principal = Principal.from_claims(claims)
        # Trusted until `exp` only: the verifier's leeway is for clocks that disagree at the
        # edge, not a reason to keep serving a token from memory.
        expires = float(claims["exp"])
        if now < expires:
            with self._lock:
                self._entries[key] = (expires, claims, principal)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return claims, principal

    def __len__(self) -> int:
        return len(self._entries)


def token_problem(facts: FactIndex, claims: dict[str, Any], majority_age: int = 18) -> str | None:
    """Why a verified token is no longer good, from the facts; None while it is.

    The same questions as `authz.token_status.status_in`, in the same order (tests hold the two
    to the same answers): revoked, its OAuth client, its account, its grant, its shared email.
    """
    org = claims.get("org")
    if facts.is_revoked(str(claims.get("jti", ""))):
        return "the token was revoked"
    if facts.oauth_client_org(str(claims.get("client_id", ""))) != org:
        return "the OAuth client this token was issued to was removed"
    sub = str(claims.get("sub", ""))
    kind, _, ident = sub.partition(":")
    if kind == "client":
        if facts.client_org(ident) != org:
            return f"{sub} no longer exists"
        if not facts.is_active(ident):
            return f"{sub} was removed"
    elif kind in ("provider", "reviewer") and facts.staff_org(kind, ident) != org:
        return f"{sub} no longer exists"
    via = claims.get("authz_via")
    if via == "delegation":
        return _grant_problem(facts, claims, majority_age)
    if via == "shared_email" and claims.get("email_group"):
        email = facts.email_key(ident)
        if email is None or email_group(email) != claims["email_group"]:
            return "the account no longer shares that email address"
    return None


def _grant_problem(facts: FactIndex, claims: dict[str, Any], majority_age: int) -> str | None:
    link = facts.link_index(str(claims.get("grant", "")))
    if link is None:
        # The index keeps links with portal access only: one without is no grant either.
        return "the link behind this token was removed or has no portal access"
    info = facts.grant(link)
    if facts.client_org(info.receiver) != claims.get("org"):
        return "the link behind this token was removed"
    actor = (claims.get("act") or {}).get("sub", "")
    if f"client:{info.receiver}" != claims["sub"] or f"client:{info.caregiver}" != actor:
        return "the link no longer joins these accounts"
    state = facts.grant_state(link, clock.now())
    if not state.usable:
        return state.reason
    allowed = grants.LEVEL_SCOPES.get(info.level, frozenset())
    if not set(str(claims.get("scope", "")).split()) <= allowed:
        return "the grant was narrowed below this token's scope"
    return None
