"""`Store.append_audit` writes on the driver's cursor: its rows must read back exactly as the
rows of a `Store.write` (the ORM's), chain onto the same trail, and fail as the store's errors."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text

from authz.base.errors import StoreUnavailable
from authz.compliance import audit_log
from authz.store.db import Store
from authz.store.models import AuditEvent

AFTER: dict[str, Any] = {
    "kind": "switch",
    "login": "client:cli_jenna",
    "audience": ["https://portal.example", "https://billing.example"],
    "expires_at": 1_800_000_000,
    "nested": {"note": 'Zoë\'s "card"\n', "ok": True, "none": None},
}


def _content(row: AuditEvent) -> dict[str, Any]:
    keep = ("org_id", "actor", "kind", "entity_id", "client_ids", "before", "after")
    return {k: getattr(row, k) for k in keep} | {"at": row.at.replace(tzinfo=None)}


def test_an_appended_row_reads_back_as_a_written_one_and_chains(store: Store) -> None:
    with store.write("service:oc_1", "org_1") as txn:
        txn.record("token.issued", "jti_w", None, AFTER, ["cli_b", "cli_a"])
    with store.append_audit("service:oc_1", "org_1") as appended:
        appended.record("token.issued", "jti_a", None, AFTER, ["cli_b", "cli_a"])
        appended.record("audit.read", None, {"since": None}, None)
    with store.read() as session:
        rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        # JSON null, not SQL NULL, exactly as the ORM stores a None.
        nulls = session.execute(
            text("SELECT count(*) FROM audit_events WHERE before IS NULL OR after IS NULL")
        ).scalar_one()
    written, first, second = rows[-3:]
    assert first.entity_id == "jti_a" and second.kind == "audit.read"
    expected = _content(written) | {"at": first.at.replace(tzinfo=None), "entity_id": "jti_a"}
    assert _content(first) == expected
    assert first.client_ids == ["cli_a", "cli_b"] and first.after == AFTER
    assert second.before == {"since": None} and second.after is None
    assert nulls == 0
    # The revision is held, not moved, and the rows carry it.
    assert first.revision == second.revision == written.revision == store.revision()
    assert first.prev_hash == written.hash and second.prev_hash == first.hash
    assert audit_log.verify(store)["ok"]


def test_a_store_that_cannot_take_the_row_fails_the_append_and_keeps_the_trail(
    store: Store,
) -> None:
    with store.append_audit("service:oc_1", "org_1") as txn:
        txn.record("token.issued", "jti_1", None, AFTER)
    if store.engine.dialect.name == "sqlite":
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_events RENAME TO audit_events_gone"))
        with pytest.raises(StoreUnavailable), store.append_audit("svc", "org_1") as txn:
            txn.record("token.issued", "jti_2", None, AFTER)
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_events_gone RENAME TO audit_events"))
    else:
        # Another writer holds the writers' lock past the statement time-out (2 s).
        with store.engine.connect() as other:
            other.execute(text("SELECT revision FROM state WHERE id = 1 FOR UPDATE"))
            with pytest.raises(StoreUnavailable), store.append_audit("svc", "org_1") as txn:
                txn.record("token.issued", "jti_2", None, AFTER)
            other.rollback()
    # The failed append left neither a row nor a broken connection behind.
    with store.append_audit("service:oc_1", "org_1") as txn:
        txn.record("token.issued", "jti_3", None, AFTER)
    with store.read() as session:
        jtis = session.scalars(
            select(AuditEvent.entity_id).where(AuditEvent.kind == "token.issued")
        ).all()
    assert jtis == ["jti_1", "jti_3"]
    assert audit_log.verify(store)["ok"]
