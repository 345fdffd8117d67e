"""A full load reads each chunk a column at a time (`authz.policy.facts._Columns`); these hold
every field it writes to what the row-by-row pass (`_add_clients`, `_add_links`, `put_payment`)
writes from the same rows, in every form a store hands a value."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from authz.policy import facts as facts_module
from authz.policy.facts import FactIndex, OrgRow, _day, _day_column, _micros, _micros_column

_MOMENTS = st.datetimes(
    min_value=dt.datetime(1900, 1, 1),
    max_value=dt.datetime(2200, 1, 1),
    timezones=st.none()
    | st.just(dt.UTC)
    | st.builds(lambda m: dt.timezone(dt.timedelta(minutes=m)), st.integers(-14 * 60, 14 * 60)),
)


def _forms(moment: dt.datetime) -> list[Any]:
    """The forms a store hands a moment in: SQLite's naive text (with and without the
    microseconds), text with a `T` or an offset, PostgreSQL's datetimes."""
    naive = moment.replace(tzinfo=None)
    return [
        str(naive),
        naive.strftime("%Y-%m-%d %H:%M:%S.%f"),
        naive.isoformat(),
        str(moment),
        moment.isoformat(),
        moment,
        naive,
    ]


_MOMENT_VALUES = st.none() | st.builds(
    lambda m, k: _forms(m)[k], _MOMENTS, st.integers(0, len(_forms(dt.datetime(2000, 1, 1))) - 1)
)


@given(st.lists(_MOMENT_VALUES, max_size=30), st.lists(_MOMENT_VALUES, max_size=5))
def test_a_column_of_moments_reads_as_each_moment_alone(
    values: list[Any], seen_before: list[Any]
) -> None:
    column = tuple(values)
    assert _micros_column(column) == [_micros(v) if v else 0 for v in column]
    # The day cache carries over chunks: days seen in an earlier chunk are looked up.
    alone: dict[Any, int] = {}
    together: dict[Any, int] = {facts_module._NO_DAY: 0}
    for v in seen_before:
        _day(v, alone)
        _day(v, together)
    assert _day_column(column, together) == [_day(v, alone) for v in column]


def test_a_naive_column_converts_at_once_and_keeps_the_epoch_apart_from_none() -> None:
    # The epoch itself reads 1 (0 means none), beside a missing value and a moment.
    column = ("1970-01-01 00:00:00.000000", None, "2026-11-02 09:00:00.000001", "")
    assert _micros_column(column[:3]) == [1, 0, 1_793_610_000_000_001]
    assert _micros_column(column) == [_micros(v) if v else 0 for v in column]


_ORGS = [OrgRow("org_a", "A", ["linked_portal_access"]), OrgRow("org_b", "B", [])]
_WORDS = st.sampled_from(["parent", "guardian", "spouse", "", None])
_NAMES = st.sampled_from(["Jenna", "Sam", "Ava", "", None])
_STAFF = st.sampled_from(["prv_1", "prv_2", "", None])
_BIRTHS = st.none() | st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1)).flatmap(
    lambda d: st.sampled_from([d.isoformat(), d, f"{d.isoformat()} 00:00:00"])
)


@st.composite
def _stores(draw: st.DrawFn) -> dict[str, Any]:
    """Rows as a full read hands them: unique ids, a few unknown organizations and clients,
    words seen first in any chunk, every form of each value."""
    n_clients = draw(st.integers(1, 25))
    cids = [f"cli_{k}" for k in range(n_clients)]
    clients = [
        (
            cid,
            draw(st.sampled_from(["org_a", "org_a", "org_b", "org_gone"])),
            draw(_NAMES),
            draw(st.sampled_from(["adult", "minor", "minor"])),
            draw(_BIRTHS),
            draw(st.sampled_from(["a@example.org", "b@example.org", "", None])),
            draw(st.sampled_from([0, 1, True, False, None])),
            draw(st.sampled_from([0, 1, True, False])),
        )
        for cid in cids
    ]
    known = [*cids, "cli_gone"]
    links = [
        (
            f"lnk_{k}",
            draw(st.sampled_from(known)),
            draw(st.sampled_from(known)),
            draw(_WORDS),
            draw(st.sampled_from(["pending", "active", "active", "revoked", "expired", None])),
            draw(st.sampled_from(["full", "billing", "scheduling", "", None])),
            draw(_MOMENT_VALUES),
            draw(_STAFF),
            draw(_MOMENT_VALUES),
            draw(_MOMENT_VALUES),
            draw(_MOMENT_VALUES),
        )
        for k in range(draw(st.integers(0, 40)))
    ]
    payments = [
        (draw(st.sampled_from(["pm_1", "pm_2", "pm_3"])), draw(st.sampled_from(known)))
        for _ in range(draw(st.integers(0, 10)))
    ]
    size = draw(st.integers(1, 8))
    return {"clients": clients, "links": links, "payments": payments, "chunk": size}


def _chunks(rows: list[Any], size: int) -> list[list[Any]]:
    return [rows[k : k + size] for k in range(0, len(rows), size)]


def _state(index: FactIndex) -> dict[str, Any]:
    """Every table a decision, a listing or a snapshot reads."""
    fields = ("c_id", "c_rec", "_ci", "g_key", "g_head", "_groups", "words", "_words")
    fields += ("l_id", "l_rec", "l_act", "l_rby", "_free", "pm")
    state = {name: getattr(index, name) for name in fields}
    state["links"] = {lid: index.link_index(lid) for lid in index.l_id}
    return state


@settings(max_examples=300)
@given(_stores())
def test_a_full_load_reads_every_field_as_the_row_by_row_pass(rows: dict[str, Any]) -> None:
    size = rows["chunk"]
    clients = _chunks(rows["clients"], size)
    links = _chunks(rows["links"], size)
    payments = _chunks(rows["payments"], size)
    by_columns = FactIndex()
    by_columns._load_rows(_ORGS, (), (), clients, links, payments, unique=True)
    # The row-by-row pass, as a full load made it before.
    by_rows = FactIndex()
    by_rows._load_rows(_ORGS, (), (), [], [], [])
    for chunk in clients:
        by_rows._add_clients(chunk)
    for chunk in links:
        by_rows._add_links(chunk, unique=True)
    by_rows._li.rebuild()
    for chunk in payments:
        for row in chunk:
            by_rows.put_payment(row)
    assert _state(by_columns) == _state(by_rows)


def test_the_column_wise_reading_covers_a_regular_store() -> None:
    """Once a chunk has taught the index its words, every chunk goes column-wise (the property
    above holds its values; this that the fast path is the one taken)."""
    cols = facts_module._Columns()
    index = FactIndex()
    index._load_rows(_ORGS, (), (), [], [], [])
    clients = [
        (f"cli_{k}", "org_a", "Sam", "minor" if k % 2 else "adult", "2016-03-01", "f@x.org", 1, 1)
        for k in range(100)
    ]
    at = "2026-11-02 09:00:00.000000"
    links = [
        (
            f"lnk_{k}",
            f"cli_{k}",
            f"cli_{k + 1}",
            "parent",
            "active",
            "full",
            None,
            "prv_1",
            at,
            at,
            None,
        )
        for k in range(99)
    ]
    # A client has one word (its first name): new ones are numbered in row order here too.
    assert cols.clients(index, clients[:50])
    assert cols.clients(index, clients[50:])
    assert not cols.links(index, links[:50])  # "parent" and "prv_1" are new words
    index._add_links(links[:50], unique=True)
    assert cols.links(index, links[50:])
    assert cols.payments(index, [("pm_1", "cli_3"), ("pm_2", "cli_4")])
