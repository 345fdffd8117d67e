"""The decision log: what it stores, that its chain verifies, and that tampering is caught."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, inspect, select, text, update

from authz.base import clock
from authz.compliance import audit_log
from authz.policy.decision_log import (
    HASH_FORMAT,
    DecisionLog,
    _queued_rows,
    _spooled_row,
    canonical_v2,
    decision_fields,
    spool_text,
    to_row,
    utc_wall,
)
from authz.policy.engine import CheckRequest, Decision, Resource, Subject
from authz.store import audit, migrate
from authz.store.db import Store, make_engine
from authz.store.models import Decision as DecisionRow

_ids = itertools.count(1)


def _decision(
    at: dt.datetime,
    reason: str,
    org: str,
    pm: str | None,
    owner: str | None,
    res_id: str | None,
    decision_id: str | None = None,
) -> Decision:
    subject = Subject("client:cli_a", org, "cli_b", "lnk_1", "delegation")
    request = CheckRequest(subject, "invoice.pay", Resource("invoice", res_id, owner), pm)
    return Decision(
        False,
        decision_id or f"dec_{next(_ids)}",
        reason,
        'rule "quoted" \\ back',
        7,
        at,
        request,
        owner,
        "sha256:" + "ab" * 32,
    )


AWKWARD = [
    (dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), "plain", "org_a", "pm_1", "cli_b", "i"),
    (
        dt.datetime(2026, 11, 2, 9, 0, 0, 5, tzinfo=dt.UTC),
        "Zo\u00eb\u2019s \u201ccard\u201d\n\t\x01",
        "",
        None,
        None,
        None,
    ),
    (
        dt.datetime(2026, 11, 2, 11, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        'emoji 🙂 and \\ and "',
        "org_a",
        "",
        "org_a",
        "inv_9",
    ),
    # U+001F is the field separator of format 2: such a row is hashed in its JSON form.
    (
        dt.datetime(2026, 11, 2, 9, 0, 1, tzinfo=dt.UTC),
        "a\x1fb",
        "org_\x1f",
        "pm\x1f",
        None,
        "\x1f",
    ),
    # Naive: taken as UTC, as everywhere in the store.
    (dt.datetime(2026, 11, 2, 8, 59, 59, 999999), "naive", "org_a", None, "cli_b", "i"),
]


def _times(n: int) -> list[dt.datetime]:
    """Times around second, day, month and year boundaries, some going backwards."""
    t0 = dt.datetime(2026, 12, 31, 23, 59, 59, 999_990, tzinfo=dt.UTC)
    out = [t0 + dt.timedelta(microseconds=3 * i) for i in range(n)]
    out += [t0 - dt.timedelta(days=31), t0 - dt.timedelta(days=365), t0, t0.replace(microsecond=0)]
    return out


def _log_of(store: Store) -> DecisionLog:
    return DecisionLog(store, background=False)


def _written(store: Store) -> list[Any]:
    with store.read() as session:
        return list(session.scalars(select(DecisionRow).order_by(DecisionRow.seq)))


def test_the_log_stores_each_decision_as_decided_and_the_chain_verifies(store: Store) -> None:
    decisions = [_decision(*case) for case in AWKWARD]
    decisions += [
        _decision(at, "r", "org_a", None, "cli_b", "i", f"dec_t{i}")
        for i, at in enumerate(_times(8))
    ]
    log = _log_of(store)
    for d in decisions:
        log(d)
    assert log.flush() == len(decisions)
    written = _written(store)
    assert [r.hash_format for r in written] == [HASH_FORMAT] * len(decisions)
    for d, row in zip(decisions, written, strict=True):
        want = to_row(d)
        at = want.pop("at")
        assert clock.aware(row.at) == (at if at.tzinfo else at.replace(tzinfo=dt.UTC))
        assert {k: getattr(row, k) for k in want} == want
    out = audit_log.verify(store)
    assert out["ok"] and out["decisions"]["verified"] == len(decisions)


def test_each_write_moves_the_chain_head_to_its_newest_row(store: Store) -> None:
    """The writer moves the head (on SQLite, with no trigger since f4a8d2c6b913), once a
    write: the chain ends at its head after every write. On SQLite a row slipped in by anything
    else, however well chained, leaves the head behind, which verification reports; on
    PostgreSQL the statement trigger moves the head for any insert."""
    log = _log_of(store)
    for size in (1, 5, 3):
        for i in range(size):
            log(_decision(clock.now(), "r", "org_a", None, "cli_b", f"inv_{i}"))
        log.flush()
        newest = _written(store)[-1]
        assert audit_log.heads(store)["decisions"] == {"seq": newest.seq, "hash": newest.hash}
        assert audit_log.verify(store)["ok"]
    log.write([_decision(clock.now(), "r", "org_a", None, "cli_b", "inv_b")])
    assert audit_log.heads(store)["decisions"]["seq"] == _written(store)[-1].seq
    with store.engine.begin() as conn:
        data = {c.name: getattr(newest, c.name) for c in DecisionRow.__table__.columns}
        del data["seq"]
        data.update(id="dec_slipped", prev_hash=_written(store)[-1].hash)
        data["hash"] = audit_log.decision_hash(SimpleNamespace(**data))
        conn.execute(insert(DecisionRow).values(data))
    out = audit_log.verify(store)
    if store.engine.dialect.name == "sqlite":
        assert not out["ok"] and "not at its head" in out["decisions"]["first_break"]["reason"]
    else:
        assert out["ok"] and out["decisions"]["head"]["hash"] == data["hash"]


def test_queued_and_batch_written_rows_store_the_same_types(store: Store) -> None:
    """Queued rows go from their canonical text's fields to the columns (on SQLite without
    conversion, by column affinity); what is stored is what a check-batch's rows store."""
    log = _log_of(store)
    cases = [("org_a", "cli_b", True), ("org_a", "cli_b", False), ("", None, False)]
    for org, owner, allowed in cases:
        d = _decision(clock.now(), "r", org, None, owner, "inv_1")
        log(d._replace(allowed=allowed))
    log.flush()
    log.write([_decision(clock.now(), "r", org, None, owner, "inv_2") for org, owner, _ in cases])
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "sqlite":
            kinds = conn.execute(
                text("SELECT typeof(allowed), typeof(revision), typeof(org_id) FROM decisions")
            ).all()
            assert [tuple(k) for k in kinds] == [
                ("integer", "integer", "text"),
                ("integer", "integer", "text"),
                ("integer", "integer", "null"),
            ] * 2
    rows = _written(store)
    assert [type(r.allowed) for r in rows] == [bool] * 6
    assert [type(r.revision) for r in rows] == [int] * 6
    assert audit_log.verify(store)["ok"]


def test_a_labelled_resource_is_logged_with_its_labels(store: Store) -> None:
    """A reviewer reading the log sees that a PSY document was asked for, not just a document."""
    d = _decision(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), "r", "org_a", None, "cli_b", "d")
    labelled = Resource("document", "doc_1", "cli_b", ("PSY", "SUD"))
    d = d._replace(request=d.request._replace(resource=labelled))
    log = _log_of(store)
    log(d)
    log.write([d._replace(decision_id="dec_batch")])
    log.flush()
    rows = _written(store)
    assert [r.resource["labels"] for r in rows] == [["PSY", "SUD"], ["PSY", "SUD"]]
    assert {k: getattr(rows[0], k) for k in ("resource",)} == {"resource": to_row(d)["resource"]}
    assert audit_log.verify(store)["ok"]


def test_the_writer_hashes_what_canonical_v2_describes(store: Store) -> None:
    """The writer's inlined form and the documented one agree, for both of its forms."""
    log = _log_of(store)
    for case in AWKWARD:
        log(_decision(*case))
    log.flush()
    for row in _written(store):
        canon = canonical_v2(
            row.id, utc_wall(row.at), row.org_id, row.actor, row.subject, row.action,
            json.dumps(row.resource, sort_keys=True, separators=(",", ":")),
            row.owner_client_id, row.allowed, row.reason, row.rule, row.policy_digest,
            row.revision,
        )  # fmt: skip
        assert hashlib.sha256(f"{row.prev_hash}\n{canon}".encode()).hexdigest() == row.hash
        # Joined unless a field holds the separator; the JSON form holds it only escaped.
        assert canon.count("\x1f") == (0 if "\x1f" in row.reason else 12)


_texts = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(["", "\x1f", "cli_x"])


@settings(max_examples=300, deadline=None)
@given(
    org=_texts,
    actor=_texts,
    account=st.none() | _texts,
    owner=st.none() | _texts,
    reason=_texts,
    allowed=st.booleans(),
    micros=st.integers(0, 10**6 - 1),
    seconds=st.integers(0, 3),
)
def test_a_queued_decision_s_text_is_canonical_v2_of_its_row(
    org: str,
    actor: str,
    account: str | None,
    owner: str | None,
    reason: str,
    allowed: bool,
    micros: int,
    seconds: int,
) -> None:
    """`spool_text` (inlined for speed, its time cached a second) is `canonical_v2` of the row
    `to_row` describes, separators and NULLs included."""
    at = dt.datetime(2026, 12, 31, 23, 59, 58, tzinfo=dt.UTC) + dt.timedelta(
        seconds=seconds, microseconds=micros
    )
    subject = Subject(actor, org, account)
    request = CheckRequest(subject, "invoice.pay", Resource("invoice", "inv_1", owner), None)
    d = Decision(allowed, "dec_1", reason, "rule", 3, at, request, owner, "sha256:x")
    row = to_row(d)
    want = canonical_v2(
        row["id"], utc_wall(at), row["org_id"], row["actor"], row["subject"], row["action"],
        json.dumps(row["resource"], sort_keys=True, separators=(",", ":")),
        row["owner_client_id"], allowed, reason, "rule", "sha256:x", 3,
    )  # fmt: skip
    assert spool_text(d) == want


@pytest.mark.parametrize(("seed", "plain"), [(1, False), (2, False), (3, False), (4, True)])
def test_batches_of_rows_sharing_objects_and_values_are_written_as_decided(
    store: Store, seed: int, plain: bool
) -> None:
    """Rows as a check-batch makes them (one moment and subject object, runs of one answer, a
    separator in some fields) are each stored as decided, and their chain verifies; `plain`
    rows (no NULL, no separator: nearly every row in service) are queued batches the writer
    splits whole."""
    rng = random.Random(seed)
    moments = [dt.datetime(2026, 11, 2, 9, 0, 0, m, tzinfo=dt.UTC) for m in (1, 2)]
    subjects = [
        Subject("client:cli_a", "org_a", "cli_b", "lnk_1", "delegation"),
        Subject("client:cli_a", "", None),
        Subject("provider:prv_\x1f", "org_a"),
    ]
    reasons = ["one reason", "another", "a\x1fb"]
    owners = ["cli_b", "cli_c", None, "org_a"]
    if plain:
        subjects, reasons, owners = subjects[:1], reasons[:2], owners[:2]
    decisions: list[Decision] = []
    for i in range(300):
        owner = rng.choice(owners)
        res_id = rng.choice(["inv_1", "inv_2", None])
        d = Decision(
            rng.random() < 0.5,
            f"dec_s{seed}_{i}",
            rng.choice(reasons),
            rng.choice(["rule 1", "rule 2"]),
            rng.choice([7, 8]),
            rng.choice(moments),
            CheckRequest(
                rng.choice(subjects),
                rng.choice(["invoice.pay", "invoice.read"]),
                Resource("invoice", res_id, owner),
                rng.choice([None, "pm_1"]),
            ),
            owner,
            rng.choice(["sha256:" + "ab" * 32, "sha256:" + "cd" * 32]),
        )
        # Runs: often the very row before, so that every part is reused some of the time.
        decisions.append(
            decisions[-1]._replace(decision_id=d.decision_id) if i and rng.random() < 0.3 else d
        )
    log = _log_of(store)
    for d in decisions:
        log(d)
    assert log.flush() == len(decisions)
    for d, row in zip(decisions, _written(store), strict=True):
        want = to_row(d)
        want.pop("at")
        assert {k: getattr(row, k) for k in want} == want
    out = audit_log.verify(store)
    assert out["ok"] and out["decisions"]["verified"] == len(decisions)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["org_a", ""]),
            st.sampled_from(["cli_b", None, "org_a"]),
            st.sampled_from(["plain", "a\x1fb", "Zo\u00eb\n"]),
            st.booleans(),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_a_queued_batch_gives_the_columns_its_rows_give_one_by_one(
    cases: list[tuple[str, str | None, str, bool]],
) -> None:
    """The writer splits a queued batch in one piece when it can; the columns are those of
    each text split on its own (`_spooled_row`), whatever NULLs and separators are mixed in."""
    at = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
    texts = [
        spool_text(_decision(at, reason, org, None, owner, "inv_1")._replace(allowed=allowed))
        for org, owner, reason, allowed in cases
    ]
    one_by_one = [_spooled_row(text, False) for text in texts]
    rows = _queued_rows(texts, False)
    assert rows.texts == texts
    assert rows.columns == [value for _, values in one_by_one for value in values]


TAMPER: dict[str, dict[str, Any]] = {
    "NULL organization made empty": {"org_id": ""},
    "empty text made NULL": {"actor": None},
    "text moved between fields": {"reason": "plai", "rule": "n" + 'rule "quoted" \\ back'},
    "separator smuggled in": {"reason": "plain\x1f"},
    "result flipped": {"allowed": True},
    "hash format downgraded": {"hash_format": None},
    "unknown hash format": {"hash_format": 3},
}


@pytest.mark.parametrize("how", TAMPER)
def test_an_edited_row_of_format_2_is_caught(store: Store, how: str) -> None:
    log = _log_of(store)
    for org in ("org_a", "", "org_a"):
        log(_decision(dt.datetime.now(dt.UTC), "plain", org, None, "cli_b", "i"))
    log.flush()
    victim = _written(store)[1]
    assert victim.org_id is None and victim.reason == "plain"
    with store.engine.begin() as conn:
        conn.execute(update(DecisionRow).where(DecisionRow.seq == victim.seq).values(TAMPER[how]))
    out = audit_log.verify(store)
    assert out["decisions"]["verified"] == 1
    assert out["decisions"]["first_break"]["id"] == victim.id
    assert "row edited" in out["decisions"]["first_break"]["reason"]


def test_upgrading_keeps_the_old_chain_and_the_log_extends_it(tmp_path: Path) -> None:
    """Rows hashed before the migration still verify; the writer's rows link to them."""
    from alembic import command

    engine = make_engine(f"sqlite:///{tmp_path}/old.db")
    cfg = migrate._config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "128db119d566")
    old = Store(engine)
    prev = audit.GENESIS
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO state (id, revision) VALUES (1, 0)"))
        for i in range(3):
            row = {**to_row(_decision(dt.datetime.now(dt.UTC), "r", "org_a", None, "cli_b", "i"))}
            row.update(id=f"dec_old{i}", prev_hash=prev)
            row["hash"] = prev = audit.chain_hash(prev, decision_fields(SimpleNamespace(**row)))
            conn.execute(insert(DecisionRow.__table__).values(row))
    assert migrate.upgrade(engine) and migrate.upgrade(engine) == []  # idempotent
    # Only indexes that take appended rows in time order or in a few places (9d3f6a2b7c41).
    assert {ix["name"] for ix in inspect(engine).get_indexes("decisions")} == {
        "ix_decisions_at",
        "ix_decisions_org_id",
    }
    log = _log_of(old)
    log(_decision(dt.datetime.now(dt.UTC), "r", "org_a", None, "cli_b", "i"))
    log.flush()
    assert [r.hash_format for r in _written(old)] == [None, None, None, HASH_FORMAT]
    out = audit_log.verify(old)
    assert out["ok"] and out["decisions"]["verified"] == 4
    engine.dispose()


# The writer thread's death is the point of the test, not a leak.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_writer_fails_checks_closed(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from authz.policy.decision_log import DecisionLogUnavailable
    from authz.store.db import Store, make_engine

    def die(self: DecisionLog) -> int:
        raise KeyboardInterrupt  # not an Exception: the writer's loop does not survive it

    monkeypatch.setattr(DecisionLog, "_write_batch", die)
    log = DecisionLog(Store(make_engine(f"sqlite:///{tmp_path}/x.db")), interval=0.01)
    d = _decision(dt.datetime.now(dt.UTC), "r", "org_a", None, "cli_b", "i")
    log(d)
    assert log._thread is not None
    log._thread.join(2)
    assert not log._thread.is_alive()
    with pytest.raises(DecisionLogUnavailable, match="writer stopped"):
        log(d)


def test_deciding_faster_than_the_writer_writes_slows_checks_instead_of_refusing(
    tmp_path,
) -> None:
    from sqlalchemy import func, select

    from authz.store import migrate
    from authz.store.db import Store, make_engine
    from authz.store.models import Decision as DecisionRow

    engine = make_engine(f"sqlite:///{tmp_path}/x.db")
    migrate.upgrade(engine)
    store = Store(engine)
    log = DecisionLog(store, batch_size=4, background=False, high_water=5, max_pending=6)
    for i in range(30):
        d = _decision(dt.datetime.now(dt.UTC), "r", "org_a", None, "cli_b", "i")
        log(d._replace(decision_id=f"dec_{i}"))
        assert len(log.pending) <= 5
    assert log.written >= 25  # the deciding thread wrote as it went
    log.flush()
    with store.read() as session:
        assert session.scalar(select(func.count()).select_from(DecisionRow)) == 30


def test_the_spool_keeps_what_the_store_did_not_take_and_replays_it_once(tmp_path: Any) -> None:
    """Issue 12, finding 3, in one process: a log closed while its store is away keeps the
    decisions in its spool; a later log on the same spool writes them, once, and removes it."""
    from authz.policy.decision_spool import Spool

    url = f"sqlite:///{tmp_path / 'authz.db'}"
    store = Store.from_url(url)
    migrate.upgrade(store.engine)
    spool_dir = tmp_path / "spool"
    decisions = [_decision(*row) for row in AWKWARD]
    n = len(decisions)
    log = DecisionLog(store, background=False, spool=Spool(spool_dir))
    for d in decisions:
        log(d)
    # The store goes away: the log's file is moved aside, so its writes fail.
    store.engine.dispose()
    (tmp_path / "authz.db").rename(tmp_path / "away.db")
    (tmp_path / "authz.db").mkdir()  # not a database: every write fails
    assert log.close() == n
    (tmp_path / "authz.db").rmdir()
    (tmp_path / "away.db").rename(tmp_path / "authz.db")
    assert list(spool_dir.glob("*.spool"))
    again = DecisionLog(Store.from_url(url), background=False, spool=Spool(spool_dir))
    assert again.replay() == n
    assert again.replay() == 0
    assert again.close() == 0
    assert not list(spool_dir.glob("*.spool"))
    back = Store.from_url(url)
    with back.read() as session:
        ids = list(session.scalars(select(DecisionRow.id)))
    assert sorted(ids) == sorted(d.decision_id for d in decisions)
    # Replayed rows hash as the writer would have hashed them: the chain verifies.
    assert audit_log.verify(back)["ok"]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_a_spool_line_gives_back_its_canonical_text(text: str) -> None:
    """One line a decision, whatever its text holds: ASCII texts are kept as they are, others
    (and any with a newline, a NUL or a leading quote) as JSON strings."""
    from authz.policy import decision_spool

    line = decision_spool.encode(text)
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and b"\0" not in line
    assert decision_spool.decode(line[:-1].decode()) == text
