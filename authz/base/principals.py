"""Who is calling: the principal a verified token speaks for, and what it may administer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from authz.base.errors import Forbidden, Unauthenticated

ADMIN_SCOPE = "authz:admin"
CHECK_SCOPE = "authz:check"
CHECK_SUBJECTS_SCOPE = "authz:check:subjects"
REVIEW_SCOPE = "authz:review"


@dataclass(frozen=True)
class Principal:
    """The verified caller. `kind` is client, provider, reviewer or service (an OAuth client)."""

    kind: str
    id: str
    org_id: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    via: str = "self"
    actor: str | None = None
    grant: str | None = None
    client_id: str | None = None
    jti: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def label(self) -> str:
        """`kind:id` as it appears in tokens and the audit trail."""
        base = f"{self.kind}:{self.id}"
        return f"{self.actor} as {base}" if self.actor else base

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        """The principal of a verified access token."""
        sub = str(claims.get("sub", ""))
        kind, _, ident = sub.partition(":")
        if ":" not in sub and sub and sub == claims.get("client_id"):
            # RFC 9068 §2.2: a client_credentials token's `sub` is the client itself.
            kind, ident = "service", sub
        if kind not in {"client", "provider", "reviewer", "service"} or not ident:
            raise Unauthenticated("token subject is not an account")
        act = claims.get("act")
        return cls(
            kind=kind,
            id=ident,
            org_id=str(claims.get("org", "")),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            via=str(claims.get("authz_via", "self")),
            actor=act.get("sub") if isinstance(act, dict) else None,
            grant=claims.get("grant"),
            client_id=claims.get("client_id"),
            jti=claims.get("jti"),
            claims=claims,
        )

    def is_admin_of(self, org_id: str) -> bool:
        """A provider of the organization, or a service client with `authz:admin` there."""
        if self.org_id != org_id or self.actor is not None:
            return False
        return self.kind in ("provider", "service") and ADMIN_SCOPE in self.scopes

    def is_reviewer_of(self, org_id: str) -> bool:
        """Compliance staff (or a service with `authz:review`) of the organization."""
        if self.org_id != org_id or self.actor is not None:
            return False
        return self.kind in ("reviewer", "service") and REVIEW_SCOPE in self.scopes


def require_admin(principal: Principal) -> str:
    """The organization the caller administers, or Forbidden."""
    if not principal.is_admin_of(principal.org_id):
        raise Forbidden("this needs a provider's token or a client token with authz:admin")
    return principal.org_id


def require_reader(principal: Principal) -> str:
    """Admins and reviewers may read an organization's records."""
    if not (principal.is_admin_of(principal.org_id) or principal.is_reviewer_of(principal.org_id)):
        raise Forbidden("this needs a provider's, a reviewer's or an admin client's token")
    return principal.org_id


def require_reviewer(principal: Principal) -> str:
    """Compliance reads: reviewers, and providers of the same organization."""
    if not (principal.is_reviewer_of(principal.org_id) or principal.is_admin_of(principal.org_id)):
        raise Forbidden("this needs a reviewer's token")
    return principal.org_id
