"""Reading the audit trail for reviewers: changes and decisions of one organization, filtered.

Every read is itself audited (`audit.read`, with its filters) before any row is returned, so a
read that cannot be recorded returns nothing (fail closed).
"""

from __future__ import annotations

import datetime as dt
import heapq
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import String, cast, or_, select
from sqlalchemy.orm import Session

from authz.accounts import clients
from authz.base import ids, pagination
from authz.base.errors import Forbidden, ValidationFailed
from authz.base.principals import Principal
from authz.store import audit
from authz.store.db import Store
from authz.store.models import AuditEvent, Decision

SOURCES = ("changes", "decisions", "all")
FILTERS = ("client", "actor", "kind", "since", "until", "source")
READ_KIND = "audit.read"
#: Decisions read as events of these kinds (`decision` matches both).
DECISION_KINDS = ("decision", "decision.allowed", "decision.denied")
_CURSOR = re.compile(r"c(\d+)\.d(\d+)")


def require_reviewer_only(principal: Principal) -> str:
    """The organization of a reviewer (or a service with `authz:review`); providers are refused."""
    if not principal.is_reviewer_of(principal.org_id):
        raise Forbidden("this needs a reviewer's token or a service token with authz:review")
    return principal.org_id


@dataclass(frozen=True)
class AuditFilter:
    """What a reviewer asked for; every field optional."""

    client: str | None = None
    actor: str | None = None
    kind: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    source: str = "all"

    def as_dict(self) -> dict[str, Any]:
        """The filters as recorded in the `audit.read` event (only those given)."""
        return {k: audit.jsonable(v) for k, v in asdict(self).items() if v is not None}


def _time(errors: list[tuple[str, str]], field: str, raw: str | None) -> dt.datetime | None:
    if raw in (None, ""):
        return None
    assert raw is not None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        errors.append((field, "must be an ISO 8601 date or date-time (e.g. 2026-01-31T00:00:00Z)"))
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def parse_filter(args: Mapping[str, str]) -> AuditFilter:
    """Check the query's filters; ValidationFailed names every bad one."""
    errors: list[tuple[str, str]] = []
    client = args.get("client") or None
    if client is not None and not ids.looks_like(client, "cli"):
        errors.append(("client", "must be a client id (cli_…)"))
    for field in ("actor", "kind"):
        value = args.get(field)
        if value is not None and not 1 <= len(value) <= 200:
            errors.append((field, "must be 1 to 200 characters"))
    since = _time(errors, "since", args.get("since"))
    until = _time(errors, "until", args.get("until"))
    if since and until and since >= until:
        errors.append(("until", "must be after since"))
    source = args.get("source") or "all"
    if source not in SOURCES:
        errors.append(("source", f"must be one of {', '.join(SOURCES)}"))
    if errors:
        raise ValidationFailed(errors)
    return AuditFilter(
        client, args.get("actor") or None, args.get("kind") or None, since, until, source
    )


def _positions(page: pagination.Page) -> tuple[int, int]:
    """The last `seq` returned from each chain (the cursor carries both)."""
    if page.after is None:
        return 0, 0
    found = _CURSOR.fullmatch(page.after)
    if not found:
        raise ValidationFailed([("cursor", "is not a cursor this service issued")])
    return int(found.group(1)), int(found.group(2))


def _cursor(changes: int, decisions: int) -> str:
    return pagination.encode(f"c{changes}.d{decisions}")


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _kind_match(column: Any, kind: str) -> Any:
    # `link` matches `link` and every `link.*`; a full kind matches itself.
    return or_(column == kind, column.like(_like_escape(kind) + ".%", escape="\\"))


def _changes(session: Session, org_id: str, f: AuditFilter, after: int, n: int) -> list[Any]:
    stmt = select(AuditEvent).where(AuditEvent.org_id == org_id, AuditEvent.seq > after)
    if f.client:
        # client_ids is a JSON list on both SQLite and PostgreSQL; the id's charset is checked.
        stmt = stmt.where(
            or_(
                AuditEvent.entity_id == f.client,
                cast(AuditEvent.client_ids, String).like(
                    f'%"{_like_escape(f.client)}"%', escape="\\"
                ),
            )
        )
    if f.actor:
        stmt = stmt.where(AuditEvent.actor == f.actor)
    if f.kind:
        stmt = stmt.where(_kind_match(AuditEvent.kind, f.kind))
    if f.since:
        stmt = stmt.where(AuditEvent.at >= f.since)
    if f.until:
        stmt = stmt.where(AuditEvent.at < f.until)
    return list(session.scalars(stmt.order_by(AuditEvent.seq).limit(n)))


def _decisions(session: Session, org_id: str, f: AuditFilter, after: int, n: int) -> list[Any]:
    if f.kind and f.kind not in DECISION_KINDS:
        return []
    stmt = select(Decision).where(Decision.org_id == org_id, Decision.seq > after)
    if f.kind in ("decision.allowed", "decision.denied"):
        stmt = stmt.where(Decision.allowed.is_(f.kind == "decision.allowed"))
    if f.client:
        label = f"client:{f.client}"
        stmt = stmt.where(
            or_(
                Decision.owner_client_id == f.client,
                Decision.subject == label,
                Decision.actor == label,
            )
        )
    if f.actor:
        stmt = stmt.where(Decision.actor == f.actor)
    if f.since:
        stmt = stmt.where(Decision.at >= f.since)
    if f.until:
        stmt = stmt.where(Decision.at < f.until)
    return list(session.scalars(stmt.order_by(Decision.seq).limit(n)))


def change_view(ev: AuditEvent) -> dict[str, Any]:
    """One change as a reviewer reads it (with its place in the chain)."""
    return {
        "source": "changes",
        "seq": ev.seq,
        "id": ev.id,
        "at": audit.jsonable(ev.at),
        "actor": ev.actor,
        "kind": ev.kind,
        "entity_id": ev.entity_id,
        "client_ids": list(ev.client_ids or []),
        "before": ev.before,
        "after": ev.after,
        "revision": str(ev.revision),
        "policy_digest": ev.policy_digest,
        "prev_hash": ev.prev_hash,
        "hash": ev.hash,
    }


def decision_view(row: Decision) -> dict[str, Any]:
    """One decision as a reviewer reads it."""
    return {
        "source": "decisions",
        "seq": row.seq,
        "id": row.id,
        "at": audit.jsonable(row.at),
        "actor": row.actor,
        "kind": "decision.allowed" if row.allowed else "decision.denied",
        "subject": row.subject,
        "action": row.action,
        "resource": row.resource,
        "client_ids": [row.owner_client_id] if row.owner_client_id else [],
        "allowed": row.allowed,
        "reason": row.reason,
        "rule": row.rule,
        "revision": str(row.revision),
        "policy_digest": row.policy_digest,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def _sort_key(item: tuple[str, Any]) -> tuple[str, int, int]:
    source, row = item
    return (str(audit.jsonable(row.at)), 0 if source == "changes" else 1, row.seq)


def read(
    store: Store, reader: str, org_id: str, f: AuditFilter, page: pagination.Page
) -> dict[str, Any]:
    """A page of the organization's changes and decisions, oldest first; the read is audited.

    Each chain is walked in `seq` order and the two are merged by time, so the cursor (the last
    seq taken from each) never skips or repeats a row, whatever the clocks did.
    """
    c_after, d_after = _positions(page)
    n = page.limit + 1
    with store.read() as session:
        if f.client:
            clients.get_in_org(session, f.client, org_id, "client")
        changes = _changes(session, org_id, f, c_after, n) if f.source != "decisions" else []
        decisions = _decisions(session, org_id, f, d_after, n) if f.source != "changes" else []
    merged = list(
        heapq.merge(
            (("changes", r) for r in changes),
            (("decisions", r) for r in decisions),
            key=_sort_key,
        )
    )
    taken = merged[: page.limit]
    more = len(merged) > page.limit
    for source, row in taken:
        if source == "changes":
            c_after = row.seq
        else:
            d_after = row.seq
    items = [change_view(r) if s == "changes" else decision_view(r) for s, r in taken]
    with store.append_audit(reader, org_id) as txn:
        txn.record(
            READ_KIND,
            None,
            None,
            {"filters": f.as_dict(), "cursor": page.after, "returned": len(items)},
            [f.client] if f.client else None,
        )
    revision = txn.revision
    return {
        "items": items,
        "next_cursor": _cursor(c_after, d_after) if more else None,
        "revision": str(revision),
    }
