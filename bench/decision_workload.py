"""The decision workload of `python -m bench decisions`: the store of N grants, the request mix
and the timing, and a worker that times one tree's engine on it.

    python -m bench.decision_workload --db PATH --size N --samples S [--labels] [--build-only]

This module imports nothing from `bench` and only the parts of `authz` that every tree since the
engine's first snapshot has (`authz.store.migrate`, `authz.store.db`, `authz.store.models`,
`authz.policy.engine`, `authz.policy.facts`), so the paired run (`bench.decisions_paired`) copies
it into an older tree and runs it there with that tree's `authz`, unchanged.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def build_store(path: Path, grants: int) -> None:
    """A SQLite store with `grants` active grants (written directly, for speed), migrated by
    the importing tree's own migrations. Columns are named, so a tree whose tables have more
    columns (with defaults) gets the same rows."""
    from authz.store import migrate
    from authz.store.db import make_engine

    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    ts = "2026-11-02 09:00:00.000000"
    con = sqlite3.connect(path)
    con.execute(
        "INSERT INTO organizations (id, name, entitlements, created_at) VALUES "
        "('org_b', 'Bench Clinic', "
        "'[\"linked_portal_access\"]', ?)",
        (ts,),
    )
    con.execute(
        "INSERT INTO providers (id, org_id, email, name, created_at) VALUES "
        "('prv_b', 'org_b', 'lee@example.org', 'Dr. Lee', ?)",
        (ts,),
    )
    families = max(1, grants // 4)
    names = ["Jenna", "Mark", "Sam", "Ava", "Leo", "Mia", "Noah", "Zoe"]

    def clients() -> Iterator[tuple[Any, ...]]:
        for f in range(families):
            for k in range(4):
                minor = k >= 2
                ctype = "minor" if minor else "adult"
                yield (
                    f"cli_{f}_{k}",
                    "org_b",
                    names[(f + k) % 8],
                    "",
                    ctype,
                    "2016-03-01" if minor else None,
                    f"fam{f}@example.org",
                    1,
                    None,
                    1,
                    ts,
                    ts,
                )

    con.executemany(
        "INSERT INTO clients (id, org_id, first_name, last_name, client_type, "
        "birth_date, email, email_verified, client_group, active, created_at, "
        "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        clients(),
    )

    def links() -> Iterator[tuple[Any, ...]]:
        for f in range(families):
            for p in (0, 1):
                for c in (2, 3):
                    a, b = f"cli_{f}_{c}", f"cli_{f}_{p}"
                    yield (
                        f"lnk_{f}_{p}{c}",
                        "org_b",
                        a,
                        b,
                        "|".join(sorted((a, b))),
                        "parent",
                        "adult",
                        0,
                        0,
                        "prv_b",
                        ts,
                        ts,
                        "active",
                        "full",
                        "ack",
                        "prv_b",
                        ts,
                        ts,
                        1,
                    )

    con.executemany(
        "INSERT INTO links (id, org_id, original_client_id, linked_client_id, "
        "pair_key, relationship, client_type, emergency_contact, notify, created_by, "
        "created_at, updated_at, portal_status, access_level, acknowledgement, "
        "acknowledged_by, acknowledged_at, activated_at, grant_version) VALUES "
        "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        links(),
    )
    con.executemany(
        "INSERT INTO payment_methods (id, org_id, client_id, label, created_at) "
        "VALUES (?, 'org_b', ?, 'card', ?)",
        ((f"pm_{f}_{k}", f"cli_{f}_{k}", ts) for f in range(families) for k in (0, 2)),
    )
    con.commit()
    con.close()
    record_history(path)


def record_history(path: Path) -> None:
    """One audited write through the store, as the service makes them: a snapshot of the facts
    names the newest audit event, so a store without history is never snapshotted."""
    from sqlalchemy import func, select

    from authz.store.db import Store
    from authz.store.models import AuditEvent

    store = Store.from_url(f"sqlite:///{path}")
    try:
        with store.read() as session:
            if session.execute(select(func.count()).select_from(AuditEvent)).scalar_one():
                return
        with store.write("bench", "org_b") as txn:
            txn.record("org.update", "org_b", None, {"name": "Bench Clinic"})
    finally:
        store.engine.dispose()


def timed(fn: Any, args: list[Any]) -> list[float]:
    """Microseconds of `fn(a)` for each `a`, one clock reading either side of each call."""
    out = []
    clock = time.perf_counter_ns
    for a in args:
        t0 = clock()
        fn(a)
        out.append((clock() - t0) / 1000)
    return out


def stats(samples: list[float]) -> dict[str, float]:
    """Median and p99 of `samples` (sorted in place)."""
    samples.sort()
    return {
        "median_us": statistics.median(samples),
        "p99_us": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
    }


def requests(grants: int, samples: int, labels: bool = True) -> list[Any]:
    """The same mix of checks at every size: a parent's delegated token paying and reading
    for their child (allowed and denied), and the child's token on the parent's account.

    With `labels`, the reads of every second child's documents carry a PSY label; without,
    the same requests carry none (for an engine whose resources have no labels)."""
    from authz.policy.engine import CheckRequest, Resource, Subject

    if labels and "labels" not in Resource._fields:
        raise SystemExit("this tree's Resource has no labels: run it without --labels")
    rng = random.Random(7)
    families = max(1, grants // 4)
    reqs: list[Any] = []
    for _ in range(samples):
        f, p, c = rng.randrange(families), rng.choice((0, 1)), rng.choice((2, 3))
        sub = Subject(
            f"client:cli_{f}_{p}", "org_b", f"cli_{f}_{c}", f"lnk_{f}_{p}{c}", "delegation"
        )
        kind = rng.randrange(4)
        if kind == 0:  # allow: pay the child's invoice with the child's card
            reqs.append(
                CheckRequest(
                    sub,
                    "invoice.pay",
                    Resource("invoice", "inv_1", f"cli_{f}_{c}"),
                    f"pm_{f}_2" if c == 2 else f"pm_{f}_{c}",
                )
            )
        elif kind == 1:  # deny: the parent's own card for the child's invoice
            reqs.append(
                CheckRequest(
                    sub, "invoice.pay", Resource("invoice", "inv_1", f"cli_{f}_{c}"), f"pm_{f}_0"
                )
            )
        elif kind == 2:  # read the child's documents, half of them PSY-labelled
            owner = f"cli_{f}_{c}"
            # Positional, so the tuple is built the same way whether or not labels exist.
            doc = (
                Resource("document", "d", owner, ("PSY",) if c == 3 else ())
                if labels
                else Resource("document", "d", owner)
            )
            reqs.append(CheckRequest(sub, "document.read", doc))
        else:  # deny: the child's token on the parent's account
            child = Subject(f"client:cli_{f}_{c}", "org_b", f"cli_{f}_{c}")
            reqs.append(CheckRequest(child, "client.read", Resource("client", f"cli_{f}_{p}")))
    return reqs


def best_of_three(check: Any, reqs: list[Any]) -> dict[str, float]:
    """Median and p99 of the best of three timed passes, after a warm-up: the machine is
    shared, and a pass that another process slowed down says nothing about the engine."""
    for r in reqs[:2000]:
        check(r)
    return min((stats(timed(check, reqs)) for _ in range(3)), key=lambda s: s["median_us"])


def loaded_engine(db: Path) -> Any:
    """The engine over the store's facts, read cold from the store (no snapshot: its format
    is a tree's own), settled as each worker of `authz serve` settles."""
    from authz.policy.engine import Engine, PolicySet
    from authz.policy.facts import FactIndex
    from authz.store.db import Store

    Path(f"{db}-facts").unlink(missing_ok=True)
    store = Store.from_url(f"sqlite:///{db}")
    engine = Engine(PolicySet.load(), FactIndex.load(store))
    store.engine.dispose()
    gc.collect()
    gc.freeze()
    return engine


def measure(db: Path, grants: int, samples: int, labels: bool) -> dict[str, Any]:
    """Time the engine's decisions on a loaded policy with `grants` grants: only
    `Engine.check`, never the store's set-up or the facts' load."""
    import authz

    if not db.exists():
        build_store(db, grants)
    engine = loaded_engine(db)
    reqs = requests(grants, samples, labels)
    result = best_of_three(engine.check, reqs)
    return {
        **result,
        "allowed_share": sum(engine.check(r).allowed for r in reqs[:1000]) / min(1000, len(reqs)),
        "labelled": sum(1 for r in reqs if getattr(r.resource, "labels", ())),
        "authz": str(Path(authz.__file__).resolve().parent),
    }


def main(argv: list[str] | None = None) -> int:
    """Worker entry: one JSON line with the median and p99 µs per decision of this tree."""
    ap = argparse.ArgumentParser(prog="python -m bench.decision_workload", description=__doc__)
    ap.add_argument("--db", required=True, type=Path)
    ap.add_argument("--size", required=True, type=int)
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--labels", action="store_true", help="PSY on half the document reads")
    ap.add_argument("--build-only", action="store_true", help="build the store if missing")
    a = ap.parse_args(argv)
    if a.build_only:
        if not a.db.exists():
            build_store(a.db, a.size)
        print(json.dumps({"built": str(a.db)}))
        return 0
    print(json.dumps(measure(a.db, a.size, a.samples, a.labels)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
