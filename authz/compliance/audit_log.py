"""Reading and verifying the stored audit trail (changes) and decision log (decisions)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from authz.compliance.retention import checkpoints
from authz.policy.decision_log import decision_fields, decision_hash
from authz.store import audit
from authz.store.db import Store
from authz.store.models import AuditEvent, Decision

BATCH = 5000


def _rows(store: Store, model: Any) -> Iterator[Any]:
    last = 0
    while True:
        with store.read() as session:
            batch = list(
                session.scalars(
                    select(model).where(model.seq > last).order_by(model.seq).limit(BATCH)
                )
            )
        if not batch:
            return
        yield from batch
        last = batch[-1].seq


def verify(store: Store) -> dict[str, Any]:
    """Walk both chains; report counts and the first broken link of each.

    After a retention purge a chain starts from its checkpoint (the hash of the last purged
    row, recorded in the changes chain itself), not from the genesis hash.
    """
    with store.read() as session:
        points = checkpoints(session)
    out: dict[str, Any] = {"ok": True}
    for name, model, hasher in (
        ("changes", AuditEvent, audit.event_hash),
        ("decisions", Decision, decision_hash),
    ):
        point = points.get(name)
        start = point.hash if point else audit.GENESIS
        count, broken = audit.verify_chain(_rows(store, model), hasher, start)
        out[name] = {
            "verified": count,
            "checkpoint": point.as_dict() if point else None,
            "first_break": None,
        }
        if broken is not None:
            out["ok"] = False
            out[name]["first_break"] = {"seq": broken.seq, "id": broken.id, "reason": broken.reason}
    return out


__all__ = ["decision_fields", "decision_hash", "verify"]
