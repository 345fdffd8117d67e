"""The store's tables. Invariants that the database can hold are constraints here."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: DateTime(timezone=True), dict[str, Any]: JSON}


RELATIONSHIPS = (
    "caregiver",
    "child",
    "dependent",
    "family_member",
    "legal_guardian",
    "parent",
    "spouse",
    "other",
)
CLIENT_TYPES = ("adult", "minor")
PORTAL_STATES = ("pending", "active", "revoked", "expired")
ACCESS_LEVELS = ("full", "billing", "scheduling")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class State(Base):
    """One row: the store's revision, bumped by every write (and the writers' lock)."""

    __tablename__ = "state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
    __table_args__ = (CheckConstraint("id = 1", name="state_single_row"),)


class Organization(Base):
    __tablename__ = "organizations"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    entitlements: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime]
    #: Where the practice is (a row of policies/age_bands.yaml; None: the table's default).
    jurisdiction: Mapped[str | None] = mapped_column(String(16), nullable=True, default=None)


class Provider(Base):
    __tablename__ = "providers"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime]
    __table_args__ = (UniqueConstraint("org_id", "email"),)


class Reviewer(Base):
    __tablename__ = "reviewers"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime]
    __table_args__ = (UniqueConstraint("org_id", "email"),)


class Client(Base):
    __tablename__ = "clients"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100), default="")
    client_type: Mapped[str] = mapped_column(String(10))
    birth_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    client_group: Mapped[str | None] = mapped_column(String(100), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    __table_args__ = (
        CheckConstraint(_in("client_type", CLIENT_TYPES), name="client_type_known"),
        Index("ix_clients_org_email", "org_id", "email"),
    )


class Contact(Base):
    __tablename__ = "contacts"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    relationship: Mapped[str] = mapped_column(String(20))
    emergency_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    notify: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime]
    __table_args__ = (
        CheckConstraint(_in("relationship", RELATIONSHIPS), name="contact_relationship_known"),
    )


class Link(Base):
    """Original client A linked to client B; portal access lets B act as A."""

    __tablename__ = "links"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    original_client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), index=True)
    linked_client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), index=True)
    # The unordered pair, so that A-B and B-A cannot both exist.
    pair_key: Mapped[str] = mapped_column(String(100), unique=True)
    relationship: Mapped[str] = mapped_column(String(20))
    client_type: Mapped[str] = mapped_column(String(10))
    emergency_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    notify: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    portal_status: Mapped[str | None] = mapped_column(String(10), nullable=True, index=True)
    access_level: Mapped[str | None] = mapped_column(String(12), nullable=True)
    acknowledgement: Mapped[str | None] = mapped_column(Text, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    activated_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    # Recertification: an active grant nobody re-approves by `review_by` lapses
    # (`authz.policy.grants`).
    review_by: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    recertified_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    recertified_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    recertified_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Bumped whenever the grant changes, so that tokens minted before an edit can be told apart.
    grant_version: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (
        CheckConstraint("original_client_id <> linked_client_id", name="link_not_self"),
        CheckConstraint(_in("relationship", RELATIONSHIPS), name="link_relationship_known"),
        CheckConstraint(_in("client_type", CLIENT_TYPES), name="link_client_type_known"),
        CheckConstraint(
            "portal_status IS NULL OR " + _in("portal_status", PORTAL_STATES),
            name="link_portal_status_known",
        ),
        CheckConstraint(
            "access_level IS NULL OR " + _in("access_level", ACCESS_LEVELS),
            name="link_access_level_known",
        ),
        CheckConstraint(
            "portal_status IS NULL"
            " OR (acknowledgement IS NOT NULL AND acknowledged_by IS NOT NULL)",
            name="link_portal_access_acknowledged",
        ),
    )


class Invite(Base):
    __tablename__ = "invites"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    link_id: Mapped[str] = mapped_column(ForeignKey("links.id"), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    #: Wrong answers to the proof of relationship; the fifth locks the invite.
    proof_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    proved_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    locked_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    declined_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class PaymentMethod(Base):
    """A payment method's id is the organization's own: another organization may use the same
    id, and whether it does is never revealed (issue 12). The key is (org_id, id)."""

    __tablename__ = "payment_methods"
    # NOTE: org_id comes first; `Session.get(PaymentMethod, (org_id, id))` follows this order.
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime]


class OutboxMessage(Base):
    __tablename__ = "outbox"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    client_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime]
    sent_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class AuditEvent(Base):
    """Append-only, hash-chained: each row's hash covers its content and the previous hash."""

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    at: Mapped[dt.datetime]
    org_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(60), index=True)
    entity_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    client_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Replicas catch up by revision range (`FactIndex.refresh`): without this index every
    # catch-up scans the whole trail.
    revision: Mapped[int] = mapped_column(BigInteger, index=True)
    policy_digest: Mapped[str] = mapped_column(String(80), default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ChainHead(Base):
    """Where a hash chain (`changes`, `decisions`) must end: its newest row's seq and hash.

    Moved forward by a trigger on every insert (migration e7a3c1f04b92), never by hand; on
    SQLite, the decisions chain's by its writer once a write instead (f4a8d2c6b913)."""

    __tablename__ = "chain_heads"
    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class OAuthClient(Base):
    __tablename__ = "oauth_clients"
    client_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(200), default="")
    secret_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    auth_method: Mapped[str] = mapped_column(String(40), default="client_secret_basic")
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    audiences: Mapped[list[str]] = mapped_column(JSON, default=list)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    grant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime]
    disabled_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)


class SigningKey(Base):
    """Asymmetric keys. `purpose` is `access_token` or `dev_issuer`."""

    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(20), default="access_token")
    alg: Mapped[str] = mapped_column(String(10))
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    # A retired key no longer signs but stays published until tokens it signed have expired.
    retired_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    __table_args__ = (CheckConstraint("alg IN ('ES256', 'EdDSA')", name="asymmetric_only"),)


class RevokedToken(Base):
    __tablename__ = "revoked_tokens"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime]


class Decision(Base):
    """The decision log: one row per access decision, without tokens or secrets."""

    __tablename__ = "decisions"
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    org_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    actor: Mapped[str | None] = mapped_column(String(80), nullable=True)
    subject: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(80))
    resource: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Not indexed: an index on it would take each appended row at a random place (see the
    # migration 9d3f6a2b7c41); the review of one client reads its organization's decisions.
    owner_client_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    allowed: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    rule: Mapped[str] = mapped_column(Text)
    policy_digest: Mapped[str] = mapped_column(String(80))
    revision: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    #: How `hash` covers the row (`authz.policy.decision_log.decision_hash`); NULL is 1.
    hash_format: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)


#: The tables behind `client:`, `provider:` and `reviewer:` subjects.
ACCOUNT_MODELS: dict[str, type[Client] | type[Provider] | type[Reviewer]] = {
    "client": Client,
    "provider": Provider,
    "reviewer": Reviewer,
}


class CategoryShare(Base):
    """A minor's consent to share one sensitivity category with one named caregiver
    (policies/adolescents.csv); withdrawn, it stays as history."""

    __tablename__ = "category_shares"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    minor_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), index=True)
    caregiver_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    label: Mapped[str] = mapped_column(String(8))
    #: The minor's statement, in their words (recorded by whoever acted for them).
    statement: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime]
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    withdrawn_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    withdrawn_statement: Mapped[str | None] = mapped_column(Text, nullable=True)
