"""Load over HTTP with wrk: two replicas on PostgreSQL, one on SQLite, beside bare Flask.

    python -m bench load [--seconds S] [--connections C] [--workers N] [--repeat R]
                         [--postgres URL] [--skip-postgres] [--lag-writes N]

Each setup runs `authz serve --workers N` (gunicorn) on loopback; wrk drives, for S seconds per
run, `POST /v1/access/check` (a caregiver's token on the care receiver's invoice, the default
consistency: one revision read per check) and `POST /oauth/token` (RFC 8693 switch account).
Against two replicas, one wrk per replica runs at once and the rates add up. The replica lag is
the time from a write returning on one replica to the other's `/readyz` showing its facts at
that revision, measured while checks load both (its row gives the lag's p50 and p99, and as
errors the writes not seen within 10 s). The ceiling is a bare Flask app answering a
constant under gunicorn with 2 sync workers, measured in the same run: what the machine gives
a Python WSGI stack before any work. Figures are medians over `--repeat` runs.

PostgreSQL comes from `--postgres`, `AUTHZ_BENCH_POSTGRES_URL` or `AUTHZ_TEST_POSTGRES_URL`
(a server URL; the bench creates its own database and drops it).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bench.common import (
    AUDIENCE,
    TOKEN_EXCHANGE,
    WRK_REPORT,
    free_port,
    postgres_database,
    practice,
)

ROOT = Path(__file__).resolve().parent.parent
ISSUER = "http://authz.bench"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"

WRK_SCRIPT = (
    """
wrk.method = "POST"
wrk.path = %(path)s
wrk.body = %(body)s
wrk.headers["Content-Type"] = %(content_type)s
wrk.headers["Authorization"] = %(auth)s
"""
    + WRK_REPORT
)


def ceiling_app() -> Any:
    """The baseline: Flask answering a constant (gunicorn calls this factory)."""
    from flask import Flask, jsonify

    app = Flask("ceiling")

    @app.post("/")
    def constant() -> Any:
        return jsonify({"allowed": True})

    return app


# -- fixture ---------------------------------------------------------------------------------


@dataclass
class Fixture:
    """An organization, a portal backend, and a caregiver with active portal access."""

    env: dict[str, str]
    client_id: str
    client_secret: str
    admin_token: str
    service_token: str
    caregiver_token: str
    receiver: str

    def basic(self) -> str:
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def check_body(self) -> str:
        return json.dumps(
            {
                "token": self.caregiver_token,
                "action": "invoice.read",
                "resource": {"type": "invoice", "id": "inv_1", "owner": self.receiver},
            }
        )

    def exchange_body(self) -> str:
        return urllib.parse.urlencode(
            {
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": self.caregiver_token,
                "subject_token_type": ACCESS,
                "resource": f"client:{self.receiver}",
                "audience": AUDIENCE,
            }
        )


def build_fixture(database_url: str) -> Fixture:
    """Migrate the store and set it up through the app, as a portal would."""
    from authz.policy.grants import CLIENT_SCOPES

    p = practice(
        database_url,
        ISSUER,
        ["authz:admin", "authz:check", *CLIENT_SCOPES],
        AUTHZ_LOG_LEVEL="WARNING",
    )
    admin_token, caregiver_token, receiver = p.active_grant()
    service_token = p.token({"grant_type": "client_credentials", "scope": "authz:check"})
    p.close()
    return Fixture(
        p.env, p.client_id, p.client_secret, admin_token, service_token, caregiver_token, receiver
    )


# -- processes -------------------------------------------------------------------------------


@contextmanager
def _process(args: list[str], env: dict[str, str], ready_path: str) -> Iterator[str]:
    """A server on a free port (`{port}` in args), yielding its URL once `ready_path` answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [a.replace("{port}", str(port)) for a in args],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"{args[2:4]} exited: {err[-2000:]}")
            try:
                method = requests.post if ready_path == "/" else requests.get
                if method(url + ready_path, timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} was not ready within 60 s")
            time.sleep(0.05)  # a port that is not open yet has no event to wait on
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve(fixture: Fixture, workers: int, metrics_dir: str) -> Any:
    return _process(
        [sys.executable, "-m", "authz.cli", "serve", "--workers", str(workers), "--port", "{port}"],
        {**fixture.env, "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(dir=metrics_dir)},
        "/readyz",
    )


def ceiling() -> Any:
    return _process(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            "2",
            "-k",
            "sync",
            "-b",
            "127.0.0.1:{port}",
            "--log-level",
            "warning",
            "bench.load:ceiling_app()",
        ],
        {},
        "/",
    )


# -- measurements ----------------------------------------------------------------------------


@dataclass
class Run:
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int


def _script(path: str, body: str, content_type: str, auth: str) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        # A JSON string literal is a valid Lua string literal for these values.
        script.write(
            WRK_SCRIPT
            % {
                "path": json.dumps(path),
                "body": json.dumps(body),
                "content_type": json.dumps(content_type),
                "auth": json.dumps(auth),
            }
        )
    return script.name


def wrk(urls: list[str], script: str, seconds: float, connections: int) -> Run:
    """One wrk per URL at once (connections shared out); rates add up, the worst p99 counts."""
    per = max(1, connections // len(urls))
    procs = [
        subprocess.Popen(
            ["wrk", "-t1", f"-c{per}", f"-d{max(1, round(seconds))}s", "-s", script, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for url in urls
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=seconds + 60)
        line = next((x for x in out.splitlines() if x.startswith("WRK ")), None)
        if line is None:
            raise RuntimeError(f"wrk failed: {err[-500:]}")
        results.append(json.loads(line[4:]))
    return Run(
        rate=sum(r["requests"] / r["seconds"] for r in results),
        p50_ms=statistics.mean(r["p50_us"] for r in results) / 1000,
        p99_ms=max(r["p99_us"] for r in results) / 1000,
        errors=sum(r["bad"] + r["errors"] for r in results),
    )


def median_run(runs: list[Run]) -> Run:
    return Run(
        statistics.median(r.rate for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        sum(r.errors for r in runs),
    )


def replica_lag(
    fixture: Fixture, urls: list[str], writes: int, stop: threading.Event
) -> list[float]:
    """Seconds from a write returning on one replica to the other's facts reaching it."""
    http = requests.Session()
    admin = {"Authorization": f"Bearer {fixture.admin_token}"}
    lags: list[float] = []
    for n in range(writes):
        if stop.is_set():
            break
        writer, reader = urls[n % 2], urls[(n + 1) % 2]
        r = http.patch(
            f"{writer}/v1/clients/{fixture.receiver}",
            json={"last_name": f"Lag{n}"},
            headers=admin,
            timeout=10,
        )
        r.raise_for_status()
        returned, revision = time.monotonic(), int(r.json()["revision"])
        deadline = returned + 10
        while time.monotonic() < deadline:
            ready = http.get(reader + "/readyz", timeout=10).json()
            if int(ready.get("facts_revision", 0)) >= revision:
                lags.append(time.monotonic() - returned)
                break
            time.sleep(0.002)  # polling another process's state: nothing here to wait on
        else:
            lags.append(float("inf"))
        time.sleep(0.05)
    return lags


def measure_setup(
    name: str, fixture: Fixture, urls: list[str], args: argparse.Namespace
) -> list[tuple[str, Run]]:
    """Checks/s (with the lag probe running on two replicas), then token exchanges/s."""
    check = _script(
        "/v1/access/check",
        fixture.check_body(),
        "application/json",
        f"Bearer {fixture.service_token}",
    )
    exchange = _script(
        "/oauth/token",
        fixture.exchange_body(),
        "application/x-www-form-urlencoded",
        fixture.basic(),
    )
    try:
        wrk(urls, check, 1, args.connections)  # warm-up: facts loaded, connections pooled
        lags: list[float] = []
        checks = []
        for _ in range(args.repeat):
            stop = threading.Event()
            probe = None
            if len(urls) > 1:
                probe = threading.Thread(
                    target=lambda stop=stop: lags.extend(
                        replica_lag(fixture, urls, args.lag_writes, stop)
                    )
                )
                probe.start()
            checks.append(wrk(urls, check, args.seconds, args.connections))
            stop.set()
            if probe is not None:
                probe.join()
        exchanges = [
            wrk(urls, exchange, args.seconds, args.connections) for _ in range(args.repeat)
        ]
    finally:
        os.unlink(check)
        os.unlink(exchange)
    rows: list[tuple[str, Run]] = [
        (f"{name}: checks", median_run(checks)),
        (f"{name}: token exchanges", median_run(exchanges)),
    ]
    if lags:
        ordered = sorted(lags)
        lost = sum(1 for lag in ordered if lag == float("inf"))
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        rows.append(
            (
                f"{name}: replica lag after a write ({len(ordered)} writes, under check load)",
                Run(0, statistics.median(ordered) * 1000, p99 * 1000, lost),
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=int, default=3, help="wrk duration per run")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections in all")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per replica")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row (median)")
    parser.add_argument("--lag-writes", type=int, default=20, help="writes probed for lag")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("AUTHZ_BENCH_POSTGRES_URL")
        or os.environ.get("AUTHZ_TEST_POSTGRES_URL"),
        help="PostgreSQL server URL (a database is created and dropped)",
    )
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("load: wrk is not installed (apt-get install -y wrk); nothing measured")
        return 0
    notes: list[str] = []
    rows: list[tuple[str, Run]] = []
    with tempfile.TemporaryDirectory(prefix="authz-load-") as work:
        with ceiling() as url:
            script = _script("/", "{}", "application/json", "Bearer x")
            wrk([url], script, 1, args.connections)
            base = median_run(
                [wrk([url], script, args.seconds, args.connections) for _ in range(args.repeat)]
            )
            os.unlink(script)
        rows.append(("ceiling: bare Flask constant (gunicorn, 2 sync workers)", base))

        if args.postgres and not args.skip_postgres:
            with postgres_database(args.postgres) as url:
                fixture = build_fixture(url)
                with (
                    serve(fixture, args.workers, work) as a,
                    serve(fixture, args.workers, work) as b,
                ):
                    rows += measure_setup(
                        f"PostgreSQL, 2 replicas x {args.workers} workers", fixture, [a, b], args
                    )
        else:
            notes.append("PostgreSQL rows skipped: no --postgres / AUTHZ_TEST_POSTGRES_URL")

        fixture = build_fixture(f"sqlite:///{Path(work) / 'authz.db'}")
        with serve(fixture, args.workers, work) as url:
            rows += measure_setup(
                f"SQLite, 1 replica x {args.workers} workers", fixture, [url], args
            )

    print(
        f"load: wrk on loopback, {args.seconds:g} s per run, {args.connections} connections, "
        f"median of {args.repeat} run(s); {os.cpu_count()} CPUs"
    )
    head = ("measure", "rate /s", "p50 ms", "p99 ms", "errors", "vs ceiling")
    table = [
        (
            name,
            f"{r.rate:,.0f}" if r.rate else "-",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            str(r.errors),
            f"{r.rate / base.rate:.0%}" if r.rate else "",
        )
        for name, r in rows
    ]
    widths = [max(len(row[i]) for row in [head, *table]) for i in range(len(head))]
    for row in [head, tuple("-" * w for w in widths), *table]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    for note in notes:
        print("note:", note)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
