"""`python -m bench [NAME] [options]`: run one benchmark, or all of them, printing tables."""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench import (
    catch_up,
    cli,
    decision_log,
    decisions,
    granian_interfaces,
    http_checks,
    load,
    review,
    token_exchange,
)


def _token_exchange(argv: list[str]) -> int:
    token_exchange.main(argv)
    return 0


BENCHES: dict[str, Callable[[list[str]], int]] = {
    "cli": cli.main,
    "decisions": decisions.main,
    "decision_log": decision_log.main,
    "http_checks": http_checks.main,
    "granian_interfaces": granian_interfaces.main,
    "token_exchange": _token_exchange,
    "load": load.main,
    "catch_up": catch_up.main,
    "review": review.main,
}


def main(argv: list[str]) -> int:
    if argv and argv[0] in BENCHES:
        return BENCHES[argv[0]](argv[1:])
    if argv and not argv[0].startswith("-"):
        print(f"unknown benchmark {argv[0]!r}; known: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    return max(bench(argv) for bench in BENCHES.values())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
