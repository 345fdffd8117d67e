"""Access checks over HTTP beside a bare Flask endpoint on the same server, in one run.

    python -m bench http_checks [--seconds S] [--connections C] [--batch N] [--rounds R]
                                [--skip-unknown]

wrk runs (one thread, C keep-alive connections, S seconds each, R alternating rounds, medians)
against gunicorn with 2 workers and the settings of `authz serve --workers 2`
(`api.wsgi_server.run_gunicorn`): a bare Flask app answering a constant to the same POST, then
`POST /v1/access/check` and `POST /v1/access/check-batch` (N checks a request) of
`authz serve --workers 2` over a temporary SQLite store. Beside the rates (which the machine's
other load moves), the CPU time the workers spent per request, read from /proc. Each check is a
caregiver's delegated token paying the care receiver's invoice with the receiver's card, asked by
a portal backend's token: both tokens are verified and checked for liveness, the facts are made
fresh (one revision read), the decision is logged. A check-batch is a billing page: N/2 distinct
invoices of the care receiver, each read and paid. Then 100,000 denied checks with never-seen
subjects (check-batch, `authz:check:subjects`) and the workers' resident memory before and after.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from bench.common import AUDIENCE, WRK_REPORT, free_port, practice

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "check_vs_bare": 0.85,
    "batch_decisions": 30_000.0,
    "unknown_mb": 20.0,
    "log_overhead": 0.10,
}

WRK_SCRIPT = (
    """
wrk.method = %(method)s
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = %(auth)s
"""
    + WRK_REPORT
)


# -- the fixture ------------------------------------------------------------------------------


def build_store(workdir: Path, issuer: str) -> dict[str, Any]:
    """A store with a portal backend; returns the env and ids the servers and clients need."""
    from authz.policy.grants import CLIENT_SCOPES

    scopes = ["authz:admin", "authz:check", "authz:check:subjects", *CLIENT_SCOPES]
    p = practice(f"sqlite:///{workdir / 'authz.db'}", issuer, scopes, AUTHZ_LOG_LEVEL="WARNING")
    p.close()
    return {
        "env": p.env,
        "client_id": p.client_id,
        "secret": p.client_secret,
        "provider": p.provider_id,
        "email": "dr@bench.test",
    }


class Client:
    """The running service, driven over HTTP (tokens must come from the server's issuer)."""

    def __init__(self, url: str, fixture: dict[str, Any]) -> None:
        self.url, self.fixture = url, fixture
        self.auth = (fixture["client_id"], fixture["secret"])
        self.http = requests.Session()

    def token(self, data: dict[str, str]) -> str:
        r = self.http.post(self.url + "/oauth/token", data=data, auth=self.auth, timeout=30)
        r.raise_for_status()
        return str(r.json()["access_token"])

    def sign_in(self, resource: str, email: str) -> str:
        from api import create_app
        from authz.oauth import identity

        rt = create_app({**self.fixture["env"], "AUTHZ_ISSUER": self.url}).extensions["authz"]
        id_token = identity.mint_dev_id_token(rt.settings, rt.dev_keys, email)
        rt.store.engine.dispose()
        return self.token(
            {
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": id_token,
                "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
                "resource": resource,
                "audience": AUDIENCE,
            }
        )

    def call(self, method: str, path: str, token: str, body: Any = None) -> Any:
        r = self.http.request(
            method,
            self.url + path,
            json=body,
            timeout=60,
            headers={"Authorization": f"Bearer {token}"},
        )
        if r.status_code not in (200, 201):
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r.json()

    def family(self) -> dict[str, str]:
        """A care receiver, a caregiver with active portal access, a card each."""
        admin = self.sign_in(f"provider:{self.fixture['provider']}", self.fixture["email"])
        sam = self.call("POST", "/v1/clients", admin, {"first_name": "Sam", "client_type": "adult"})
        jenna = self.call(
            "POST",
            "/v1/clients",
            admin,
            {"first_name": "Jenna", "client_type": "adult", "email": "jenna@bench.test"},
        )
        link = self.call(
            "POST",
            f"/v1/clients/{sam['id']}/links",
            admin,
            {
                "client_id": jenna["id"],
                "relationship": "parent",
                "portal_access": {"enabled": True, "acknowledgement": "full access intended"},
            },
        )
        caregiver = self.sign_in(f"client:{jenna['id']}", "jenna@bench.test")
        self.call("POST", f"/v1/invites/{link['dev_invite_token']}/accept", caregiver, {})
        self.call(
            "POST",
            f"/v1/clients/{sam['id']}/payment-methods",
            admin,
            {"id": "pm_sam", "label": "Visa"},
        )
        delegated = self.token(
            {
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": caregiver,
                "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "resource": f"client:{sam['id']}",
                "audience": AUDIENCE,
            }
        )
        service = self.token({"grant_type": "client_credentials", "scope": "authz:check"})
        subjects = self.token({"grant_type": "client_credentials", "scope": "authz:check:subjects"})
        return {"sam": sam["id"], "delegated": delegated, "service": service, "subjects": subjects}


def page(item: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """A check-batch as a billing page asks it: n invoices of the care receiver, each read and
    paid (distinct ids; half with a payment method), by one user's token."""
    out = []
    for i in range(n):
        check = {**item, "resource": {**item["resource"], "id": f"inv_{i // 2}"}}
        if i % 2 == 0:
            check["action"] = "invoice.read"
            del check["context"]
        out.append(check)
    return out


# -- servers and wrk ----------------------------------------------------------------------------


def serve_bare(port: int) -> None:
    """A bare Flask app with one constant endpoint, under exactly `authz serve`'s gunicorn."""
    from flask import Flask

    from api import wsgi_server

    bare = Flask("bare")

    @bare.route("/", methods=["GET", "POST"])
    def constant() -> Any:
        return {"ok": True}

    def load(self: Any) -> Flask:
        # As `authz serve`'s workers settle once loaded, so that both run alike.
        gc.collect()
        gc.freeze()
        return bare

    wsgi_server._Gunicorn.load = load  # type: ignore[method-assign] # same options
    wsgi_server.run_gunicorn("127.0.0.1", port, 2)


def serve_unlogged(port: int) -> None:
    """`authz serve --workers 2` with the decision log's sink replaced by a no-op (here only):
    the check path without its log, to measure what the log costs it."""
    from authz.cli import main as cli
    from authz.policy import decision_log

    decision_log.DecisionLog.__call__ = lambda self, decision: None  # type: ignore[method-assign]
    decision_log.DecisionLog.write = lambda self, decisions: None  # type: ignore[method-assign]
    cli(["serve", "--workers", "2", "--port", str(port)], standalone_mode=False)


def _start(cmd: list[str], env: dict[str, str], url: str, probe: str) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            err = server.stderr.read().decode() if server.stderr else ""
            raise RuntimeError(f"server exited: {err[-2000:]}")
        try:
            if requests.get(url + probe, timeout=1).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.05)  # polling a port that is not open yet: there is no event to await
    server.kill()
    raise RuntimeError(f"{cmd} did not answer within 60 s")


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


def wrk(
    url: str,
    seconds: int,
    connections: int,
    method: str = "GET",
    body: str | None = None,
    auth: str = "",
    server: int | None = None,
) -> dict[str, Any]:
    """One warmed-up wrk run; with `server` (a gunicorn master's pid), also the CPU seconds its
    workers spent per request during the run, which the machine's other load does not skew."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            WRK_SCRIPT
            % {
                "method": json.dumps(method),
                "body": json.dumps(body) if body is not None else "nil",
                "auth": json.dumps(auth),
            }
        )
    try:
        # One wrk thread: the two workers need the two cores more than the load generator.
        cmd = ["wrk", "-t1", f"-c{connections}", "--timeout", "10s", "-s", script.name, url]
        subprocess.run([*cmd, "-d2s"], capture_output=True, text=True, check=True)  # warm-up
        cpu = _workers_cpu(server) if server else 0.0
        run = subprocess.run([*cmd, f"-d{seconds}s"], capture_output=True, text=True, check=True)
        cpu = _workers_cpu(server) - cpu if server else 0.0
        # Let the decision log drain before the next run, so that no run pays for another's.
        time.sleep(3)
    finally:
        os.unlink(script.name)
    line = next(x for x in run.stdout.splitlines() if x.startswith("WRK "))
    result: dict[str, Any] = json.loads(line[4:])
    if result["bad"] or result["errors"]:
        raise SystemExit(f"wrk run against {url} had failures: {result}")
    result["rate"] = result["requests"] / result["seconds"]
    result["cpu_us"] = cpu / max(1, result["requests"]) * 1e6
    return result


def _workers(pid: int) -> list[int]:
    return [
        int(c)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for c in (task / "children").read_text().split()
    ]


def _workers_cpu(pid: int) -> float:
    """User + system CPU seconds of a gunicorn master's workers so far."""
    total = 0
    for child in _workers(pid):
        fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _children_rss(pid: int) -> dict[int, float]:
    """Resident MB of each worker of a gunicorn master."""
    out: dict[int, float] = {}
    for child in _workers(pid):
        for line in Path(f"/proc/{child}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out[child] = int(line.split()[1]) / 1024
    return out


def unknown_subjects(
    client: Client,
    fam: dict[str, str],
    server: subprocess.Popen[bytes],
    total: int = 100_000,
    batch: int = 1000,
) -> float:
    """Largest growth of a worker's RSS over `total` denied checks with never-seen subjects."""

    def body(start: int) -> dict[str, Any]:
        return {
            "checks": [
                {
                    "subject": f"client:cli_never_{i}",
                    "action": "client.read",
                    "resource": {"type": "client", "id": f"cli_never_{i}"},
                }
                for i in range(start, start + batch)
            ]
        }

    for k in range(20):  # warm both workers (their first batches allocate their steady state)
        client.call("POST", "/v1/access/check-batch", fam["subjects"], body(10**9 + k * batch))
    before = _children_rss(server.pid)
    for start in range(0, total, batch):
        got = client.call("POST", "/v1/access/check-batch", fam["subjects"], body(start))
        assert not any(r["allowed"] for r in got["results"])
    after = _children_rss(server.pid)
    return max(after[p] - before.get(p, after[p]) for p in after)


def log_writer_cost(env: dict[str, str], n: int = 5000) -> float:
    """Microseconds of the decision log writer per decision (hash chain + insert), in-process."""
    from api import create_app
    from authz.policy.decision_log import DecisionLog
    from authz.policy.engine import CheckRequest, Engine, PolicySet, Resource, Subject
    from authz.policy.facts import FactIndex

    rt = create_app(env).extensions["authz"]
    pending: list[Any] = []
    engine = Engine(PolicySet.load(), FactIndex.load(rt.store), log=pending.append)
    for i in range(n):
        engine.check(
            CheckRequest(
                Subject(f"client:cli_x{i}", "org_x"), "client.read", Resource("client", f"cli_x{i}")
            )
        )
    log = DecisionLog(rt.store, background=False)
    log.pending.extend(pending)
    start = time.perf_counter()
    log.flush()
    cost = (time.perf_counter() - start) / n * 1e6
    rt.store.engine.dispose()
    return cost


# -- the run ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench http_checks", description=__doc__)
    ap.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    ap.add_argument("--connections", type=int, default=8, help="wrk keep-alive connections")
    ap.add_argument("--batch", type=int, default=1000, help="checks per check-batch request")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians)")
    ap.add_argument("--skip-unknown", action="store_true", help="skip the memory run")
    ap.add_argument(
        "--dir",
        help="where the temporary store goes (default: the system's temp dir); check-batch "
        "writes ~25 MB/s of decision log there, so a slow disk caps its rate",
    )
    ap.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--serve-unlogged", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.serve_bare:
        serve_bare(a.serve_bare)
        return 0
    if a.serve_unlogged:
        serve_unlogged(a.serve_unlogged)
        return 0
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (apt-get install -y wrk)")
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="authz-http-bench-", dir=a.dir))
    port, bare_port, unlogged_port = free_port(), free_port(), free_port()
    url, bare_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
    unlogged_url = f"http://127.0.0.1:{unlogged_port}"
    rows: list[tuple[str, ...]] = []
    try:
        fixture = build_store(workdir, url)
        env = {**os.environ, **fixture["env"], "PYTHONPATH": str(ROOT)}
        bare = _start(
            [sys.executable, "-m", "bench.http_checks", "--serve-bare", str(bare_port)],
            env,
            bare_url,
            "/",
        )
        server = _start(
            [sys.executable, "-m", "authz.cli", "serve", "--workers", "2", "--port", str(port)],
            env,
            url,
            "/.well-known/jwks.json",
        )
        unlogged = _start(
            [sys.executable, "-m", "bench.http_checks", "--serve-unlogged", str(unlogged_port)],
            env,
            unlogged_url,
            "/.well-known/jwks.json",
        )
        try:
            client = Client(url, fixture)
            fam = client.family()
            item = {
                "token": fam["delegated"],
                "action": "invoice.pay",
                "resource": {"type": "invoice", "id": "inv_1", "owner": fam["sam"]},
                "context": {"payment_method": "pm_sam"},
            }
            assert client.call("POST", "/v1/access/check", fam["service"], item)["allowed"]
            auth = f"Bearer {fam['service']}"
            one, many = json.dumps(item), json.dumps({"checks": page(item, a.batch)})
            runs: dict[str, list[dict[str, Any]]] = {
                "bare": [],
                "check": [],
                "unlogged": [],
                "batch": [],
            }
            # Rounds alternate the four, so drift in the machine's other load hits each alike.
            for _ in range(a.rounds):
                runs["bare"].append(
                    wrk(bare_url + "/", a.seconds, a.connections, "POST", one, auth, bare.pid)
                )
                runs["check"].append(
                    wrk(
                        url + "/v1/access/check",
                        a.seconds,
                        a.connections,
                        "POST",
                        one,
                        auth,
                        server.pid,
                    )
                )
                runs["unlogged"].append(
                    wrk(
                        unlogged_url + "/v1/access/check",
                        a.seconds,
                        a.connections,
                        "POST",
                        one,
                        auth,
                        unlogged.pid,
                    )
                )
                runs["batch"].append(
                    wrk(
                        url + "/v1/access/check-batch",
                        a.seconds,
                        a.connections,
                        "POST",
                        many,
                        auth,
                        server.pid,
                    )
                )
            base, check, unlogged_check, batch = (
                _median_run(runs[k]) for k in ("bare", "check", "unlogged", "batch")
            )
            unknown = None if a.skip_unknown else unknown_subjects(client, fam, server)
        finally:
            _stop(server)
            _stop(unlogged)
            _stop(bare)
        writer_us = log_writer_cost(fixture["env"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()

    def ms(us: float) -> str:
        return f"{us / 1000:.2f} ms"

    decisions = batch["rate"] * a.batch
    # Ratios are taken within each round (its runs are seconds apart) and their median quoted:
    # the machine's speed drifts between rounds far more than within one.
    ratio = _paired(runs["check"], runs["bare"], "rate")
    cpu_ratio = 1 / _paired(runs["check"], runs["bare"], "cpu_us")

    def per_request(label: str, run: dict[str, Any], decided: str, verdict: str) -> None:
        rows.append(
            (
                label,
                f"{run['rate']:,.0f} req/s",
                decided,
                ms(run["p50_us"]),
                ms(run["p99_us"]),
                f"{run['cpu_us']:.0f} µs",
                verdict,
            )
        )

    per_request("bare Flask constant (POST /, same body)", base, "-", "100 % (baseline)")
    per_request(
        "POST /v1/access/check",
        check,
        f"{check['rate']:,.0f}",
        f"{ratio:.0%} of bare by rate, {cpu_ratio:.0%} by server CPU (target ≥ 85 %)",
    )
    log_cpu = _paired(runs["check"], runs["unlogged"], "cpu_us") - 1
    log_rate = 1 - _paired(runs["check"], runs["unlogged"], "rate")
    per_request(
        "  the same, decision log sink a no-op",
        unlogged_check,
        f"{unlogged_check['rate']:,.0f}",
        f"the log costs a check {log_cpu:+.0%} CPU, {log_rate:+.0%} rate (target ≤ 10 %)",
    )
    rows.append(
        (
            f"POST /v1/access/check-batch x{a.batch}",
            f"{batch['rate']:,.1f} req/s",
            f"{decisions:,.0f}",
            ms(batch["p50_us"]),
            ms(batch["p99_us"]),
            f"{batch['cpu_us'] / a.batch:.0f} µs/decision",
            f"{2e6 / (batch['cpu_us'] / a.batch):,.0f} decisions/s on 2 idle cores "
            "(target ≥ 30,000)",
        )
    )
    _print_table(
        ("measure", "requests", "decisions/s", "p50", "p99", "server CPU/req", "vs target"), rows
    )
    per_check_us = check["cpu_us"]
    print(
        f"decision log writer: {writer_us:.1f} µs a decision in-process = "
        f"{writer_us / per_check_us:.1%} of an HTTP check's server CPU ({per_check_us:.0f} µs), "
        f"and {writer_us * decisions / 2e6:.0%} of the cores at the batch rate"
    )
    if unknown is not None:
        print(
            f"unknown subjects over HTTP: +{unknown:.1f} MB in the larger worker after 100,000 "
            f"denied checks (target < {TARGETS['unknown_mb']:.0f} MB)"
        )
    checks = {
        "check ≥ 85 % of bare": ratio >= TARGETS["check_vs_bare"],
        "check-batch ≥ 30,000 decisions/s": decisions >= TARGETS["batch_decisions"],
        # By CPU: the rates of two servers run apart move with the machine's other load.
        "decision log slows check ≤ 10 %": log_cpu <= TARGETS["log_overhead"],
    }
    if unknown is not None:
        checks["unknown subjects < 20 MB"] = unknown < TARGETS["unknown_mb"]
    print("targets: " + "; ".join(f"{k}: {'holds' if v else 'MISSED'}" for k, v in checks.items()))
    print(
        f"load average (1, 5, 15 min) before {', '.join(f'{x:.2f}' for x in load_before)}; "
        f"after {', '.join(f'{x:.2f}' for x in load_after)}; {os.cpu_count()} cores; "
        f"wrk -t1 -c{a.connections} -d{a.seconds}s; store in {a.dir or tempfile.gettempdir()}"
    )
    return 0


def _paired(runs: list[dict[str, Any]], baseline: list[dict[str, Any]], key: str) -> float:
    """The median over rounds of `runs[i][key] / baseline[i][key]`."""
    return statistics.median(r[key] / b[key] for r, b in zip(runs, baseline, strict=True))


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds."""
    return {
        k: statistics.median(r[k] for r in runs) for k in ("rate", "p50_us", "p99_us", "cpu_us")
    }


def _print_table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in (head, *rows)) for i in range(len(head))]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
