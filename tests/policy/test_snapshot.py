"""Snapshots of the fact index (`authz.policy.snapshot`): a restart reads the snapshot and the
changes since, answers exactly as a full read of the store would, and falls back to the full
read for any snapshot it cannot trust."""

from __future__ import annotations

import datetime as dt
import sys
from array import array
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from authz.accounts import clients, payments
from authz.base.config import Settings
from authz.base.principals import Principal
from authz.policy import facts as facts_module
from authz.policy import snapshot
from authz.policy.facts import FactIndex
from authz.service import access
from authz.service.runtime import Runtime
from authz.store import migrate
from authz.store.db import Store, make_engine
from authz.store.models import AuditEvent
from tests.policy.test_store_facts import (
    accept_invite,
    family,
    revoke_portal_access,
    verify_email,
)

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def open_store(path: Path) -> Store:
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    return Store(engine)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(tmp_path / "authz.db")
    yield store
    store.engine.dispose()


def observe(facts: FactIndex, client_ids: list[str], pm_ids: list[str]) -> dict[str, object]:
    """Everything a decision reads from the index, by id (row numbers may differ)."""
    paths = {
        (x, o): [
            (p.rel, facts.l_id[p.link] if p.link >= 0 else None)
            for p in facts.paths(f"client:{x}", o, NOW)
        ]
        for x in client_ids
        for o in client_ids
    }
    grants = {
        c: sorted(
            (facts.grant(i) for i in facts.grants_as_caregiver(c) + facts.grants_as_receiver(c)),
            key=lambda g: g.link_id,
        )
        for c in client_ids
    }
    return {
        "paths": paths,
        "grants": grants,
        "pm": {(o, pm): facts.pm_owner(o, pm) for o in facts.org_ids for pm in pm_ids},
        "live": {c: facts.client_index(c) is not None for c in client_ids},
        "names": {c: facts.name(c) for c in client_ids},
        "revision": facts.revision,
    }


def read_store(store: Store) -> FactIndex:
    """The index read from every row, whatever snapshot exists."""
    facts = FactIndex()
    facts.reload(store)
    return facts


def changes_after_the_snapshot(store: Store, ids: dict[str, str]) -> list[str]:
    """Accept the grant, verify both emails, add a client and a card, revoke nothing."""
    jenna = Principal(kind="client", id=ids["jenna"], org_id=ids["org"])
    accept_invite(store, jenna, ids["invite"])
    verify_email(store, ids["org"], ids["jenna"])
    verify_email(store, ids["org"], ids["sam"])
    lee = Principal(kind="provider", id=ids["prv"], org_id=ids["org"])
    ava = clients.create_client(
        store, lee.label, ids["org"], {"first_name": "Ava", "client_type": "adult"}
    )["id"]
    payments.register(store, lee.label, ids["org"], ava, {"id": "pm_ava", "label": "Visa"})
    return [ids["jenna"], ids["sam"], ava]


def test_a_restart_reads_the_snapshot_and_the_changes_since(sqlite_store: Store) -> None:
    store = sqlite_store
    ids = family(store)
    first = FactIndex.load(store)
    assert first.loaded_from == "store"
    assert first.save(store, min_rows=0)
    assert not first.save(store, min_rows=0), "an unchanged index is not written again"

    everyone = changes_after_the_snapshot(store, ids)
    pms = ["pm_sam", "pm_jenna", "pm_ava", "pm_none"]
    restarted = FactIndex.load(store)
    assert restarted.loaded_from == "snapshot"
    assert restarted.last_refresh["events"] >= 5  # the changes were read from the audit rows
    assert observe(restarted, everyone, pms) == observe(read_store(store), everyone, pms)
    # The grant accepted after the snapshot works; a revoke after the restart is seen.
    assert ("caregiver_full", ids["link"]) in observe(restarted, everyone, pms)["paths"][
        (ids["jenna"], ids["sam"])
    ]
    revoke_portal_access(store, ids)
    restarted.ensure_fresh(store)
    assert ("caregiver_full", ids["link"]) not in observe(restarted, everyone, pms)["paths"][
        (ids["jenna"], ids["sam"])
    ]
    # Saved again, the snapshot names the newest event and needs no refresh at the next start.
    assert restarted.save(store, min_rows=0)
    again = FactIndex.load(store)
    assert again.loaded_from == "snapshot" and again.last_refresh == {}
    assert observe(again, everyone, pms) == observe(restarted, everyone, pms)


def test_a_restart_holds_the_index_as_compactly_as_a_full_read(sqlite_store: Store) -> None:
    """A restarted worker keeps the memory bar a cold one keeps (`bench decisions` at a million
    grants before: 506.9 MB against 494.0): its arrays hold no spare room, and its payment
    methods share the client rows' numbers instead of an int object each."""
    store = sqlite_store
    ids = family(store)
    lee = Principal(kind="provider", id=ids["prv"], org_id=ids["org"])
    # Past the 256 small ints Python shares anyway, so that sharing is what is tested.
    for i in range(300):
        cid = clients.create_client(
            store, lee.label, ids["org"], {"first_name": f"C{i}", "client_type": "adult"}
        )["id"]
        if i >= 280:
            payments.register(store, lee.label, ids["org"], cid, {"id": f"pm_{i}", "label": "V"})
    assert FactIndex.load(store).save(store, min_rows=0)
    restarted = FactIndex.load(store)
    assert restarted.loaded_from == "snapshot"
    for values in (restarted.c_rec, restarted.g_head, restarted.l_rec, restarted.l_act):
        spare = sys.getsizeof(values) - sys.getsizeof(array(values.typecode))
        assert spare == len(values) * values.itemsize
    numbers = {id(n) for n in restarted._ci.values()}
    owners = list(restarted.pm.values())
    assert max(owners) > 256 and all(id(owner) in numbers for owner in owners)
    everyone = [ids["jenna"], ids["sam"]]
    pms = ["pm_sam", "pm_jenna", "pm_299"]
    assert observe(restarted, everyone, pms) == observe(read_store(store), everyone, pms)


def test_a_small_index_is_not_snapshotted(sqlite_store: Store) -> None:
    family(sqlite_store)
    facts = FactIndex.load(sqlite_store)
    assert not facts.save(sqlite_store)  # the default threshold
    assert not Path(f"{sqlite_store.engine.url.database}-facts").exists()


def corrupt_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


def payment_owner_out_of_range(path: Path) -> None:
    """Whole and anchored, but a payment method's owner is past the last client row."""
    saved = snapshot.read(path)
    assert saved is not None
    anchor, sections = saved
    sections["pm_rows"][0] = len(sections["c_id"])
    snapshot.write(path, anchor, sections)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10])


def foreign(path: Path) -> None:
    path.write_bytes(b"not a snapshot\n")


def payment_ids_global(path: Path) -> None:
    """Whole and anchored, but written before payment-method ids were per organization
    (issue 12): its payment methods are keyed by id alone, which would answer for the wrong
    organization."""
    saved = snapshot.read(path)
    assert saved is not None
    anchor, sections = saved
    del sections["pm_orgs"]
    snapshot.write(path, anchor, sections)


@pytest.mark.parametrize(
    "damage", [corrupt_byte, truncate, foreign, payment_ids_global, payment_owner_out_of_range]
)
def test_a_damaged_snapshot_is_ignored(sqlite_store: Store, damage) -> None:
    store = sqlite_store
    ids = family(store)
    assert FactIndex.load(store).save(store, min_rows=0)
    everyone = changes_after_the_snapshot(store, ids)
    damage(Path(f"{store.engine.url.database}-facts"))
    facts = FactIndex.load(store)
    assert facts.loaded_from == "store"
    cold = read_store(store)
    assert observe(facts, everyone, ["pm_ava"]) == observe(cold, everyone, ["pm_ava"])


def test_a_snapshot_of_another_history_is_ignored(tmp_path: Path) -> None:
    """A snapshot beside a store whose audit chain does not hold its anchor (another database,
    a backup restored over it) would hide every change it cannot see: it is not used."""
    a, b = open_store(tmp_path / "a.db"), open_store(tmp_path / "b.db")
    try:
        family(a)
        ids = family(b)
        assert FactIndex.load(a).save(a, min_rows=0)
        Path(tmp_path / "a.db-facts").rename(tmp_path / "b.db-facts")
        facts = FactIndex.load(b)
        assert facts.loaded_from == "store"
        assert sorted(facts.client_ids()) == sorted([ids["jenna"], ids["sam"]])
    finally:
        a.engine.dispose()
        b.engine.dispose()


def test_pruned_or_rewritten_history_makes_the_snapshot_unusable(sqlite_store: Store) -> None:
    store = sqlite_store
    family(store)
    facts = FactIndex.load(store)
    assert facts.save(store, min_rows=0) and facts.anchor is not None
    anchor = facts.anchor
    with store.engine.begin() as conn:
        conn.execute(update(AuditEvent).where(AuditEvent.seq == anchor.seq).values(hash="0" * 64))
    assert FactIndex.load(store).loaded_from == "store"
    with store.engine.begin() as conn:
        conn.execute(delete(AuditEvent).where(AuditEvent.seq <= anchor.seq))
    assert FactIndex.load(store).loaded_from == "store"


def test_the_file_format_round_trips_and_refuses_what_it_did_not_write(tmp_path: Path) -> None:
    path = tmp_path / "x-facts"
    anchor = snapshot.Anchor(7, 3, "ab" * 32)
    sections = {"ints": array("q", [1, -1, 2**40]), "names": ["Jenna", "Zoë", "a\x1fb", ""]}
    snapshot.write(path, anchor, sections)
    assert snapshot.read_anchor(path) == anchor
    assert snapshot.read(path) == (anchor, sections)
    assert list(tmp_path.iterdir()) == [path], "no temporary file is left behind"
    assert path.stat().st_mode & 0o777 == 0o600, "names and emails: the owner's alone"
    assert snapshot.read(tmp_path / "missing") is None
    path.write_bytes(snapshot.MAGIC + b"{not json\n")
    assert snapshot.read(path) is None and snapshot.read_anchor(path) is None


def test_a_worker_that_stops_leaves_a_snapshot_for_the_next(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Runtime.close` (a worker's graceful exit) saves the index; the next worker starts
    from it. Small stores are not saved (the threshold is lowered here)."""
    ids = family(sqlite_store)
    url = sqlite_store.engine.url.render_as_string(hide_password=False)
    settings = Settings(dev_mode=True, database_url=url)
    first = Runtime.create(settings)
    assert access.service(first).facts.loaded_from == "store"
    first.close()
    assert not Path(f"{sqlite_store.engine.url.database}-facts").exists()

    monkeypatch.setattr(facts_module, "SNAPSHOT_MIN_ROWS", 2)
    second = Runtime.create(settings)
    access.service(second)
    second.close()
    third = Runtime.create(settings)
    try:
        service = access.service(third)
        assert service.facts.loaded_from == "snapshot"
        assert service.facts.client_index(ids["sam"]) is not None
    finally:
        third.close()
