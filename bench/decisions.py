"""Decision benchmark: the engine at N active grants beside pycasbin and a dict, same run.

    python -m bench decisions [--sizes 1000,100000,1000000] [--samples 20000] [--rounds 7]
                              [--load-rounds 5]
    python -m bench decisions --baseline REV [--sizes ...] [--samples ...] [--rounds ...]

Each measurement runs in its own process over a SQLite store of N grants (families of two
parents and two children, each parent holding an active grant on each child), so start-up time
and resident memory are those of that process alone. Stores are cached in --dir.

With --baseline REV, only the engine's decisions are timed, REV's tree against the current
checkout's in paired, alternating rounds (`bench.decisions_paired`).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import decisions_paired
from bench.decision_workload import best_of_three as _best_of_three
from bench.decision_workload import build_store, record_history, requests
from bench.decision_workload import stats as _stats
from bench.decision_workload import timed as _timed

__all__ = ["build_store", "main", "record_history", "requests"]

TARGETS = {
    "median_us": 20.0,
    "p99_us": 100.0,
    "startup_s": 15.0,
    "rss_mb": 500.0,
    "unknown_mb": 20.0,
    "ratio": 1.5,
}


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_engine(db: Path, grants: int, samples: int) -> dict[str, Any]:
    """Start the engine over the store; time decisions, the log's overhead, unknown subjects."""
    from authz.policy.decision_log import DecisionLog
    from authz.policy.engine import CheckRequest, Engine, Resource, Subject

    base = rss_mb()
    store, engine, startup = _cold_start(db)
    facts = engine.facts
    # What each worker of `authz serve` does once loaded (`api.wsgi_server.settle`).
    gc.collect()
    gc.freeze()
    rss = rss_mb()
    reqs = requests(grants, samples)
    plain = _best_of_three(engine.check, reqs)
    allowed = sum(engine.check(r).allowed for r in reqs[:1000])
    log = DecisionLog(store)  # as the service runs it
    logged_engine = Engine(engine.policy, facts, log=log)
    logged = _best_of_three(logged_engine.check, reqs)
    log.close()
    before = rss_mb()
    for i in range(100_000):
        engine.check(
            CheckRequest(
                Subject(f"client:cli_never_{i}", "org_b", f"cli_never_{i}"),
                "client.read",
                Resource("client", f"cli_never_{i}"),
            )
        )
    unknown = rss_mb() - before
    # What a worker leaves for the next start when it stops (`AccessService.close`).
    t0 = time.perf_counter()
    facts.save(store, min_rows=0)
    saved = time.perf_counter() - t0
    return {
        "startup_s": startup,
        "snapshot_save_s": saved,
        "rss_mb": rss,
        "base_rss_mb": base,
        **plain,
        "logged_median_us": logged["median_us"],
        "logged_p99_us": logged["p99_us"],
        "unknown_mb": unknown,
        "allowed_share": allowed / 1000,
        "log_written": log.written,
    }


def _restarted(db: Path) -> tuple[Any, float]:
    """The engine started again (from the snapshot the engine worker saved), settled as a
    worker settles, and the seconds its start took."""
    from authz.policy.engine import Engine, PolicySet
    from authz.policy.facts import FactIndex
    from authz.store.db import Store

    t0 = time.perf_counter()
    engine = Engine(PolicySet.load(), FactIndex.load(Store.from_url(f"sqlite:///{db}")))
    startup = time.perf_counter() - t0
    gc.collect()
    gc.freeze()
    return engine, startup


def _cold_start(db: Path) -> tuple[Any, Any, float]:
    """The store, the engine started over it from the store itself, and the seconds it took."""
    from authz.policy.engine import Engine, PolicySet
    from authz.policy.facts import FactIndex
    from authz.store.db import Store

    t0 = time.perf_counter()
    store = Store.from_url(f"sqlite:///{db}")
    facts = FactIndex.load(store)
    engine = Engine(PolicySet.load(), facts)
    startup = time.perf_counter() - t0
    assert facts.loaded_from == "store", "a cold start reads the store"
    return store, engine, startup


def worker_load(db: Path) -> dict[str, Any]:
    """A cold start alone (what `worker_engine` times first)."""
    return {"startup_s": _cold_start(db)[2]}


def worker_median(db: Path, grants: int, samples: int) -> dict[str, Any]:
    """The engine's median alone, after a restart (for the paired rounds)."""
    engine, _ = _restarted(db)
    return _best_of_three(engine.check, requests(grants, samples))


def worker_restart(db: Path) -> dict[str, Any]:
    """Start-up and resident memory of a restart."""
    engine, startup = _restarted(db)
    return {"startup_s": startup, "rss_mb": rss_mb(), "loaded_from": engine.facts.loaded_from}


def worker_dict(grants: int, samples: int) -> dict[str, Any]:
    families = max(1, grants // 4)
    table = {
        (f"cli_{f}_{p}", f"cli_{f}_{c}"): "full"
        for f in range(families)
        for p in (0, 1)
        for c in (2, 3)
    }
    rng = random.Random(7)
    keys = [
        (f"cli_{rng.randrange(families)}_0", f"cli_{rng.randrange(families)}_2")
        for _ in range(samples)
    ]
    return _stats(_timed(table.get, keys))


def _casbin_model(kind: str) -> Any:
    import casbin

    if kind == "plines":
        text = (
            "[request_definition]\nr = sub, obj, act\n[policy_definition]\np = sub, obj, act\n"
            "[policy_effect]\ne = some(where (p.eft == allow))\n[matchers]\n"
            "m = r.sub == p.sub && r.obj == p.obj && r.act == p.act\n"
        )
    else:
        text = (
            "[request_definition]\nr = sub, obj, act\n[policy_definition]\np = sub, act\n"
            "[role_definition]\ng = _, _, _\n[policy_effect]\ne = some(where (p.eft == allow))"
            "\n[matchers]\nm = g(r.sub, p.sub, r.obj) && r.act == p.act\n"
        )
    return casbin.Enforcer(casbin.Enforcer.new_model(text=text))


def worker_casbin(kind: str, grants: int, samples: int, load_only: bool = False) -> dict[str, Any]:
    base = rss_mb()
    families = max(1, grants // 4)
    t0 = time.perf_counter()
    e = _casbin_model(kind)
    rules = []
    for f in range(families):
        for p in (0, 1):
            for c in (2, 3):
                if kind == "plines":
                    rules.append([f"client:cli_{f}_{p}", f"cli_{f}_{c}", "invoice.read"])
                else:
                    rules.append([f"client:cli_{f}_{p}", "caregiver_full", f"cli_{f}_{c}"])
    from casbin import persist

    class Rows(persist.Adapter):  # the normal load path: an adapter filling the model
        def load_policy(self, model: Any) -> None:
            for rule in rules:
                persist.load_policy_line(", ".join(rule), model)

    if kind == "glines":
        rules = [["g", *r] for r in rules] + [["p", "caregiver_full", "invoice.read"]]
    else:
        rules = [["p", *r] for r in rules]
    e.set_adapter(Rows())
    e.load_policy()
    startup = time.perf_counter() - t0
    if load_only:
        return {"startup_s": startup}
    rss = rss_mb() - base
    rng = random.Random(7)
    # One p line per grant scans every line per decision: a few samples tell enough.
    n = samples if kind == "glines" else max(5, min(samples, 2_000_000 // grants))
    reqs = [
        (
            f"client:cli_{rng.randrange(families)}_0",
            f"cli_{rng.randrange(families)}_2",
            "invoice.read",
        )
        for _ in range(n)
    ]
    return {
        "startup_s": startup,
        "rss_mb": rss,
        **_stats(_timed(lambda r: e.enforce(*r), reqs)),
        "samples": n,
    }


def _run(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.decisions", *args], check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench decisions", description=__doc__)
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--dir", default="/tmp/authz-bench")
    ap.add_argument(
        "--plines-max",
        type=int,
        default=100_000,
        help="largest size for pycasbin with one p line per grant (slow to load)",
    )
    ap.add_argument("--glines-max", type=int, default=1_000_000)
    ap.add_argument(
        "--rounds", type=int, default=7, help="paired rounds of the smallest and largest size"
    )
    ap.add_argument(
        "--load-rounds",
        type=int,
        default=5,
        help="alternating pairs of our cold start and pycasbin's load at the largest size",
    )
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument(
        "--baseline",
        metavar="REV",
        help="time only the decisions, REV's tree against this checkout's, in paired rounds",
    )
    a = ap.parse_args(argv)
    if a.baseline:
        sizes = [int(s) for s in a.sizes.split(",")]
        return decisions_paired.run(a.baseline, sizes, a.samples, a.rounds, Path(a.dir), a.json)
    if a.worker:
        if a.worker == "engine":
            res = worker_engine(Path(a.dir) / f"grants-{a.size}.db", a.size, a.samples)
        elif a.worker == "median":
            res = worker_median(Path(a.dir) / f"grants-{a.size}.db", a.size, a.samples)
        elif a.worker == "restart":
            res = worker_restart(Path(a.dir) / f"grants-{a.size}.db")
        elif a.worker == "dict":
            res = worker_dict(a.size, a.samples)
        elif a.worker == "load":
            res = worker_load(Path(a.dir) / f"grants-{a.size}.db")
        elif a.worker == "glines_load":
            res = worker_casbin("glines", a.size, a.samples, load_only=True)
        else:
            res = worker_casbin(a.worker, a.size, a.samples)
        print(json.dumps(res))
        return 0
    Path(a.dir).mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in a.sizes.split(",")]
    results: dict[int, dict[str, Any]] = {}
    for n in sizes:
        db = Path(a.dir) / f"grants-{n}.db"
        if not db.exists():
            t0 = time.perf_counter()
            build_store(db, n)
            print(f"# built {db} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        record_history(db)  # stores built before snapshots existed
        Path(f"{db}-facts").unlink(missing_ok=True)  # the engine row is a cold start
        common = ["--size", str(n), "--samples", str(a.samples), "--dir", a.dir]
        row: dict[str, Any] = {
            "engine": _run(["--worker", "engine", *common]),
            "restart": _run(["--worker", "restart", *common]),
            "dict": _run(["--worker", "dict", *common]),
        }
        row["glines"] = _run(["--worker", "glines", *common]) if n <= a.glines_max else None
        row["plines"] = _run(["--worker", "plines", *common]) if n <= a.plines_max else None
        results[n] = row
        print(f"# {n} grants done", file=sys.stderr)
    # The machine's speed drifts over the minutes the sizes take: the smallest and the largest
    # size are timed again in alternation, and their ratio is the median of the rounds' ratios.
    small, big = min(sizes), max(sizes)
    paired = []
    for _ in range(a.rounds):
        medians = [
            _run(
                [
                    "--worker",
                    "median",
                    "--size",
                    str(n),
                    "--samples",
                    str(a.samples),
                    "--dir",
                    a.dir,
                ]
            )["median_us"]
            for n in (small, big)
        ]
        paired.append(medians[1] / medians[0])
    results[big]["paired_ratio"] = statistics.median(paired)
    if results[big]["glines"]:
        results[big]["cold"] = _cold_starts(big, a.dir, a.load_rounds)
    if a.json:
        print(json.dumps(results, indent=2))
        return 0
    print_table(results)
    return 0


def _cold_starts(n: int, directory: str, rounds: int) -> dict[str, Any]:
    """Our cold start and pycasbin's load of the same grants, each alone in a process, in
    `rounds` pairs that alternate which goes first: one start of each moves by ±10 % with the
    machine's other load, more than the two differ."""
    db = Path(directory) / f"grants-{n}.db"
    ours, theirs = [], []
    for r in range(rounds):
        order = ("load", "glines_load") if r % 2 == 0 else ("glines_load", "load")
        got = {}
        for worker in order:
            Path(f"{db}-facts").unlink(missing_ok=True)  # a cold start reads the store
            args = ["--worker", worker, "--size", str(n), "--dir", directory]
            got[worker] = _run(args)["startup_s"]
        ours.append(got["load"])
        theirs.append(got["glines_load"])
    return {
        "ours_s": statistics.median(ours),
        "pycasbin_s": statistics.median(theirs),
        "ratio": statistics.median(o / t for o, t in zip(ours, theirs, strict=True)),
        "ratios": [o / t for o, t in zip(ours, theirs, strict=True)],
    }


def print_table(results: dict[int, dict[str, Any]]) -> None:
    def f(v: float | None, unit: str = "") -> str:
        if v is None:
            return "-"
        return f"{v:,.1f}{unit}" if v < 1000 else f"{v:,.0f}{unit}"

    print(
        f"{'grants':>9} | {'what':<34} | {'median µs':>10} | {'p99 µs':>9} | "
        f"{'start s':>8} | {'RSS MB':>7}"
    )
    print("-" * 92)
    smallest = results[min(results)]["engine"]["median_us"]
    for n, row in results.items():
        e = row["engine"]
        lines = [
            (
                "authz engine (compiled model.conf)",
                e["median_us"],
                e["p99_us"],
                e["startup_s"],
                e["rss_mb"],
            ),
            ("authz engine + decision log", e["logged_median_us"], e["logged_p99_us"], None, None),
            (
                "authz engine, restart from snapshot",
                None,
                None,
                row["restart"]["startup_s"],
                row["restart"]["rss_mb"],
            ),
        ]
        for key, label in (
            ("glines", "pycasbin, grants as g lines"),
            ("plines", "pycasbin, one p line per grant"),
        ):
            b = row[key]
            lines.append(
                (label, b["median_us"], b["p99_us"], b["startup_s"], b["rss_mb"])
                if b
                else (label + " (skipped)", None, None, None, None)
            )
        lines.append(
            ("python dict lookup", row["dict"]["median_us"], row["dict"]["p99_us"], None, None)
        )
        for label, med, p99, st, rss in lines:
            print(f"{n:>9,} | {label:<34} | {f(med):>10} | {f(p99):>9} | {f(st):>8} | {f(rss):>7}")
        print(
            f"{'':>9} | unknown subjects: +{e['unknown_mb']:.1f} MB for 100,000 denied checks; "
            f"median/median@{min(results):,} = {e['median_us'] / smallest:.2f}; log overhead "
            f"{(e['logged_median_us'] / e['median_us'] - 1) * 100:+.0f} %; snapshot saved in "
            f"{e['snapshot_save_s']:.1f} s, restart read it: {row['restart']['loaded_from']}"
        )
    top = results[max(results)]
    big, restart = top["engine"], top["restart"]
    checks = {
        f"median ≤ {TARGETS['median_us']} µs": big["median_us"] <= TARGETS["median_us"],
        f"p99 ≤ {TARGETS['p99_us']} µs": big["p99_us"] <= TARGETS["p99_us"],
        f"median within {TARGETS['ratio']}x of smallest (paired)": top["paired_ratio"]
        <= TARGETS["ratio"],
        f"start-up ≤ {TARGETS['startup_s']} s": big["startup_s"] <= TARGETS["startup_s"],
        f"restart ≤ {TARGETS['startup_s']} s": restart["startup_s"] <= TARGETS["startup_s"],
        f"RSS ≤ {TARGETS['rss_mb']} MB": big["rss_mb"] <= TARGETS["rss_mb"],
        # A restarted worker reads the snapshot: it keeps the same bar for as long as it runs.
        f"RSS after a restart ≤ {TARGETS['rss_mb']} MB": restart["rss_mb"] <= TARGETS["rss_mb"],
        f"unknown subjects < {TARGETS['unknown_mb']} MB": big["unknown_mb"] < TARGETS["unknown_mb"],
    }
    cold = top.get("cold")
    if cold:
        # Issue 18 keeps issue 11's bar: a cold start no slower than pycasbin's own load,
        # judged on the median of paired rounds (one start of each is within the noise).
        checks["cold start ≤ pycasbin's load (paired)"] = cold["ratio"] <= 1.0
        print(
            f"start-up at {max(results):,} grants, {len(cold['ratios'])} alternating pairs: "
            f"ours {cold['ours_s']:.2f} s, pycasbin's own load of the same grants "
            f"{cold['pycasbin_s']:.2f} s; median ratio {cold['ratio']:.2f}x (pairs: "
            + ", ".join(f"{r:.2f}" for r in cold["ratios"])
            + ")"
        )
    print(
        f"decision log: {(big['logged_median_us'] / big['median_us'] - 1) * 100:+.0f} % on a "
        "caller deciding back to back (~70,000 checks/s, sharing the GIL with the log's "
        "writer); what the log costs a check is judged over HTTP: python -m bench http_checks"
    )
    print(
        f"median at {max(results):,} / median at {min(results):,}, timed in alternation "
        f"(median of the rounds): {top['paired_ratio']:.2f}"
    )
    print(
        f"targets at {max(results):,} grants: "
        + "; ".join(f"{k}: {'holds' if v else 'MISSED'}" for k, v in checks.items())
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
