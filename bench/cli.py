"""`python -m bench cli`: the CPU time of `authz --help` and `authz <cmd> --help`, beside
`python -c pass` from the same run (the interpreter's own start-up)."""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 0.3  # seconds of CPU for any `--help` (issue 13)
ROWS = (
    ("python -c pass", ["-c", "pass"]),
    ("authz --help", ["-m", "authz.cli", "--help"]),
    ("authz policy check --help", ["-m", "authz.cli", "policy", "check", "--help"]),
    ("authz serve --help", ["-m", "authz.cli", "serve", "--help"]),
)


def cpu_seconds(args: list[str]) -> float:
    """User + system CPU of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cli")
    parser.add_argument("--repeat", type=int, default=7)
    repeat = parser.parse_args(argv).repeat
    print(f"CPU seconds per run, median of {repeat} (interleaved), budget {BUDGET} s for --help")
    samples: dict[str, list[float]] = {name: [] for name, _ in ROWS}
    for _ in range(repeat):
        for name, args in ROWS:
            samples[name].append(cpu_seconds(args))
    print(f"{'command':<28}{'median':>9}{'min':>9}{'max':>9}")
    worst = 0.0
    for name, values in samples.items():
        median = statistics.median(values)
        if name != "python -c pass":
            worst = max(worst, median)
        print(f"{name:<28}{median:>9.3f}{min(values):>9.3f}{max(values):>9.3f}")
    print(f"within budget: {'yes' if worst <= BUDGET else 'NO'}")
    return 0 if worst <= BUDGET else 1
