"""Payment-method ownership: each belongs to exactly one client, never used for another.

A payment-method id is its organization's own: another organization may register the same id
for its own client, and nothing here tells either one that the other did.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from authz.accounts.clients import get_in_org
from authz.base import clock
from authz.base.errors import Conflict, ValidationFailed
from authz.store.db import Store
from authz.store.models import PaymentMethod

_PM = re.compile(r"pm_[A-Za-z0-9_]{1,60}")
# A label is shown to people; anything that looks like a card number is refused outright.
_DIGITS = re.compile(r"\d[\d \-]{11,}\d")


def payment_view(pm: PaymentMethod) -> dict[str, Any]:
    """A payment method as the API shows it."""
    return {"id": pm.id, "client_id": pm.client_id, "label": pm.label}


def register(
    store: Store, actor: str, org_id: str, client_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    """Record that the organization's payment method `id` belongs to `client_id`."""
    errors = [(k, "unknown field") for k in data if k not in ("id", "label")]
    pm_id, label = data.get("id"), data.get("label", "")
    if not isinstance(pm_id, str) or not _PM.fullmatch(pm_id):
        errors.append(("id", "must be a payment method id like pm_123"))
    if not isinstance(label, str) or len(label) > 100:
        errors.append(("label", "must be text of at most 100 characters"))
    elif _DIGITS.search(label):
        errors.append(("label", "must not contain card data"))
    if errors:
        raise ValidationFailed(errors)
    assert isinstance(pm_id, str)
    with store.write(actor, org_id) as txn:
        get_in_org(txn.session, client_id, org_id)
        # Only this organization's ids are looked at: whether another organization uses the
        # id is none of the caller's business (issue 12).
        existing = txn.session.get(PaymentMethod, (org_id, pm_id))
        if existing is not None:
            # Ownership never moves: the same id cannot be registered to a second client.
            raise Conflict(f"payment method {pm_id} is already registered")
        pm = PaymentMethod(
            id=pm_id, org_id=org_id, client_id=client_id, label=label, created_at=clock.now()
        )
        txn.session.add(pm)
        txn.record("payment_method.registered", pm_id, None, payment_view(pm), [client_id])
    return payment_view(pm) | {"revision": str(txn.revision)}


def list_for_client(store: Store, org_id: str, client_id: str) -> dict[str, Any]:
    """One client's own payment methods, and no one else's."""
    with store.read() as session:
        get_in_org(session, client_id, org_id)
        rows = session.scalars(
            select(PaymentMethod)
            .where(PaymentMethod.org_id == org_id, PaymentMethod.client_id == client_id)
            .order_by(PaymentMethod.id)
        )
        return {"items": [payment_view(p) for p in rows], "next_cursor": None}
