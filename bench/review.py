"""How long the access review takes to build and render (the page a reviewer opens), by size.

`python -m bench review [--clients 200 5000] [--repeat 3]`: a SQLite store of families of four
(two adults sharing an email with two minors, four active grants each; `bench.decisions`
writes it directly), then `authz.compliance.review.build` (the engine's facts loaded, as the command does)
and `authz.compliance.report_html.render` (every family graph laid out by one `dot` run), best of
`--repeat`, with the page's size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.decisions import build_store


def measure(clients: int, repeat: int) -> dict[str, Any]:
    from authz.base.config import Settings
    from authz.compliance import report_html, review
    from authz.store.db import Store

    with tempfile.TemporaryDirectory(prefix="authz-bench-review-") as tmp:
        db = Path(tmp) / "review.db"
        build_store(db, clients)
        settings = Settings(database_url=f"sqlite:///{db}")
        store = Store.from_url(settings.database_url)
        builds, renders = [], []
        try:
            for _ in range(repeat):
                started = time.perf_counter()
                data = review.build(store, settings, "org_b")
                built = time.perf_counter()
                page = report_html.render(data)
                builds.append(built - started)
                renders.append(time.perf_counter() - built)
        finally:
            store.engine.dispose()
    return {
        "clients": len(data["clients"]),
        "families": len(data["families"]),
        "build_s": min(builds),
        "render_s": min(renders),
        "total_s": min(b + r for b, r in zip(builds, renders, strict=True)),
        "page_mb": len(page.encode()) / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench review", description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[200, 5000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print("| clients | families | build (s) | render (s) | total (s) | page (MB) |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in args.clients:
        r = measure(n, args.repeat)
        print(
            f"| {r['clients']} | {r['families']} | {r['build_s']:.2f} | {r['render_s']:.2f} "
            f"| {r['total_s']:.2f} | {r['page_mb']:.1f} |"
        )
    return 0
