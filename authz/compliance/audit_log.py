"""Reading and verifying the stored audit trail (changes) and decision log (decisions)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from authz.compliance.retention import checkpoints
from authz.policy.decision_log import decision_fields, decision_hash
from authz.store import audit
from authz.store.db import Store
from authz.store.models import AuditEvent, ChainHead, Decision

BATCH = 5000
CHAINS: dict[str, Any] = {
    "changes": (AuditEvent, audit.event_hash),
    "decisions": (Decision, decision_hash),
}


def _rows(store: Store, model: Any) -> Iterator[Any]:
    # From below any seq a writer gives, so that a row moved to seq 0 or less is walked too.
    last = -(2**62)
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


class _Tail:
    """Walks rows through `verify_chain`, remembering the last one and the one at `seq`."""

    def __init__(self, rows: Iterator[Any], seq: int | None = None) -> None:
        self.rows, self.seq = rows, seq
        self.last: Any = None
        self.at_seq: Any = None

    def __iter__(self) -> Iterator[Any]:
        for row in self.rows:
            self.last = row
            if row.seq == self.seq:
                self.at_seq = row
            yield row


def heads(store: Store) -> dict[str, dict[str, Any]]:
    """Where the store says each chain ends (`chain_heads`): seq and hash of its newest row."""
    with store.read() as session:
        return {h.name: {"seq": h.seq, "hash": h.hash} for h in session.scalars(select(ChainHead))}


def verify(store: Store, against: dict[str, Any] | None = None) -> dict[str, Any]:
    """Walk both chains; report counts and the first broken link of each.

    After a retention purge a chain starts from its checkpoint (the hash of the last purged
    row, recorded in the changes chain itself), not from the genesis hash. A chain must end
    exactly at its head (`chain_heads`, moved with every write of its rows): a truncated or
    emptied table, or a last row moved elsewhere, does not. `against`, a verified signed
    checkpoint (`authz.compliance.audit_checkpoint`), must name a row of each chain that is
    still there with the same hash: a chain cut or re-hashed before it fails.
    """
    with store.read() as session:
        points = checkpoints(session)
    ends = heads(store)
    out: dict[str, Any] = {"ok": True}
    for name, (model, hasher) in CHAINS.items():
        point = points.get(name)
        start = point.hash if point else audit.GENESIS
        pinned = (against or {}).get(name)
        walk = _Tail(_rows(store, model), pinned["seq"] if pinned else None)
        count, broken = audit.verify_chain(walk, hasher, start)
        out[name] = {
            "verified": count,
            "checkpoint": point.as_dict() if point else None,
            "head": ends.get(name),
            "first_break": None,
        }
        if broken is None:
            broken = _end_break(name, walk.last, ends.get(name), point)
        if broken is None and pinned is not None:
            broken = _pinned_break(name, walk.at_seq, pinned, point)
            out[name]["signed_checkpoint"] = {"seq": pinned["seq"], "held": broken is None}
        if broken is not None:
            out["ok"] = False
            out[name]["first_break"] = {"seq": broken.seq, "id": broken.id, "reason": broken.reason}
    return out


def _end_break(name: str, last: Any, head: dict[str, Any] | None, point: Any) -> audit.Break | None:
    if head is None:
        return audit.Break(0, "", f"the {name} chain has no head record: chain_heads was edited")
    seq, digest = (last.seq, last.hash) if last is not None else (0, audit.GENESIS)
    if last is None and point is not None:
        seq, digest = point.seq, point.hash  # everything purged up to the checkpoint
    if (seq, digest) == (head["seq"], head["hash"]):
        return None
    return audit.Break(
        int(head["seq"]),
        last.id if last is not None else "",
        f"the chain ends at seq {seq}, not at its head seq {head['seq']}: rows at the end were"
        " deleted, emptied or moved",
    )


def _pinned_break(name: str, row: Any, pinned: dict[str, Any], point: Any) -> audit.Break | None:
    if row is not None and row.hash == pinned["hash"]:
        return None
    purged = point is not None and (
        point.seq > pinned["seq"] or (point.seq, point.hash) == (pinned["seq"], pinned["hash"])
    )
    if row is None and purged:
        return None  # purged by retention since: the purge event itself is in the chain
    why = "is missing" if row is None else "has another hash: the chain was rewritten"
    return audit.Break(
        int(pinned["seq"]),
        row.id if row is not None else "",
        f"the signed checkpoint's {name} row at seq {pinned['seq']} {why}",
    )


__all__ = ["decision_fields", "decision_hash", "verify"]
