"""`authz audit verify` catches a tampered row in either chain and names the first broken link."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from authz.accounts import clients, orgs
from authz.compliance.audit_log import decision_hash
from authz.policy.decision_log import HASH_FORMAT
from authz.store import audit
from authz.store.db import Store
from authz.store.models import AuditEvent, Decision
from tests.compliance.chains import append_decisions
from tests.compliance.cli import authz, authz_json

SHIFT = 1_000_000


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A store with a few changes (org, clients) and a few decisions, both chains intact."""
    s = Store.from_url(db_url)
    org = orgs.create_org(s, "test", "Practice", [])
    made = [
        clients.create_client(s, "provider:prv_1", org["id"], {"first_name": n, "client_type": t})
        for n, t in (("Ana", "adult"), ("Ben", "minor"), ("Cy", "adult"), ("Dee", "adult"))
    ]
    decisions = [
        {"org_id": org["id"], "actor": f"client:{c['id']}", "owner": c["id"]} for c in made
    ]
    # One chain across both hash formats: rows written before formats were recorded (NULL),
    # then the writer's.
    append_decisions(s, decisions, hash_format=None)
    append_decisions(s, decisions)
    yield s
    s.engine.dispose()


def rows(store: Store, model: Any) -> list[Any]:
    with store.read() as session:
        return list(session.scalars(select(model).order_by(model.seq)))


def edit(store: Store, model: Any, victim: Any) -> Any:
    column = model.actor
    with store.engine.begin() as conn:
        conn.execute(update(model).where(model.seq == victim.seq).values({column: "client:evil"}))
    return victim


def remove(store: Store, model: Any, victim: Any) -> Any:
    with store.engine.begin() as conn:
        conn.execute(delete(model).where(model.seq == victim.seq))
    return rows(store, model)[[r.seq for r in rows(store, model)].index(victim.seq + 1)]


def reorder(store: Store, model: Any, victim: Any) -> Any:
    nxt = victim.seq + 1
    with store.engine.begin() as conn:
        conn.execute(update(model).where(model.seq == victim.seq).values(seq=-1))
        conn.execute(update(model).where(model.seq == nxt).values(seq=victim.seq))
        conn.execute(update(model).where(model.seq == -1).values(seq=nxt))
    return next(r for r in rows(store, model) if r.seq == victim.seq)


def forge(store: Store, model: Any, victim: Any) -> Any:
    """Insert a row after `victim` whose own hash is correct: only the next link can tell."""
    with store.engine.begin() as conn:
        conn.execute(update(model).where(model.seq > victim.seq).values(seq=model.seq + SHIFT))
        data = {c.name: getattr(victim, c.name) for c in model.__table__.columns}
        data.update(
            seq=victim.seq + 1, id=victim.id[:4] + "f0f0f0f0f0f0f0f0", prev_hash=victim.hash
        )
        data["actor"] = "client:forged"
        data["hash"] = (decision_hash if model is Decision else audit.event_hash)(
            type("Row", (), data)
        )
        conn.execute(insert(model).values(data))
    forged = next(r for r in rows(store, model) if r.seq == victim.seq + 1)
    assert (decision_hash if model is Decision else audit.event_hash)(forged) == forged.hash
    return next(r for r in rows(store, model) if r.seq == victim.seq + 1 + SHIFT)


TAMPER = {
    "edited": (edit, "row edited"),
    "deleted": (remove, "deleted, inserted or moved"),
    "reordered": (reorder, "deleted, inserted or moved"),
    "inserted": (forge, "deleted, inserted or moved"),
}
CHAINS = {"changes": AuditEvent, "decisions": Decision}


def test_intact_chains_verify(db_url: str, store: Store) -> None:
    code, out = authz_json(db_url, "audit", "verify")
    assert code == 0 and out["ok"] is True
    assert out["changes"]["verified"] == len(rows(store, AuditEvent)) >= 5
    assert out["decisions"]["verified"] == 8
    readable = authz(db_url, "audit", "verify")
    assert readable.returncode == 0
    assert readable.stdout.splitlines()[0] == "audit trail: unbroken"
    assert "decisions: 8 rows verified from the start" in readable.stdout


@pytest.mark.parametrize(
    ("chain", "at"),
    # Decisions 2 and 5: one in each hash format.
    [("changes", 2), ("decisions", 2), ("decisions", 5)],
)
@pytest.mark.parametrize("how", TAMPER)
def test_tampering_is_caught_at_the_first_broken_link(
    db_url: str, store: Store, chain: str, at: int, how: str
) -> None:
    model = CHAINS[chain]
    tamper, reason = TAMPER[how]
    victim = rows(store, model)[at]
    assert model is AuditEvent or victim.hash_format == (None if at < 4 else HASH_FORMAT)
    first_bad = tamper(store, model, victim)
    code, out = authz_json(db_url, "audit", "verify")
    assert code == 1 and out["ok"] is False
    other = "decisions" if chain == "changes" else "changes"
    assert out[other]["first_break"] is None
    broken = out[chain]["first_break"]
    assert (broken["seq"], broken["id"]) == (first_bad.seq, first_bad.id)
    assert reason in broken["reason"]
    # Rows before the victim hold; a forged row with a correct hash holds too.
    assert out[chain]["verified"] == at + (2 if how == "inserted" else 0)
    if how != "edited":
        return  # the readable form is the same code path; once per chain is enough
    readable = authz(db_url, "audit", "verify")
    assert readable.returncode == 1
    assert readable.stdout.splitlines()[0] == "audit trail: BROKEN"
    line = next(x for x in readable.stdout.splitlines() if x.startswith(chain + ":"))
    assert f"first broken link at seq {first_bad.seq} ({first_bad.id})" in line


def test_verify_on_a_store_that_cannot_be_reached_is_one_line() -> None:
    done = authz("postgresql://nobody@127.0.0.1:1/none", "audit", "verify")
    assert done.returncode != 0
    assert done.stderr.startswith("authz: ") and len(done.stderr.strip().splitlines()) == 1
