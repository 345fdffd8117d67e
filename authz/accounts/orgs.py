"""Organizations, their entitlements, providers and reviewers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from authz.base import clock, ids
from authz.base.emails import normalize_email
from authz.base.errors import Conflict, NotFound, ValidationFailed
from authz.policy import grants
from authz.store.db import Store
from authz.store.models import Organization, Provider, Reviewer

ENTITLEMENTS = (grants.ENTITLEMENT,)


def org_view(org: Organization) -> dict[str, Any]:
    return {"id": org.id, "name": org.name, "entitlements": sorted(org.entitlements)}


def staff_view(staff: Provider | Reviewer) -> dict[str, Any]:
    return {"id": staff.id, "org_id": staff.org_id, "email": staff.email, "name": staff.name}


def create_org(store: Store, actor: str, name: str, entitlements: list[str]) -> dict[str, Any]:
    """A new organization with the given entitlements."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed([("name", "is required")])
    unknown = sorted(set(entitlements) - set(ENTITLEMENTS))
    if unknown:
        raise ValidationFailed([("entitlement", f"unknown: {', '.join(unknown)}")])
    org = Organization(
        id=ids.new_id("org"),
        name=name,
        entitlements=sorted(set(entitlements)),
        created_at=clock.now(),
    )
    with store.write(actor, org.id) as txn:
        txn.session.add(org)
        txn.record("org.created", org.id, None, org_view(org))
    return org_view(org) | {"revision": str(txn.revision)}


def set_entitlements(store: Store, actor: str, org_id: str, entitlements: list[str]) -> None:
    """Replace an organization's entitlements."""
    unknown = sorted(set(entitlements) - set(ENTITLEMENTS))
    if unknown:
        raise ValidationFailed([("entitlement", f"unknown: {', '.join(unknown)}")])
    with store.write(actor, org_id) as txn:
        org = txn.session.get(Organization, org_id)
        if org is None:
            raise NotFound(f"organization {org_id} not found")
        before = org_view(org)
        org.entitlements = sorted(set(entitlements))
        txn.record("org.entitlements_changed", org_id, before, org_view(org))


def set_jurisdiction(store: Store, actor: str, org_id: str, jurisdiction: str | None) -> None:
    """Set where the organization practises: a row of policies/age_bands.yaml (None: the
    table's default). Minors' bands follow at the next check."""
    from authz.policy.age_bands import BandTable

    table = BandTable.load()
    if jurisdiction is not None and jurisdiction not in table.rows:
        raise ValidationFailed(
            [("jurisdiction", f"not in policies/age_bands.yaml: {', '.join(sorted(table.rows))}")]
        )
    with store.write(actor, org_id) as txn:
        org = txn.session.get(Organization, org_id)
        if org is None:
            raise NotFound(f"organization {org_id} not found")
        before = {"jurisdiction": org.jurisdiction}
        org.jurisdiction = jurisdiction
        txn.record("org.jurisdiction_changed", org_id, before, {"jurisdiction": jurisdiction})


def _create_staff(
    store: Store,
    actor: str,
    model: type[Provider] | type[Reviewer],
    prefix: str,
    org_id: str,
    email: str,
    name: str,
) -> dict[str, Any]:
    email = normalize_email(email)
    with store.write(actor, org_id) as txn:
        if txn.session.get(Organization, org_id) is None:
            raise NotFound(f"organization {org_id} not found")
        exists = txn.session.scalar(
            select(model.id).where(model.org_id == org_id, model.email == email)
        )
        if exists:
            raise Conflict(f"{email} is already {prefix} {exists} of {org_id}")
        staff = model(
            id=ids.new_id(prefix), org_id=org_id, email=email, name=name, created_at=clock.now()
        )
        txn.session.add(staff)
        kind = "provider" if model is Provider else "reviewer"
        txn.record(f"{kind}.created", staff.id, None, staff_view(staff))
    return staff_view(staff) | {"revision": str(txn.revision)}


def create_provider(
    store: Store, actor: str, org_id: str, email: str, name: str = ""
) -> dict[str, Any]:
    """Practice staff who manage the organization's clients."""
    return _create_staff(store, actor, Provider, "prv", org_id, email, name)


def create_reviewer(
    store: Store, actor: str, org_id: str, email: str, name: str = ""
) -> dict[str, Any]:
    """Compliance staff, read-only."""
    return _create_staff(store, actor, Reviewer, "rev", org_id, email, name)


def get_org(store: Store, org_id: str) -> dict[str, Any]:
    with store.read() as session:
        org = session.get(Organization, org_id)
        if org is None:
            raise NotFound(f"organization {org_id} not found")
        return org_view(org)
