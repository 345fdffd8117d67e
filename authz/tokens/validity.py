"""Access tokens at decision time: signatures verified once per token, liveness from the facts.

A check verifies two RFC 9068 tokens (the portal backend's and the user's). An ES256 verification
costs ~130 µs, more than the decision, so `TokenCache` keeps the claims of tokens whose signature
verified, keyed by the SHA-256 of the token (the token itself is never kept), bounded in size and
never past `exp`. Whether a verified token is still good *now* (`token_problem`) is the question
`authz.oauth.token_status.status_in` answers from the store, answered here from the `FactIndex`, which
the caller has made fresh by revision: a revoke that returned is seen by the next check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections import OrderedDict
from typing import Any, NamedTuple

from authz.base import clock
from authz.base.principals import Principal
from authz.policy import delegation, grants
from authz.policy.engine import Subject
from authz.policy.facts import FactIndex
from authz.tokens import rfc9068
from authz.tokens.keys import KeyRing

#: Tokens kept; a claims set and its principal take about 1.5 kB, so this bounds the cache at a
#: few MB whatever callers send (unknown subjects must not grow memory).
DEFAULT_SIZE = 4096


class Verified(NamedTuple):
    """A token whose signature verified, and why it is not good now (None while it is)."""

    claims: dict[str, Any]
    principal: Principal
    subject: Subject
    problem: str | None


class _Entry:
    """A verified token: its claims, its principal and subject, and when it was last found good."""

    __slots__ = ("claims", "expires", "good", "principal", "subject")

    def __init__(self, expires: float, claims: dict[str, Any], principal: Principal) -> None:
        self.expires, self.claims, self.principal = expires, claims, principal
        self.subject: Subject | None = None
        #: (facts revision, until): the token was good at that revision, and stays good at it
        #: until then (its grant's end). One tuple, so that threads never see half of it.
        self.good: tuple[int, float] = (-1, 0.0)


class TokenCache:
    """Verified tokens by hash: `claims` and `Principal`, dropped at `exp`, oldest out first."""

    def __init__(self, keys: KeyRing, issuer: str, size: int = DEFAULT_SIZE) -> None:
        self.keys, self.issuer, self.size = keys, issuer, size
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def verify(self, token: str) -> tuple[dict[str, Any], Principal]:
        """The claims and principal of a token whose signature is ours; `rfc9068.InvalidToken`
        otherwise (expired included). Liveness is `token_problem`'s business."""
        entry = self._verified(token, clock.now().timestamp())
        return entry.claims, entry.principal

    def live(self, token: str, facts: FactIndex, majority_age: int = 18) -> Verified:
        """`verify`, then `token_problem` on `facts`; a token found good is not asked again
        until the facts change or its grant could end (expiry, age of majority)."""
        now = clock.now()
        stamp = now.timestamp()
        entry = self._verified(token, stamp)
        subject = entry.subject
        if subject is None:
            subject = entry.subject = Subject.from_principal(entry.principal)
        revision = facts.revision  # read first: a refresh meanwhile only makes this older
        good_at, good_until = entry.good
        if good_at == revision and stamp < good_until:
            return Verified(entry.claims, entry.principal, subject, None)
        found = _problem(facts, entry.claims, majority_age, now)
        if isinstance(found, str):
            return Verified(entry.claims, entry.principal, subject, found)
        entry.good = (revision, min(found, entry.expires))
        return Verified(entry.claims, entry.principal, subject, None)

    def _verified(self, token: str, now: float) -> _Entry:
        if not isinstance(token, str) or len(token) > 8192:
            raise rfc9068.InvalidToken("not a compact JWS")
        key = hashlib.sha256(token.encode()).digest()
        found = self._entries.get(key)
        if found is not None:
            if now < found.expires:
                self.hits += 1
                return found
            with self._lock:
                self._entries.pop(key, None)
        self.misses += 1
        claims = rfc9068.verify(self.keys, token, self.issuer)
        # Trusted until `exp` only: the verifier's leeway is for clocks that disagree at the
        # edge, not a reason to keep serving a token from memory.
        entry = _Entry(float(claims["exp"]), claims, Principal.from_claims(claims))
        if now < entry.expires:
            with self._lock:
                self._entries[key] = entry
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return entry

    def __len__(self) -> int:
        return len(self._entries)


def token_problem(
    facts: FactIndex,
    claims: dict[str, Any],
    majority_age: int = 18,
    now: dt.datetime | None = None,
) -> str | None:
    """Why a verified token is no longer good, from the facts; None while it is.

    The same questions as `authz.oauth.token_status.status_in`, in the same order (tests hold the two
    to the same answers): revoked, its OAuth client, its account, its grant, its shared email.
    """
    found = _problem(facts, claims, majority_age, now or clock.now())
    return found if isinstance(found, str) else None


_FOREVER = float("inf")


def _problem(
    facts: FactIndex, claims: dict[str, Any], majority_age: int, now: dt.datetime
) -> str | float:
    """Why the token is not good now; or, while it is, until when that holds on the same facts
    (a timestamp: its grant's end, or never)."""
    org = claims.get("org")
    if facts.is_revoked(str(claims.get("jti", ""))):
        return "the token was revoked"
    client_id = str(claims.get("client_id", ""))
    if facts.oauth_client_org(client_id) != org:
        return "the OAuth client this token was issued to was removed"
    if not audiences_of(claims) & facts.oauth_client_audiences(client_id):
        # RFC 9068 §4: a token counts only for an audience its client is registered for.
        return "the token's audience is not one its OAuth client is registered for"
    sub = str(claims.get("sub", ""))
    kind, _, ident = sub.partition(":")
    if kind == "client":
        if facts.client_org(ident) != org:
            return f"{sub} no longer exists"
        if not facts.is_active(ident):
            return f"{sub} was removed"
    elif kind in ("provider", "reviewer") and facts.staff_org(kind, ident) != org:
        return f"{sub} no longer exists"
    proven = delegation.proven_email_problem(facts, claims)
    if proven is not None:
        return proven
    via = claims.get("authz_via")
    if via == "delegation":
        return _grant_problem(facts, claims, majority_age, now)
    if via == "shared_email":
        # The toggle stands while the login's account (`act`) still shares the email.
        actor = (claims.get("act") or {}).get("sub", "")
        if not isinstance(actor, str) or not facts.has_relation(actor, "shared_email", ident, now):
            return "the account no longer shares the login's email address"
    return _FOREVER


def audiences_of(claims: dict[str, Any]) -> frozenset[str]:
    """`aud` as a set (RFC 7519 §4.1.3: a string or an array of strings)."""
    aud = claims.get("aud")
    if isinstance(aud, str):
        return frozenset((aud,))
    if isinstance(aud, list):
        return frozenset(a for a in aud if isinstance(a, str))
    return frozenset()


def _grant_problem(
    facts: FactIndex, claims: dict[str, Any], majority_age: int, now: dt.datetime
) -> str | float:
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
    state = facts.grant_state(link, now)
    if not state.usable:
        return state.reason
    if claims.get("grant_activated") != facts.activated_micros(link):
        # Revoked and enabled again, the grant is a new one: only tokens issued since count.
        return "the grant was ended and granted again since this token was issued"
    allowed = grants.LEVEL_SCOPES.get(info.level, frozenset())
    if not set(str(claims.get("scope", "")).split()) <= allowed:
        return "the grant was narrowed below this token's scope"
    return state.ends_at.timestamp() if state.ends_at is not None else _FOREVER
