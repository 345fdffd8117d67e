"""An adolescent's consent to share sensitivity categories with a named caregiver, and its
withdrawal (policies/adolescents.csv, `g3` in model.conf). Each is audited (`share.given`,
`share.withdrawn`) and takes effect at the next check."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import or_, select

from authz.accounts.clients import get_in_org
from authz.base import clock, ids
from authz.base.errors import Conflict, Forbidden, ValidationFailed
from authz.policy.age_bands import BandTable
from authz.policy.vocabulary import LABELS
from authz.store.db import Store
from authz.store.models import CategoryShare, Client, Link, Organization


def _check(
    session: Any, org_id: str, actor: str, minor_id: str, caregiver_id: str, statement: str
) -> Client:
    """The minor, if the actor may speak for them, they are in the adolescent band or older,
    and the caregiver is linked to them; else the error that says why."""
    minor = get_in_org(session, minor_id, org_id, "client")
    get_in_org(session, caregiver_id, org_id, "caregiver")
    kind, _, who = actor.partition(":")
    if kind == "client" and who != minor_id:
        raise Forbidden("only the minor, or a provider on their behalf, decides what they share")
    if kind not in ("client", "provider"):
        raise Forbidden("only the minor, or a provider on their behalf, decides what they share")
    if kind == "provider" and not statement.strip():
        raise ValidationFailed([("statement", "a provider records the minor's own statement")])
    if minor.client_type == "minor" and minor.birth_date is not None:
        org = session.get(Organization, org_id)
        band = BandTable.load().band(org.jurisdiction, minor.birth_date, clock.now().date())
        if band.name == "child":
            raise Conflict(
                f"{minor.first_name} is {band.age}, in {band.describe()}: sharing starts at "
                f"{band.ages.adolescent}"
            )
    linked = session.execute(
        select(Link.id).where(
            or_(
                (Link.original_client_id == minor_id) & (Link.linked_client_id == caregiver_id),
                (Link.original_client_id == caregiver_id) & (Link.linked_client_id == minor_id),
            )
        )
    ).first()
    if linked is None:
        raise Conflict(f"{caregiver_id} is not linked to {minor_id}")
    return minor


def _labels(labels: Any) -> list[str]:
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ValidationFailed([("labels", "a non-empty list of sensitivity labels")])
    unknown = sorted({x for x in labels if x not in LABELS})
    if unknown:
        raise ValidationFailed(
            [("labels", f"unknown sensitivity label {unknown[0]!r}; known: {', '.join(LABELS)}")]
        )
    return sorted(set(labels))


def _view(row: CategoryShare) -> dict[str, Any]:
    return {
        "id": row.id,
        "minor_id": row.minor_id,
        "caregiver_id": row.caregiver_id,
        "label": row.label,
        "statement": row.statement,
        "recorded_by": row.recorded_by,
        "created_at": row.created_at,
        "withdrawn_at": row.withdrawn_at,
        "withdrawn_by": row.withdrawn_by,
        "withdrawn_statement": row.withdrawn_statement,
    }


def active(session: Any, minor_id: str) -> list[CategoryShare]:
    """The minor's consents in force."""
    return list(
        session.scalars(
            select(CategoryShare)
            .where(CategoryShare.minor_id == minor_id, CategoryShare.withdrawn_at.is_(None))
            .order_by(CategoryShare.caregiver_id, CategoryShare.label)
        )
    )


def share(
    store: Store,
    actor: str,
    org_id: str,
    minor_id: str,
    caregiver_id: str,
    labels: Any,
    statement: str = "",
) -> dict[str, Any]:
    """The minor shares `labels` with the caregiver (already shared ones stay as they are)."""
    wanted = _labels(labels)
    with store.write(actor, org_id) as txn:
        _check(txn.session, org_id, actor, minor_id, caregiver_id, statement)
        held = {r.label for r in active(txn.session, minor_id) if r.caregiver_id == caregiver_id}
        now = clock.now()
        for label in wanted:
            if label in held:
                continue
            row = CategoryShare(
                id=ids.new_id("shr"),
                org_id=org_id,
                minor_id=minor_id,
                caregiver_id=caregiver_id,
                label=label,
                statement=statement,
                recorded_by=actor,
                created_at=now,
            )
            txn.session.add(row)
            txn.record("share.given", minor_id, None, _view(row), [minor_id, caregiver_id])
    return shares_of(store, org_id, minor_id) | {"revision": str(txn.revision)}


def withdraw(
    store: Store,
    actor: str,
    org_id: str,
    minor_id: str,
    caregiver_id: str,
    labels: Any,
    statement: str = "",
) -> dict[str, Any]:
    """The minor withdraws `labels` from the caregiver; effective at the next check."""
    wanted = set(_labels(labels))
    with store.write(actor, org_id) as txn:
        _check(txn.session, org_id, actor, minor_id, caregiver_id, statement)
        now: dt.datetime = clock.now()
        for row in active(txn.session, minor_id):
            if row.caregiver_id == caregiver_id and row.label in wanted:
                before = _view(row)
                row.withdrawn_at, row.withdrawn_by = now, actor
                row.withdrawn_statement = statement
                txn.record(
                    "share.withdrawn", minor_id, before, _view(row), [minor_id, caregiver_id]
                )
    return shares_of(store, org_id, minor_id) | {"revision": str(txn.revision)}


def shares_of(store: Store, org_id: str, minor_id: str) -> dict[str, Any]:
    """The minor's consents in force, and those withdrawn."""
    with store.read() as session:
        get_in_org(session, minor_id, org_id, "client")
        rows = session.scalars(
            select(CategoryShare)
            .where(CategoryShare.minor_id == minor_id)
            .order_by(CategoryShare.created_at, CategoryShare.id)
        )
        return {"client_id": minor_id, "items": [_view(r) for r in rows]}
