"""Decision log writer benchmark: µs a decision to write (chain + insert), SQLite and PostgreSQL.

    python -m bench decision_log [--rounds 7] [--n 5000] [--baseline DIR] [--postgres URL]

Each sample runs in a fresh process (`--child`) against a store kept across rounds, so the
table grows as it would in service: decisions are built by the engine, queued, then one
timed `flush()` writes them. With `--baseline DIR` (a checkout of another commit, e.g.
`git archive REV | tar -x -C DIR`) the same samples run on that code too, interleaved with
this tree's, so that the machine's drift hits both alike. PostgreSQL runs when `--postgres` or
AUTHZ_TEST_POSTGRES_URL names a server (a scratch database is created and dropped).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import postgres_database

ROOT = Path(__file__).resolve().parent.parent
TARGET_US = 8.0


def child(url: str, n: int) -> dict[str, float]:
    """Migrate `url` if needed, queue `n` decisions, time one flush; µs a decision."""
    from authz.policy.decision_log import DecisionLog
    from authz.policy.engine import CheckRequest, Engine, PolicySet, Resource, Subject
    from authz.policy.facts import FactIndex
    from authz.store import migrate
    from authz.store.db import Store, make_engine

    store = Store(make_engine(url))
    migrate.upgrade(store.engine)
    pending: list[Any] = []
    engine = Engine(PolicySet.load(), FactIndex.load(store), log=pending.append)
    for i in range(n):
        # A mix like the service's: several organizations, actions and resource shapes.
        engine.check(
            CheckRequest(
                Subject(f"client:cli_x{i % 977}", f"org_{i % 7}"),
                ("client.read", "invoice.pay", "appointment.read")[i % 3],
                Resource(("client", "invoice", "appointment")[i % 3], f"r_{i}", f"cli_x{i % 13}"),
                "pm_1" if i % 3 == 1 else None,
            )
        )
    log = DecisionLog(store, background=False)
    for decision in pending:
        log(decision)  # queued as the service queues it (its canonical text)
    wall, cpu = time.perf_counter(), time.process_time()
    written = log.flush()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert written == n, (written, n)
    store.engine.dispose()
    return {"wall_us": wall / n * 1e6, "cpu_us": cpu / n * 1e6}


def _sample(tree: Path, url: str, n: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        # This file, run as a script, so that the baseline needs no copy of it; `authz` comes
        # from the tree on PYTHONPATH.
        [sys.executable, str(Path(__file__).resolve()), "--child", url, "--n", str(n)],
        env=env,
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench decision_log", description=__doc__)
    ap.add_argument("--rounds", type=int, default=7, help="samples per cell (medians)")
    ap.add_argument("--n", type=int, default=5000, help="decisions per sample")
    ap.add_argument("--baseline", type=Path, help="another checkout to compare against")
    ap.add_argument("--postgres", default=os.environ.get("AUTHZ_TEST_POSTGRES_URL"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(child(a.child, a.n)))
        return 0
    trees = {"this tree": ROOT}
    if a.baseline:
        trees = {"baseline": a.baseline.resolve(), **trees}
    workdir = Path(tempfile.mkdtemp(prefix="authz-dlog-bench-"))
    samples: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        with _stores(workdir, trees, a.postgres) as urls:
            for _ in range(a.rounds):
                # Interleaved: each round takes one sample of every cell.
                for (backend, label), url in urls.items():
                    s = _sample(trees[label], url, a.n)
                    samples.setdefault((backend, label), []).append(s)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = []
    for (backend, label), ss in samples.items():
        wall = statistics.median(s["wall_us"] for s in ss)
        cpu = statistics.median(s["cpu_us"] for s in ss)
        spread = f"{min(s['wall_us'] for s in ss):.1f}-{max(s['wall_us'] for s in ss):.1f}"
        rows.append((backend, label, f"{wall:.1f}", spread, f"{cpu:.1f}", str(len(ss))))
    head = ("backend", "code", "wall µs/decision", "min-max", "writer CPU µs", "samples")
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    for r in (head, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print(f"target: ≤ {TARGET_US:.0f} µs a decision in-process on SQLite")
    return 0


@contextmanager
def _stores(
    workdir: Path, trees: dict[str, Path], postgres: str | None
) -> Iterator[dict[tuple[str, str], str]]:
    """One store per backend and tree (each tree migrates its own schema)."""
    urls = {("sqlite", label): f"sqlite:///{workdir}/{i}.db" for i, label in enumerate(trees)}
    if not postgres:
        yield urls
        return
    with postgres_database(postgres) as first, postgres_database(postgres) as second:
        for label, url in zip(trees, (first, second), strict=False):
            urls[("postgresql", label)] = url
        yield urls


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
