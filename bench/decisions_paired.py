"""`python -m bench decisions --baseline REV`: the engine's decisions, REV's against this
checkout's, timed in paired, alternating rounds.

REV's tree is extracted with `git archive` from the repository of this checkout into a temporary
directory, and `bench/decision_workload.py` is copied into it. Each round runs, for every size,
one worker process per side (`python -m bench.decision_workload` with `PYTHONPATH` and the working
directory at that side's tree, so it imports that tree's `authz`): the baseline first in even
rounds, the current code first in odd ones, so the machine's drift over the run falls on both
sides alike. Both sides build their store of N grants with their own migrations and the same
rows, load it cold, and time only `Engine.check` over the same seeded requests; the current
code's requests carry sensitivity labels, the baseline's (an engine without labels) do not.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

#: The checkout whose code is "current": the one this module is in.
ROOT = Path(__file__).resolve().parent.parent
WORKLOAD = Path(__file__).with_name("decision_workload.py")
#: The issue's bar: the current median within 10 % of the baseline's.
TOLERANCE = 0.10


class PairedError(Exception):
    """The paired run cannot start or a worker failed: one line for the user."""


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise PairedError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "git")
    return out.stdout.strip()


def resolve(rev: str) -> str:
    """REV's commit in the repository of this checkout; PairedError if there is none."""
    try:
        _git("rev-parse", "--show-toplevel")
    except (PairedError, FileNotFoundError) as e:
        raise PairedError(f"--baseline needs a git checkout; {ROOT} is not one ({e})") from e
    try:
        return _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except PairedError:
        raise PairedError(f"--baseline {rev}: no such commit in {ROOT}") from None


def extract(commit: str, into: Path) -> Path:
    """REV's tree at `into`, with this checkout's workload module in its `bench` package."""
    archive = subprocess.Popen(["git", "archive", commit], cwd=ROOT, stdout=subprocess.PIPE)
    untar = subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=False)
    assert archive.stdout is not None
    archive.stdout.close()
    if archive.wait() != 0 or untar.returncode != 0:
        raise PairedError(f"git archive {commit} | tar -x -C {into} failed")
    bench = into / "bench"
    bench.mkdir(exist_ok=True)
    (bench / "__init__.py").touch()
    # The same file on both sides: the workload and its timing are this checkout's.
    shutil.copyfile(WORKLOAD, bench / WORKLOAD.name)
    return into


def _store_tag(tree: Path) -> str:
    """Names a tree's cached stores: its migrations and the workload's rows decide the file."""
    h = hashlib.sha256(WORKLOAD.read_bytes())
    for f in sorted((tree / "authz/store/migrations/versions").glob("*.py")):
        h.update(f.name.encode())
    return h.hexdigest()[:12]


def _worker(tree: Path, args: list[str]) -> dict[str, Any]:
    """One worker process over `tree`'s `authz`; its JSON line."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree), env.get("PYTHONPATH")) if p)
    env["PYTHONHASHSEED"] = "0"  # the same dict and set layouts on both sides
    out = subprocess.run(
        [sys.executable, "-m", "bench.decision_workload", *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise PairedError(f"the worker over {tree} failed: {last}")
    res = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    # An installed authz ahead of PYTHONPATH would time the wrong code, silently.
    if "authz" in res and not Path(res["authz"]).is_relative_to(tree.resolve()):
        raise PairedError(f"the worker over {tree} imported authz from {res['authz']}")
    return res


def _describe_current() -> str:
    head = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return f"{head} + uncommitted changes" if dirty else head


def run(rev: str, sizes: list[int], samples: int, rounds: int, cache: Path, as_json: bool) -> int:
    """The paired run; prints the table (or JSON) and returns the exit status."""
    try:
        commit = resolve(rev)
        current = _describe_current()
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="authz-baseline-") as tmp:
            base_tree = extract(commit, Path(tmp))
            results = _rounds(base_tree, sizes, samples, rounds, cache)
    except PairedError as e:
        print(f"bench decisions: {e}", file=sys.stderr)
        return 2
    summary = {
        "baseline": {"rev": rev, "commit": commit},
        "current": current,
        "rounds": rounds,
        "samples": samples,
        "sizes": {str(n): _summarise(r) for n, r in results.items()},
    }
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(summary)
    return 0


def _rounds(
    base_tree: Path, sizes: list[int], samples: int, rounds: int, cache: Path
) -> dict[int, dict[str, list[dict[str, Any]]]]:
    sides = {"baseline": (base_tree, False), "current": (ROOT, True)}
    dbs = {
        (side, n): cache / f"paired-{_store_tag(tree)}-{n}.db"
        for side, (tree, _) in sides.items()
        for n in sizes
    }
    # Stores first, so no round pays for a build and a side's first round is not its coldest.
    for (side, n), db in dbs.items():
        _worker(sides[side][0], ["--db", str(db), "--size", str(n), "--build-only"])
    results: dict[int, dict[str, list[dict[str, Any]]]] = {
        n: {"baseline": [], "current": []} for n in sizes
    }
    for i in range(rounds):
        order = ("baseline", "current") if i % 2 == 0 else ("current", "baseline")
        for n in sizes:
            for side in order:
                tree, labels = sides[side]
                args = ["--db", str(dbs[side, n]), "--size", str(n), "--samples", str(samples)]
                results[n][side].append(_worker(tree, args + (["--labels"] if labels else [])))
        print(f"# round {i + 1}/{rounds} done", file=sys.stderr)
    return results


def _summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per side, the median over the rounds; the ratio, the median of the rounds' ratios."""
    base, cur = runs["baseline"], runs["current"]
    ratios = [c["median_us"] / b["median_us"] for b, c in zip(base, cur, strict=True)]
    p99_ratios = [c["p99_us"] / b["p99_us"] for b, c in zip(base, cur, strict=True)]

    def side(rs: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "median_us": statistics.median(r["median_us"] for r in rs),
            "p99_us": statistics.median(r["p99_us"] for r in rs),
            "allowed_share": rs[0]["allowed_share"],
            "labelled": rs[0]["labelled"],
            "round_medians_us": [r["median_us"] for r in rs],
        }

    return {
        "baseline": side(base),
        "current": side(cur),
        "ratio": statistics.median(ratios),
        "p99_ratio": statistics.median(p99_ratios),
        "round_ratios": ratios,
    }


def print_table(summary: dict[str, Any]) -> None:
    """The table: per size a row per side and the ratio row, then the verdict and footnotes."""
    base = summary["baseline"]
    print(
        f"decisions, paired: baseline {base['rev']} ({base['commit'][:7]}) against current "
        f"{summary['current']}; {summary['rounds']} rounds alternating which goes first, "
        f"{summary['samples']:,} requests per worker"
    )
    print(f"{'grants':>9} | {'engine':<30} | {'median µs':>9} | {'p99 µs':>8} | {'allowed':>7}")
    print("-" * 75)
    verdicts = []
    for n, row in summary["sizes"].items():
        size = int(n)
        for side, label in (("baseline", "baseline*"), ("current", "current (labels)*")):
            r = row[side]
            print(
                f"{size:>9,} | {label:<30} | {r['median_us']:>9.2f} | {r['p99_us']:>8.2f} | "
                f"{r['allowed_share']:>7.0%}"
            )
        print(
            f"{size:>9,} | {'current / baseline**':<30} | {row['ratio']:>9.3f} | "
            f"{row['p99_ratio']:>8.3f} |"
        )
        rounds = ", ".join(f"{x:.2f}" for x in row["round_ratios"])
        print(f"{'':>9} | rounds' median ratios: {rounds}")
        verdicts.append((size, row["ratio"]))
    within = all(r <= 1 + TOLERANCE for _, r in verdicts)
    print(
        f"within {TOLERANCE * 100:.0f} %: {'yes' if within else 'no'} (current/baseline median "
        + "; ".join(f"{n:,}: {r:.3f}" for n, r in verdicts)
        + f"; the bar is {1 + TOLERANCE:.2f})"
    )
    any_row = next(iter(summary["sizes"].values()))
    print(
        f"* the same seeded requests on both sides, except that the current code's document "
        f"reads of every second child carry a PSY label ({any_row['current']['labelled']:,} "
        f"of {summary['samples']:,} requests); the baseline's engine has no labels on a "
        "resource, so it gets them unlabelled. Each side: its own store (its migrations, the "
        "same rows), loaded cold, gc frozen; only Engine.check is timed, best of three passes "
        "after a warm-up; median and p99 are the medians over the rounds."
    )
    print("** the median of the rounds' ratios, each round's two workers run back to back.")
