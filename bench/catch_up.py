"""Replica catch-up at N audit events: after another replica's write, the next check brings its
facts up to date by reading the audit events of the revisions it has not seen.

    python -m bench catch_up [--sizes 1000,1000000] [--rounds 30] [--dir .bench]

Each size is one SQLite store holding N audit events (written directly, for speed). In the same
run, each store is measured with the `audit_events.revision` index (this service) and with it
dropped (the schema before issue 12): one audited write, then `FactIndex.ensure_fresh`, timed,
medians and p90 over the rounds. The target: at the largest size, catching up costs at most
1.5x what it costs at the smallest.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
from pathlib import Path

TARGET_RATIO = 1.5
INDEX = "ix_audit_events_revision"


def build(path: Path, events: int) -> None:
    """A store with one organization and `events` audit events, one revision each."""
    from authz.store import migrate
    from authz.store.db import make_engine

    path.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    ts = "2026-11-02 09:00:00.000000"
    con = sqlite3.connect(path)
    con.execute(
        "INSERT INTO organizations VALUES ('org_b', 'Bench Clinic', "
        "'[\"linked_portal_access\"]', ?)",
        (ts,),
    )
    rows = (
        (
            i,
            f"evt_{i}",
            ts,
            "org_b",
            "bench",
            "org.update",
            "org_b",
            "[]",
            None,
            '{"name": "Bench Clinic"}',
            i,
            "",
            f"{i - 1:064x}",
            f"{i:064x}",
        )
        for i in range(1, events + 1)
    )
    con.executemany("INSERT INTO audit_events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.execute("UPDATE state SET revision = ?", (events,))
    con.commit()
    con.close()


def measure(path: Path, rounds: int) -> list[float]:
    """Milliseconds of `ensure_fresh` after each of `rounds` audited writes."""
    from authz.policy.facts import FactIndex
    from authz.store.db import Store

    store = Store.from_url(f"sqlite:///{path}")
    try:
        facts = FactIndex.load(store, 18)
        out = []
        for n in range(rounds):
            with store.write("bench", "org_b") as txn:
                txn.record("org.update", "org_b", None, {"name": f"Bench Clinic {n}"})
            started = time.perf_counter()
            facts.ensure_fresh(store)
            out.append((time.perf_counter() - started) * 1000)
        return out
    finally:
        store.engine.dispose()


def _index(path: Path, present: bool) -> None:
    con = sqlite3.connect(path)
    if present:
        con.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON audit_events (revision)")
    else:
        con.execute(f"DROP INDEX IF EXISTS {INDEX}")
    con.commit()
    con.close()


def _p90(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10)[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench catch_up")
    parser.add_argument("--sizes", default="1000,1000000")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--dir", default=".bench")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    folder = Path(args.dir)
    folder.mkdir(exist_ok=True)
    results: dict[tuple[int, bool], list[float]] = {}
    for size in sizes:
        path = folder / f"catch_up_{size}.db"
        build(path, size)
        # Alternate the two schemas so that the machine's load falls on both alike.
        for present in (True, False, True, False):
            _index(path, present)
            results.setdefault((size, present), []).extend(measure(path, args.rounds // 2))
    print(f"\nReplica catch-up after one remote write (SQLite, {args.rounds} rounds each)\n")
    print(
        "| audit events | with the revision index: p50 / p90 ms "
        "| without (before): p50 / p90 ms |"
    )
    print("|---:|---:|---:|")
    for size in sizes:
        on, off = results[(size, True)], results[(size, False)]
        print(
            f"| {size:,} | {statistics.median(on):.2f} / {_p90(on):.2f} "
            f"| {statistics.median(off):.2f} / {_p90(off):.2f} |"
        )
    small, large = min(sizes), max(sizes)
    ratio = statistics.median(results[(large, True)]) / statistics.median(results[(small, True)])
    before = statistics.median(results[(large, False)]) / statistics.median(
        results[(small, False)]
    )
    ok = ratio <= TARGET_RATIO
    print(
        f"\n{large:,} vs {small:,} events: {ratio:.2f}x with the index "
        f"(target ≤ {TARGET_RATIO}x: {'met' if ok else 'MISSED'}), {before:.1f}x without it."
    )
    return 0 if ok else 1
