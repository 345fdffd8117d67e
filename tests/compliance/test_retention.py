"""`authz audit purge`: rows past retention go, both chains still verify from a checkpoint."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from authz.accounts import clients, orgs
from authz.base import clock
from authz.store.db import Store
from authz.store.models import AuditEvent, Decision
from tests.compliance.chains import ago, append_decisions
from tests.compliance.cli import authz, authz_json

DEV = {"AUTHZ_DEV_MODE": "1", "AUTHZ_AUDIT_RETENTION_DAYS": "10"}


def populate(store: Store, org_id: str, names: list[str]) -> None:
    for name in names:
        made = clients.create_client(
            store, "provider:prv_1", org_id, {"first_name": name, "client_type": "adult"}
        )
        append_decisions(
            store, [{"org_id": org_id, "actor": f"client:{made['id']}", "owner": made["id"]}]
        )


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.from_url(db_url)
    yield s
    s.engine.dispose()
    clock.reset()


@pytest.fixture
def aged(store: Store) -> dict[str, Any]:
    """Changes and decisions from 20 days ago, then some from today."""
    clock.travel(dt.timedelta(days=-20))
    org = orgs.create_org(store, "test", "Practice", [])
    populate(store, org["id"], ["Ana", "Ben"])
    clock.reset()
    old = {name: counts(store, model) for name, model in CHAINS.items()}
    last_old = {name: tail(store, model) for name, model in CHAINS.items()}
    populate(store, org["id"], ["Cy", "Dee"])
    return {"org": org["id"], "old": old, "last_old": last_old}


CHAINS = {"changes": AuditEvent, "decisions": Decision}


def counts(store: Store, model: Any, before: dt.datetime | None = None) -> int:
    with store.read() as session:
        stmt = select(func.count()).select_from(model)
        if before is not None:
            stmt = stmt.where(model.at < before)
        return int(session.scalar(stmt) or 0)


def tail(store: Store, model: Any) -> Any:
    with store.read() as session:
        return session.scalar(select(model).order_by(model.seq.desc()).limit(1))


def test_purge_removes_old_rows_and_the_chains_still_verify(
    db_url: str, store: Store, aged: dict[str, Any]
) -> None:
    total = {name: counts(store, model) for name, model in CHAINS.items()}
    code, out = authz_json(db_url, "audit", "purge", **DEV)
    assert code == 0, out
    assert out["retention_days"] == 10
    assert out["purged"] == aged["old"]
    for name, model in CHAINS.items():
        assert counts(store, model, ago(10)) == 0
        assert out["checkpoints"][name]["seq"] == aged["last_old"][name].seq
        assert out["checkpoints"][name]["hash"] == aged["last_old"][name].hash
    # The purge itself is on the record, with the checkpoints it set.
    assert counts(store, Decision) == total["decisions"] - aged["old"]["decisions"]
    purge_event = tail(store, AuditEvent)
    assert purge_event.kind == "audit.purge" and purge_event.actor == "operator:cli"

    code, verified = authz_json(db_url, "audit", "verify")
    assert code == 0 and verified["ok"], verified
    assert verified["changes"]["checkpoint"] == out["checkpoints"]["changes"]
    assert verified["decisions"]["verified"] == total["decisions"] - aged["old"]["decisions"]
    readable = authz(db_url, "audit", "verify")
    expected = f"changes: {verified['changes']['verified']} rows verified from checkpoint after seq"
    assert expected in readable.stdout

    again_code, again = authz_json(db_url, "audit", "purge", **DEV)
    assert again_code == 0 and again["purged"] == {"changes": 0, "decisions": 0}
    assert tail(store, AuditEvent).id == purge_event.id  # an empty purge records nothing


def test_a_row_deleted_after_a_purge_is_still_caught(
    db_url: str, store: Store, aged: dict[str, Any]
) -> None:
    assert authz(db_url, "audit", "purge", **DEV).returncode == 0
    with store.read() as session:
        first, second = session.scalars(select(Decision).order_by(Decision.seq).limit(2))
    with store.engine.begin() as conn:
        conn.execute(delete(Decision).where(Decision.seq == first.seq))
    code, out = authz_json(db_url, "audit", "verify")
    assert code == 1
    assert out["decisions"]["first_break"]["id"] == second.id
    assert out["changes"]["first_break"] is None


def test_the_newest_row_of_each_chain_is_kept(db_url: str, store: Store) -> None:
    clock.travel(dt.timedelta(days=-20))
    org = orgs.create_org(store, "test", "Practice", [])
    populate(store, org["id"], ["Ana", "Ben"])
    clock.reset()
    newest = tail(store, Decision)
    code, out = authz_json(db_url, "audit", "purge", **DEV)
    assert code == 0 and out["purged"]["decisions"] == 1
    assert tail(store, Decision).id == newest.id
    # A decision written after the purge links to the kept row, and everything verifies.
    populate(store, org["id"], ["Cy"])
    code, verified = authz_json(db_url, "audit", "verify")
    assert code == 0 and verified["ok"] and verified["decisions"]["verified"] == 2


def test_dry_run_and_default_retention_remove_nothing(
    db_url: str, store: Store, aged: dict[str, Any]
) -> None:
    before = {name: counts(store, model) for name, model in CHAINS.items()}
    code, out = authz_json(db_url, "audit", "purge", "--dry-run", **DEV)
    assert code == 0 and out["purged"] == aged["old"] and out["dry_run"] is True
    code, out = authz_json(db_url, "audit", "purge")  # six years by default
    assert code == 0 and out["purged"] == {"changes": 0, "decisions": 0}
    assert out["retention_days"] >= 6 * 365
    assert {name: counts(store, model) for name, model in CHAINS.items()} == before


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AUTHZ_AUDIT_RETENTION_DAYS": "30"}, "six years"),
        ({"AUTHZ_AUDIT_RETENTION_DAYS": "ten"}, "whole number"),
        ({"AUTHZ_AUDIT_RETENTION_DAYS": "0", "AUTHZ_DEV_MODE": "1"}, "at least 1 days"),
    ],
)
def test_bad_retention_is_refused_and_removes_nothing(
    db_url: str, store: Store, aged: dict[str, Any], env: dict[str, str], message: str
) -> None:
    before = {name: counts(store, model) for name, model in CHAINS.items()}
    done = authz(db_url, "audit", "purge", **env)
    assert done.returncode == 2
    assert done.stderr.startswith("authz: ") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert {name: counts(store, model) for name, model in CHAINS.items()} == before
