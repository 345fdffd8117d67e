"""The hash-chained audit trail: canonical form, hashing and verification."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

GENESIS = "0" * 64


def jsonable(value: Any) -> Any:
    """Dates and other values in the plain JSON form that is hashed and stored."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items) if isinstance(value, set | frozenset) else items
    return str(value)


class Chained(Protocol):
    prev_hash: str
    hash: str


def canonical(fields: dict[str, Any]) -> bytes:
    """The bytes that are hashed: sorted keys, no spaces, UTC times."""
    return json.dumps(jsonable(fields), sort_keys=True, separators=(",", ":")).encode()


def _event_fields(ev: Any) -> dict[str, Any]:
    return {
        "id": ev.id,
        "at": ev.at,
        "org_id": ev.org_id,
        "actor": ev.actor,
        "kind": ev.kind,
        "entity_id": ev.entity_id,
        "client_ids": list(ev.client_ids or []),
        "before": ev.before,
        "after": ev.after,
        "revision": ev.revision,
        "policy_digest": ev.policy_digest,
    }


def chain_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """sha256 over the previous hash and this row's canonical content."""
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(fields)).hexdigest()


def event_hash(ev: Any) -> str:
    """The hash an audit event must carry."""
    return chain_hash(ev.prev_hash, _event_fields(ev))


@dataclass(frozen=True)
class Break:
    """The first place where a chain does not hold."""

    seq: int
    id: str
    reason: str


def verify_chain(
    rows: Iterable[Any], hasher: Any = event_hash, start_prev: str = GENESIS
) -> tuple[int, Break | None]:
    """Walk rows in `seq` order; return how many held and the first break, if any."""
    prev = start_prev
    last_seq = 0
    count = 0
    for row in rows:
        if row.seq <= last_seq:
            return count, Break(row.seq, row.id, "rows are out of order")
        if row.prev_hash != prev:
            return count, Break(
                row.seq, row.id, "previous-hash link broken: a row was deleted, inserted or moved"
            )
        if hasher(row) != row.hash:
            return count, Break(row.seq, row.id, "content does not match its hash: row edited")
        prev = row.hash
        last_seq = row.seq
        count += 1
    return count, None
