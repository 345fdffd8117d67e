"""Which of granian's interfaces the check path should sit on: WSGI, RSGI or RSGI with Rust
tasks, and which runtime mode, in one run.

    python -m bench granian_interfaces [--seconds S] [--connections C] [--rounds R]

Issue 18 asked whether granian's RSGI (or ASGI) interface would make a cheaper split for
`POST /v1/access/check` than the WSGI layer in front of Flask (`api.check_path`). Each server
here runs the same minimal handler, the part of the check path that is the interface's: read a
JSON body of a stated length, parse it, answer a constant JSON object. They run under
`authz serve --workers 2`'s settings (2 workers, 1 blocking thread, HTTP/1.1) and differ only in
the interface (or runtime mode); bare Flask on WSGI is the ceiling `bench http_checks` uses.
wrk: one thread, C keep-alive connections, S seconds, R rounds that alternate every server;
medians, and the ratio to the WSGI callable taken within each round.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from bench.common import free_port
from bench.http_checks import ROOT, _print_table, _start, _stop, wrk

BODY = json.dumps(
    {
        "token": "x" * 600,
        "action": "invoice.pay",
        "resource": {"type": "invoice", "id": "inv_1", "owner": "cli_1"},
        "context": {"payment_method": "pm_1"},
    }
)
ANSWER = b'{"allowed":true}\n'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(ANSWER)))]


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The WSGI callable: what `api.check_path` does before and after the decision."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        orjson.loads(environ["wsgi.input"].read(length))
    start_response("200 OK", HEADERS)
    return [ANSWER]


class RsgiApp:
    """The same handler on granian's RSGI interface (an asyncio coroutine a request)."""

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.method == "POST":
            orjson.loads(await proto())
        proto.response_bytes(200, HEADERS[:1], ANSWER)


rsgi_app = RsgiApp()


def flask_app() -> Any:
    """Bare Flask, the ceiling of `bench http_checks` (a factory: granian calls it)."""
    from bench.http_checks import _bare

    return _bare()


#: name: (what the server runs, granian options beyond `authz serve`'s)
SERVERS: dict[str, tuple[str, list[str]]] = {
    "wsgi": ("bench.granian_interfaces:wsgi_app", ["--interface", "wsgi"]),
    "wsgi_st": ("bench.granian_interfaces:wsgi_app", ["--interface", "wsgi", "--runtime-mode=st"]),
    "wsgi_mt": ("bench.granian_interfaces:wsgi_app", ["--interface", "wsgi", "--runtime-mode=mt"]),
    "rsgi": ("bench.granian_interfaces:rsgi_app", ["--interface", "rsgi"]),
    "rsgi_rust": (
        "bench.granian_interfaces:rsgi_app",
        ["--interface", "rsgi", "--task-impl", "rust"],
    ),
    "flask": ("bench.granian_interfaces:flask_app", ["--interface", "wsgi", "--factory"]),
}
LABELS = {
    "wsgi": "WSGI callable (authz serve: api.check_path)",
    "wsgi_st": "  the same, --runtime-mode st",
    "wsgi_mt": "  the same, --runtime-mode mt",
    "rsgi": "RSGI, asyncio tasks",
    "rsgi_rust": "RSGI, Rust tasks (--task-impl rust)",
    "flask": "bare Flask on WSGI (http_checks' ceiling)",
}


def command(name: str, port: int) -> list[str]:
    """The granian command line of server `name`: `authz serve --workers 2`'s settings."""
    target, options = SERVERS[name]
    cmd = [sys.executable, "-m", "granian", *options, "--workers", "2"]
    cmd += ["--blocking-threads", "1", "--http", "1", "--no-ws", "--log-level", "warning"]
    return [*cmd, "--port", str(port), target]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench granian_interfaces", description=__doc__)
    ap.add_argument("--seconds", type=int, default=8, help="length of each wrk run")
    ap.add_argument("--connections", type=int, default=16, help="wrk keep-alive connections")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians)")
    a = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (apt-get install -y wrk)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ports = {name: free_port() for name in SERVERS}
    servers = {}
    try:
        for name in SERVERS:
            servers[name] = _start(
                command(name, ports[name]), env, f"http://127.0.0.1:{ports[name]}", "/"
            )
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SERVERS}
        for _ in range(a.rounds):
            for name, server in servers.items():
                url = f"http://127.0.0.1:{ports[name]}/"
                runs[name].append(
                    wrk(url, a.seconds, a.connections, "POST", BODY, "", server.pid, drain=0)
                )
    finally:
        for server in servers.values():
            _stop(server)
    rows = []
    for name, label in LABELS.items():
        got = runs[name]
        pairs = zip(got, runs["wsgi"], strict=True)
        ratio = statistics.median(r["rate"] / w["rate"] for r, w in pairs)
        rows.append(
            (
                label,
                f"{statistics.median(r['rate'] for r in got):,.0f} req/s",
                f"{statistics.median(r['p50_us'] for r in got) / 1000:.2f} ms",
                f"{statistics.median(r['p99_us'] for r in got) / 1000:.2f} ms",
                f"{statistics.median(r['cpu_us'] for r in got):.0f} µs",
                f"{ratio:.2f}x",
            )
        )
    _print_table(("server", "rate", "p50", "p99", "server CPU/req", "vs WSGI callable"), rows)
    print(
        f"medians of {a.rounds} paired rounds; wrk -t1 -c{a.connections} -d{a.seconds}s; "
        f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} cores"
    )
    return 0
