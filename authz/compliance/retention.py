"""Audit retention: purge rows past the retention period without breaking either hash chain.

Only a prefix of each chain is ever removed, and never its newest row (so that the next row
written still links to a kept one). Each purge appends an `audit.purge` event to the changes
chain holding a checkpoint per chain, the hash and seq of the last row removed, which
`authz audit verify` starts from. The event carries earlier checkpoints forward, so the newest
one alone says where each chain now begins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from authz.base.config import Settings
from authz.base.errors import ValidationFailed
from authz.store import audit
from authz.store.db import Store
from authz.store.models import AuditEvent, Decision

PURGE_KIND = "audit.purge"
ENV = "AUTHZ_AUDIT_RETENTION_DAYS"
#: Six years (HIPAA keeps documentation six years), counted generously.
MIN_DAYS = Settings().audit_retention_days
MIN_DEV_DAYS = 1
#: Rows removed per transaction, so that writers never wait long on the purge.
BATCH = 5000
CHAINS: dict[str, type[AuditEvent] | type[Decision]] = {
    "changes": AuditEvent,
    "decisions": Decision,
}


@dataclass(frozen=True)
class Checkpoint:
    """The last purged row of a chain: verification starts from its hash."""

    seq: int
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash}


def configured_days(env: Mapping[str, str]) -> int:
    """The retention asked for in `env`, or ValidationFailed if it is not allowed.

    Settings quietly raise a short retention to the minimum; a purge refuses it instead, so
    that an operator who asked for less learns that it is not allowed.
    """
    dev_mode = Settings.from_env({"AUTHZ_DEV_MODE": env.get("AUTHZ_DEV_MODE", "")}).dev_mode
    raw = env.get(ENV)
    if raw in (None, ""):
        return MIN_DAYS
    assert raw is not None
    try:
        days = int(raw)
    except ValueError:
        raise ValidationFailed([(ENV, "must be a whole number of days")]) from None
    floor = MIN_DEV_DAYS if dev_mode else MIN_DAYS
    if days < floor:
        why = "" if dev_mode else " (six years; shorter only in development mode)"
        raise ValidationFailed([(ENV, f"must be at least {floor} days{why}")])
    return days


def checkpoints(session: Session) -> dict[str, Checkpoint]:
    """Where each chain begins now, from the newest `audit.purge` event (empty if none)."""
    after = session.scalar(
        select(AuditEvent.after)
        .where(AuditEvent.kind == PURGE_KIND)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )
    out: dict[str, Checkpoint] = {}
    for name, point in ((after or {}).get("checkpoints") or {}).items():
        if isinstance(point, dict) and name in CHAINS:
            out[name] = Checkpoint(int(point["seq"]), str(point["hash"]))
    return out


def _purgeable_through(
    session: Session, model: type[AuditEvent] | type[Decision], cutoff: dt.datetime
) -> int:
    """The highest seq such that it and every row before it are older than `cutoff`."""
    tail = session.scalar(select(func.max(model.seq))) or 0
    first_young = session.scalar(select(func.min(model.seq)).where(model.at >= cutoff))
    limit = tail - 1 if first_young is None else min(first_young - 1, tail - 1)
    return max(limit, 0)


def plan(store: Store, cutoff: dt.datetime) -> dict[str, int]:
    """How many rows of each chain a purge at `cutoff` would remove."""
    out = {}
    with store.read() as session:
        for name, model in CHAINS.items():
            through = _purgeable_through(session, model, cutoff)
            out[name] = int(session.scalar(select(func.count()).where(model.seq <= through)) or 0)
    return out


def purge(
    store: Store, actor: str, retention_days: int, now: dt.datetime, dry_run: bool = False
) -> dict[str, Any]:
    """Remove rows older than the retention period, in batches, each with its checkpoint."""
    cutoff = now - dt.timedelta(days=retention_days)
    result: dict[str, Any] = {
        "retention_days": retention_days,
        "cutoff": audit.jsonable(cutoff),
        "dry_run": dry_run,
        "purged": {name: 0 for name in CHAINS},
    }
    if dry_run:
        result["purged"] = plan(store, cutoff)
        return result
    while any(plan(store, cutoff).values()):
        with store.write(actor) as txn:
            session = txn.session
            points = checkpoints(session)
            batch: dict[str, int] = {}
            for name, model in CHAINS.items():
                through = _purgeable_through(session, model, cutoff)
                rows = session.execute(
                    select(model.seq, model.hash)
                    .where(model.seq <= through)
                    .order_by(model.seq)
                    .limit(BATCH)
                ).all()
                if not rows:
                    continue
                last_seq, last_hash = rows[-1]
                session.execute(delete(model).where(model.seq <= last_seq))
                points[name] = Checkpoint(int(last_seq), str(last_hash))
                batch[name] = len(rows)
            if not batch:
                break  # another purge got there first
            txn.record(
                PURGE_KIND,
                None,
                None,
                {
                    "retention_days": retention_days,
                    "cutoff": cutoff,
                    "purged": batch,
                    "checkpoints": {k: v.as_dict() for k, v in sorted(points.items())},
                },
            )
        for name, n in batch.items():
            result["purged"][name] += n
    with store.read() as session:
        result["checkpoints"] = {k: v.as_dict() for k, v in checkpoints(session).items()}
    return result
