"""`python -m bench decisions --baseline REV`: the paired run, at a tiny size, against HEAD."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bench(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bench", "decisions", "--dir", str(tmp), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(autouse=True)
def _checkout() -> None:
    # An unpacked sdist or wheel has no history to take a baseline from.
    if subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True
    ).returncode:
        pytest.skip("not a git checkout")


def test_paired_run_prints_both_sides_and_the_verdict(tmp_path: Path) -> None:
    out = bench(
        tmp_path, "--baseline", "HEAD", "--sizes", "40", "--samples", "300", "--rounds", "2"
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    rows = [line.split("|") for line in lines if line.strip().startswith("40 |")]
    assert [r[1].strip() for r in rows] == [
        "baseline*",
        "current (labels)*",
        "current / baseline**",
    ]
    for r in rows[:2]:
        assert float(r[2]) > 0 and float(r[3]) >= float(r[2])  # median and p99 in µs
    assert any(line.startswith("within 10 %: ") for line in lines)
    assert "gets them unlabelled" in out.stdout
    # Two rounds of two workers, and the stores are each side's own, cached in --dir.
    assert out.stderr.count("round ") == 2
    assert len(list(tmp_path.glob("paired-*-40.db"))) in (1, 2)


def test_an_unknown_baseline_is_one_clear_line(tmp_path: Path) -> None:
    out = bench(tmp_path, "--baseline", "no-such-rev-17", "--sizes", "40")
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.strip() == (
        f"bench decisions: --baseline no-such-rev-17: no such commit in {ROOT}"
    )


def test_the_cold_start_is_judged_on_alternating_pairs(tmp_path: Path) -> None:
    """The whole run at a tiny size: our cold start and pycasbin's load of the same grants are
    timed in alternating pairs (each a process of its own) and the verdict is on their median."""
    out = bench(
        tmp_path, "--sizes", "40", "--samples", "50", "--rounds", "1", "--load-rounds", "3"
    )
    assert out.returncode == 0, out.stderr
    pairs = next(line for line in out.stdout.splitlines() if "alternating pairs" in line)
    assert pairs.startswith("start-up at 40 grants, 3 alternating pairs: ours ")
    assert pairs.count(",") >= 4 and "median ratio" in pairs  # three ratios listed
    assert "cold start ≤ pycasbin's load (paired): " in out.stdout
