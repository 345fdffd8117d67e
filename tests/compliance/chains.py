"""Writing decision-log rows with a correct hash chain, as the decision log itself does."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update

from authz.base import clock, ids
from authz.compliance.audit_log import decision_hash
from authz.policy.decision_log import HASH_FORMAT
from authz.store import audit
from authz.store.db import Store
from authz.store.models import ChainHead, Decision


def append_decisions(
    store: Store, rows: list[dict[str, Any]], hash_format: int | None = HASH_FORMAT
) -> list[str]:
    """Append decisions (org_id, actor, subject, action, owner, allowed, at…) to the chain,
    hashed in `hash_format` (None: as rows written before formats were recorded)."""
    made = []
    with store.sessions() as session:
        prev = session.scalar(select(Decision.hash).order_by(Decision.seq.desc()).limit(1))
        prev = prev or audit.GENESIS
        for data in rows:
            owner = data.get("owner")
            row = Decision(
                id=ids.new_id("dec"),
                at=data.get("at") or clock.now(),
                org_id=data["org_id"],
                actor=data.get("actor"),
                subject=data.get("subject", data.get("actor") or "client:unknown"),
                action=data.get("action", "invoice.read"),
                resource={"type": "invoice", "id": "inv_1", "owner": owner},
                owner_client_id=owner,
                allowed=data.get("allowed", True),
                reason=data.get("reason", "test decision"),
                rule=data.get("rule", "policies/caregivers.csv:9"),
                policy_digest="sha256:test",
                revision=1,
                prev_hash=prev,
                hash="",
                hash_format=hash_format,
            )
            row.hash = decision_hash(row)
            prev = row.hash
            session.add(row)
            made.append(row.id)
        session.flush()
        if made:
            # The head moves with the rows, as the log's writer moves it (on SQLite no trigger
            # does since migration f4a8d2c6b913).
            session.execute(
                update(ChainHead)
                .where(ChainHead.name == "decisions", ChainHead.seq < row.seq)
                .values(seq=row.seq, hash=row.hash)
            )
        session.commit()
    return made


def ago(days: float) -> dt.datetime:
    return clock.now() - dt.timedelta(days=days)
