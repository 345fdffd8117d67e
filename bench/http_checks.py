"""Access checks and token exchanges over HTTP beside a bare Flask endpoint, on granian (what
`authz serve --workers 2` runs on) and on gunicorn (what it ran on before), in one run.

    python -m bench http_checks [--seconds S] [--connections C] [--batch N] [--rounds R]
                                [--skip-unknown]

wrk runs (one thread, C keep-alive connections, S seconds each, R rounds that alternate every
measure, medians; ratios are the median of the per-round ratios) against seven servers with 2
workers each over one temporary SQLite store: a bare Flask app answering a constant to the same
POST under granian with `authz serve`'s settings (the ceiling) and under the gunicorn settings
`authz serve` had before (`bench.gunicorn_baseline`); `authz serve --workers 2` as it was on
gunicorn and as it is; the latter twice more with its decision log turned on and off in turn
(what the log costs: each server against itself, since servers of the same code differ by more
than the bar) and once with its decision spool off (what the spool costs: the log as it was
before it).
Measured: `POST /v1/access/check`, `POST /v1/access/check-batch` (N checks a request), and
`POST /oauth/token` for a sign-in (an ID token exchanged) and a switch of account (a
caregiver's token exchanged for the care receiver's). Beside the rates (which the machine's
other load moves), p50/p99 and the CPU time the workers spent per request, read from /proc. Each
check is a caregiver's delegated token paying the care receiver's invoice with the receiver's
card, asked by a portal backend's token: both tokens are verified and checked for liveness, the
facts are made fresh (one revision read), the decision is logged. A check-batch is a billing
page: N/2 distinct invoices of the care receiver, each read and paid. Then 100,000 denied checks
with never-seen subjects (check-batch, `authz:check:subjects`) and the workers' resident memory
before and after.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import gc
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from bench.common import AUDIENCE, BENCH_BIRTH_DATE, WRK_REPORT, free_port, practice

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {
    "check_vs_before": 2.5,
    "check_vs_bare": 0.90,
    "check_p99_us": 10_000.0,
    "batch_decisions": 60_000.0,
    "switch_rate": 1_000.0,
    "unknown_mb": 20.0,
    "log_overhead": 0.10,
}

WRK_SCRIPT = (
    """
wrk.method = %(method)s
wrk.body = %(body)s
wrk.headers["Content-Type"] = %(content_type)s
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

    def id_token(self, email: str) -> str:
        """An ID token from the development issuer (the store's key), as a portal holds one."""
        from api import create_app
        from authz.oauth import identity

        rt = create_app({**self.fixture["env"], "AUTHZ_ISSUER": self.url}).extensions["authz"]
        id_token = identity.mint_dev_id_token(rt.settings, rt.dev_keys, email)
        rt.store.engine.dispose()
        return id_token

    def sign_in_form(self, resource: str, email: str) -> dict[str, str]:
        """The token request of a sign-in: an ID token exchanged for an access token."""
        return {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": self.id_token(email),
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "resource": resource,
            "audience": AUDIENCE,
        }

    def sign_in(self, resource: str, email: str) -> str:
        return self.token(self.sign_in_form(resource, email))

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
        sam = self.call(
            "POST",
            "/v1/clients",
            admin,
            {"first_name": "Sam", "client_type": "adult", "birth_date": BENCH_BIRTH_DATE},
        )
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
        invite = link["dev_invite_token"]
        self.call(
            "POST", f"/v1/invites/{invite}/proof", caregiver, {"birth_date": BENCH_BIRTH_DATE}
        )
        self.call("POST", f"/v1/invites/{invite}/accept", caregiver, {})
        self.call(
            "POST",
            f"/v1/clients/{sam['id']}/payment-methods",
            admin,
            {"id": "pm_sam", "label": "Visa"},
        )
        switch = {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": caregiver,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "resource": f"client:{sam['id']}",
            "audience": AUDIENCE,
        }
        delegated = self.token(switch)
        service = self.token({"grant_type": "client_credentials", "scope": "authz:check"})
        subjects = self.token({"grant_type": "client_credentials", "scope": "authz:check:subjects"})
        sign_in = self.sign_in_form(f"client:{jenna['id']}", "jenna@bench.test")
        return {
            "sam": sam["id"],
            "delegated": delegated,
            "service": service,
            "subjects": subjects,
            "sign_in": urlencode(sign_in),
            "switch": urlencode(switch),
        }


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


def _bare() -> Any:
    """A bare Flask app with one constant endpoint, settled as `authz serve`'s workers are."""
    from flask import Flask

    bare = Flask("bare")

    @bare.route("/", methods=["GET", "POST"])
    def constant() -> Any:
        return {"ok": True}

    gc.collect()
    gc.freeze()
    return bare


def serve_bare(port: int) -> None:
    """The bare app under exactly `authz serve --workers 2`'s granian (the ceiling)."""
    from api import wsgi_server

    wsgi_server.serve_workers("127.0.0.1", port, 2, loader=lambda _target: _bare())


def serve_bare_gunicorn(port: int) -> None:
    """The bare app under the gunicorn `authz serve --workers 2` ran on before granian."""
    from bench import gunicorn_baseline

    gunicorn_baseline.run("127.0.0.1", port, 2, load=_bare)


def serve_gunicorn(port: int) -> None:
    """Today's (before granian) `authz serve --workers 2`, on gunicorn."""
    from bench import gunicorn_baseline

    gunicorn_baseline.serve_authz(port)


#: Where each worker of a `serve_toggled` server writes whether its log is on ("on"/"off").
TOGGLE_DIR = "AUTHZ_BENCH_TOGGLE_DIR"


def serve_toggled(port: int) -> None:
    """`authz serve --workers 2` whose workers turn their decision log's sink into a no-op on
    SIGUSR1 and back on SIGUSR2 (here only), each then writing "off" or "on" to its file in
    $AUTHZ_BENCH_TOGGLE_DIR: what the log costs a check, measured on one server with it on and
    off in turn. (Two servers of the same code differ by more than the 10 % bar: 4 % and 21 %
    above a third in one run.) Each log's writer thread adds its thread id to `<pid>.writer`
    there, so that its CPU can be told apart from the rest of the worker's (`writers_cpu`)."""
    from authz.cli import main as cli
    from authz.policy import decision_log

    log = decision_log.DecisionLog
    real: tuple[Any, Any] = (log.__call__, log.write)
    where = Path(os.environ[TOGGLE_DIR])
    run = log._run

    def run_and_say(self: Any) -> None:
        with open(where / f"{os.getpid()}.writer", "a") as said:
            said.write(f"{threading.get_native_id()}\n")
        run(self)

    setattr(log, "_run", run_and_say)  # noqa: B010 (mypy forbids assigning a method)

    def switch(on: bool) -> Any:
        def handler(_signum: int, _frame: Any) -> None:
            # The class's own functions when on: the measured code is `authz serve`'s, unwrapped.
            call, write = real if on else (_nothing, _nothing)
            setattr(log, "__call__", call)  # noqa: B010 (as above)
            setattr(log, "write", write)  # noqa: B010
            (where / str(os.getpid())).write_text("on" if on else "off")

        return handler

    signal.signal(signal.SIGUSR1, switch(False))
    signal.signal(signal.SIGUSR2, switch(True))
    cli(["serve", "--workers", "2", "--port", str(port)], standalone_mode=False)


def _nothing(_self: Any, _decisions: Any) -> None:
    """The log's sink turned off: a decision (`__call__`) or a batch (`write`) goes nowhere."""


def writers_cpu(where: Path) -> float:
    """CPU seconds so far of the decision log writer threads that a `serve_toggled` server's
    workers listed in `where` (threads that ended count no more)."""
    total = 0
    for said in where.glob("*.writer"):
        pid = said.name.split(".")[0]
        for tid in said.read_text().split():
            try:
                # The scheduler's nanoseconds on a CPU: a writer's few milliseconds a second
                # would be a clock tick or none in `stat`.
                total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
            except OSError:
                continue
    return total / 1e9


def set_log(server: subprocess.Popen[bytes], on: bool, where: Path, timeout: float = 10) -> None:
    """Turn a `serve_toggled` server's log on or off in every worker and wait until each says
    so (a worker runs the handler when its main thread next runs Python)."""
    workers = _workers(server.pid)
    for pid in workers:
        os.kill(pid, signal.SIGUSR2 if on else signal.SIGUSR1)
    want = "on" if on else "off"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        said = [where / str(pid) for pid in workers]
        if all(f.exists() and f.read_text() == want for f in said):
            return
        time.sleep(0.02)  # a handler's file appearing has no event to await
    raise RuntimeError(f"the workers {workers} did not turn their decision log {want}")


def _start(cmd: list[str], env: dict[str, str], url: str, probe: str) -> subprocess.Popen[bytes]:
    # A session (process group) of its own: `_stop` ends the master and every worker with it.
    server = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
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


def _stop(server: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """A graceful stop of the master (SIGTERM), then SIGKILL to whatever of its process group
    is left, and a wait until none of it runs: a master killed after its grace time must not
    leave workers behind, holding a core and a port (seen once in a loaded test run)."""
    server.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()
    # SIGKILL is delivered at once, but a worker with a dozen threads takes a moment to tear
    # down (a loaded suite run saw one still running right after): wait on each one's exit.
    deadline = time.monotonic() + 10
    for pid in live_in_group(server.pid):
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        finally:
            os.close(fd)


def live_in_group(pgid: int) -> list[int]:
    """Processes of process group `pgid` that still run (zombies waiting to be reaped do not)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            live.append(int(stat.parent.name))
    return live


def wrk(
    url: str,
    seconds: int,
    connections: int,
    method: str = "GET",
    body: str | None = None,
    auth: str = "",
    server: int | None = None,
    content_type: str = "application/json",
    drain: float = 3.0,
    part: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """One warmed-up wrk run; with `server` (a server's master pid), also the CPU seconds its
    workers spent per request during the run, which the machine's other load does not skew, and
    with `part` (CPU seconds so far of some of their threads) that part of it as `part_us`.
    Then `drain` seconds of rest for the server's decision log."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            WRK_SCRIPT
            % {
                "method": json.dumps(method),
                "body": json.dumps(body) if body is not None else "nil",
                "auth": json.dumps(auth),
                "content_type": json.dumps(content_type),
            }
        )
    try:
        # One wrk thread: the two workers need the two cores more than the load generator.
        cmd = ["wrk", "-t1", f"-c{connections}", "--timeout", "10s", "-s", script.name, url]
        subprocess.run([*cmd, "-d2s"], capture_output=True, text=True, check=True)  # warm-up
        cpu = _workers_cpu(server) if server else 0.0
        some = part() if part else 0.0
        run = subprocess.run([*cmd, f"-d{seconds}s"], capture_output=True, text=True, check=True)
        cpu = _workers_cpu(server) - cpu if server else 0.0
        some = part() - some if part else 0.0
        # Let the decision log drain before the next run, so that no run pays for another's.
        time.sleep(drain)
    finally:
        os.unlink(script.name)
    line = next(x for x in run.stdout.splitlines() if x.startswith("WRK "))
    result: dict[str, Any] = json.loads(line[4:])
    if result["bad"] or result["errors"]:
        raise SystemExit(f"wrk run against {url} had failures: {result}")
    result["rate"] = result["requests"] / result["seconds"]
    result["cpu_us"] = cpu / max(1, result["requests"]) * 1e6
    result["part_us"] = some / max(1, result["requests"]) * 1e6
    return result


def _workers(pid: int) -> list[int]:
    return [
        int(c)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for c in (task / "children").read_text().split()
    ]


def _workers_cpu(pid: int) -> float:
    """User + system CPU seconds of a master's workers (its child processes) so far."""
    total = 0
    for child in _workers(pid):
        fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _children_rss(pid: int) -> dict[int, float]:
    """Resident MB of each worker (child process) of a master."""
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
    for decision in pending:
        log(decision)  # queued as the service queues it (its canonical text)
    start = time.perf_counter()
    log.flush()
    cost = (time.perf_counter() - start) / n * 1e6
    rt.store.engine.dispose()
    return cost


# -- the run ------------------------------------------------------------------------------------


SERVERS = {
    # name: (how it is started, the path that answers once it is up)
    "bare_gunicorn": (["-m", "bench.http_checks", "--serve", "bare_gunicorn"], "/"),
    "bare": (["-m", "bench.http_checks", "--serve", "bare"], "/"),
    "gunicorn": (["-m", "bench.http_checks", "--serve", "gunicorn"], "/.well-known/jwks.json"),
    "granian": (["-m", "authz.cli", "serve", "--workers", "2"], "/.well-known/jwks.json"),
    # What the log costs: two servers (`serve_toggled`), each measured with its log on and off
    # in turn. Two servers of the same code measured 4 % and 21 % above a third in one run
    # (2026-12-04): comparing servers cannot judge a 10 % bar, comparing a server with itself
    # can; each round pools the two servers' runs of each side.
    "toggled": (["-m", "bench.http_checks", "--serve", "toggled"], "/.well-known/jwks.json"),
    "toggled_b": (["-m", "bench.http_checks", "--serve", "toggled"], "/.well-known/jwks.json"),
    "unspooled": (["-m", "authz.cli", "serve", "--workers", "2"], "/.well-known/jwks.json"),
}
#: Settings of one server only: the decision log without its spool is the log before issue 12.
SERVER_ENV = {"unspooled": {"AUTHZ_DECISION_SPOOL_DIR": "off"}}
SERVE = {
    "bare": serve_bare,
    "bare_gunicorn": serve_bare_gunicorn,
    "gunicorn": serve_gunicorn,
    "toggled": serve_toggled,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench http_checks", description=__doc__)
    ap.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    ap.add_argument("--connections", type=int, default=16, help="wrk keep-alive connections")
    ap.add_argument("--batch", type=int, default=1000, help="checks per check-batch request")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians)")
    ap.add_argument("--skip-unknown", action="store_true", help="skip the memory run")
    ap.add_argument(
        "--dir",
        help="where the temporary store goes (default: the system's temp dir); check-batch "
        "writes ~25 MB/s of decision log there, so a slow disk caps its rate",
    )
    ap.add_argument("--serve", choices=sorted(SERVE), help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.serve:
        SERVE[a.serve](a.port)
        return 0
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (apt-get install -y wrk)")
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="authz-http-bench-", dir=a.dir))
    ports = {name: free_port() for name in SERVERS}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    url = urls["granian"]
    rows: list[tuple[str, ...]] = []
    servers: dict[str, subprocess.Popen[bytes]] = {}
    try:
        fixture = build_store(workdir, url)
        env = {**os.environ, **fixture["env"], "PYTHONPATH": str(ROOT)}
        try:
            toggles = {name: workdir / f"log-{name}" for name in ("toggled", "toggled_b")}
            for name, (args, probe) in SERVERS.items():
                extra = {TOGGLE_DIR: str(toggles[name])} if name in toggles else {}
                if name in toggles:
                    toggles[name].mkdir()
                servers[name] = _start(
                    [sys.executable, *args, "--port", str(ports[name])],
                    {**env, **SERVER_ENV.get(name, {}), **extra},
                    urls[name],
                    probe,
                )
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
            basic = (
                "Basic "
                + base64.b64encode(f"{fixture['client_id']}:{fixture['secret']}".encode()).decode()
            )
            one, many = json.dumps(item), json.dumps({"checks": page(item, a.batch)})
            form = "application/x-www-form-urlencoded"
            plan: dict[str, tuple[str, str, str, str, str]] = {
                # name: (server, path, body, authorization, content type)
                "bare_gunicorn": ("bare_gunicorn", "/", one, auth, "application/json"),
                "bare": ("bare", "/", one, auth, "application/json"),
                "check_gunicorn": ("gunicorn", "/v1/access/check", one, auth, "application/json"),
                "check": ("granian", "/v1/access/check", one, auth, "application/json"),
                "logged": ("toggled", "/v1/access/check", one, auth, "application/json"),
                "unlogged": ("toggled", "/v1/access/check", one, auth, "application/json"),
                "logged_b": ("toggled_b", "/v1/access/check", one, auth, "application/json"),
                "unlogged_b": ("toggled_b", "/v1/access/check", one, auth, "application/json"),
                "unspooled": ("unspooled", "/v1/access/check", one, auth, "application/json"),
                "batch": ("granian", "/v1/access/check-batch", many, auth, "application/json"),
                "sign_in": ("granian", "/oauth/token", fam["sign_in"], basic, form),
                "switch": ("granian", "/oauth/token", fam["switch"], basic, form),
            }
            runs: dict[str, list[dict[str, Any]]] = {k: [] for k in plan}
            # Rounds alternate every measure, so drift in the machine's other load hits each
            # alike; ratios are taken within a round.
            for _ in range(a.rounds):
                for key, (name, path, body, authorization, ctype) in plan.items():
                    if name in toggles:
                        set_log(servers[name], key.startswith("logged"), toggles[name])
                    runs[key].append(
                        wrk(
                            urls[name] + path,
                            a.seconds,
                            a.connections,
                            "POST",
                            body,
                            authorization,
                            servers[name].pid,
                            ctype,
                            part=functools.partial(writers_cpu, toggles[name])
                            if name in toggles
                            else None,
                        )
                    )
            med = {k: _median_run(v) for k, v in runs.items()}
            unknown = None if a.skip_unknown else unknown_subjects(client, fam, servers["granian"])
        finally:
            for server in servers.values():
                _stop(server)
        writer_us = log_writer_cost(fixture["env"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    load_after = os.getloadavg()

    def ms(us: float) -> str:
        return f"{us / 1000:.2f} ms"

    check, batch = med["check"], med["batch"]
    decisions = batch["rate"] * a.batch
    vs_today = _paired(runs["check"], runs["check_gunicorn"], "rate")
    vs_bare = _paired(runs["check"], runs["bare"], "rate")
    cpu_vs_bare = 1 / _paired(runs["check"], runs["bare"], "cpu_us")
    bare_gain = _paired(runs["bare"], runs["bare_gunicorn"], "rate")
    logged, unlogged = (
        _pooled(runs["logged"], runs["logged_b"]),
        _pooled(runs["unlogged"], runs["unlogged_b"]),
    )
    log_cpu = _paired(logged, unlogged, "cpu_us") - 1
    log_rate = 1 - _paired(logged, unlogged, "rate")
    # The writer threads' CPU in the logged runs: the part of the log's cost that is theirs
    # (the rest is the request thread's share: the row's text, the spool, the queue).
    writer_http_us = statistics.median(r["part_us"] for r in logged)
    logged_us = statistics.median(r["cpu_us"] for r in logged)
    log_us = logged_us - statistics.median(r["cpu_us"] for r in unlogged)
    spool_cpu = _paired(runs["check"], runs["unspooled"], "cpu_us") - 1
    batch_cpu = batch["cpu_us"] / a.batch

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

    per_request("bare Flask constant, gunicorn (before)", med["bare_gunicorn"], "-", "")
    per_request(
        "bare Flask constant, granian (ceiling)",
        med["bare"],
        "-",
        f"{bare_gain:.2f}x gunicorn's",
    )
    per_request(
        "POST /v1/access/check, gunicorn (before)",
        med["check_gunicorn"],
        f"{med['check_gunicorn']['rate']:,.0f}",
        "",
    )
    per_request(
        "POST /v1/access/check, granian (authz serve)",
        check,
        f"{check['rate']:,.0f}",
        f"{vs_today:.2f}x before (target ≥ 2.5x); {vs_bare:.0%} of bare granian by rate, "
        f"{cpu_vs_bare:.0%} by CPU (target ≥ 90 %)",
    )
    per_request(
        "  the same, decision log turned off",
        med["unlogged"],
        f"{med['unlogged']['rate']:,.0f}",
        f"the log costs a check {log_cpu:+.0%} CPU, {log_rate:+.0%} rate, two servers each on "
        "and off in turn (target ≤ 10 %)",
    )
    per_request(
        "  the same, decision log without its spool",
        med["unspooled"],
        f"{med['unspooled']['rate']:,.0f}",
        f"the spool costs a check {spool_cpu:+.0%} CPU (issue 6's 10 % holds the whole log)",
    )
    rows.append(
        (
            f"POST /v1/access/check-batch x{a.batch}",
            f"{batch['rate']:,.1f} req/s",
            f"{decisions:,.0f}",
            ms(batch["p50_us"]),
            ms(batch["p99_us"]),
            f"{batch_cpu:.1f} µs/decision",
            f"{decisions:,.0f} decisions/s measured, {2e6 / batch_cpu:,.0f} on 2 idle cores by "
            "CPU (target ≥ 60,000)",
        )
    )
    per_request("POST /oauth/token, sign-in (ID token)", med["sign_in"], "-", "")
    per_request(
        "POST /oauth/token, switch account",
        med["switch"],
        "-",
        f"{2e6 / med['switch']['cpu_us']:,.0f}/s on 2 idle cores by CPU (target ≥ 1,000/s)",
    )
    _print_table(
        ("measure", "requests", "decisions/s", "p50", "p99", "server CPU/req", "vs target"), rows
    )
    print(
        f"decision log writer: {writer_us:.1f} µs a decision in-process; over HTTP its threads "
        f"spent {writer_http_us:.1f} µs a check, of the {log_us:.0f} µs the log cost a check on "
        f"the toggled servers ({logged_us:.0f} µs a check with it on); "
        f"{writer_us * decisions / 2e6:.0%} of the cores at the batch rate"
    )
    if unknown is not None:
        print(
            f"unknown subjects over HTTP: +{unknown:.1f} MB in the larger worker after 100,000 "
            f"denied checks (target < {TARGETS['unknown_mb']:.0f} MB)"
        )
    checks = {
        "check ≥ 2.5x before": vs_today >= TARGETS["check_vs_before"],
        "check ≥ 90 % of bare granian": vs_bare >= TARGETS["check_vs_bare"],
        "check p99 ≤ 10 ms": check["p99_us"] <= TARGETS["check_p99_us"],
        "check-batch ≥ 60,000 decisions/s": decisions >= TARGETS["batch_decisions"],
        "switch account ≥ 1,000/s": med["switch"]["rate"] >= TARGETS["switch_rate"],
        # By CPU: the rates of two servers run apart move with the machine's other load.
        "decision log slows check ≤ 10 %": log_cpu <= TARGETS["log_overhead"],
    }
    if unknown is not None:
        checks["unknown subjects < 20 MB"] = unknown < TARGETS["unknown_mb"]
    print("targets: " + "; ".join(f"{k}: {'holds' if v else 'MISSED'}" for k, v in checks.items()))
    print(
        f"medians of {a.rounds} paired rounds; load average (1, 5, 15 min) before "
        f"{', '.join(f'{x:.2f}' for x in load_before)}; after "
        f"{', '.join(f'{x:.2f}' for x in load_after)}; {os.cpu_count()} cores; "
        f"wrk -t1 -c{a.connections} -d{a.seconds}s; store in {a.dir or tempfile.gettempdir()}"
    )
    return 0


def _paired(runs: list[dict[str, Any]], baseline: list[dict[str, Any]], key: str) -> float:
    """The median over rounds of `runs[i][key] / baseline[i][key]`."""
    return float(statistics.median(r[key] / b[key] for r, b in zip(runs, baseline, strict=True)))


def _pooled(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Two servers' runs of each round as one: rates summed, CPU a request (all of it, and the
    measured part of it) averaged by requests (the pair's CPU over the pair's requests)."""

    def per_request(x: dict[str, Any], y: dict[str, Any], key: str) -> float:
        total = x[key] * x["requests"] + y[key] * y["requests"]
        return float(total / (x["requests"] + y["requests"]))

    return [
        {
            "rate": x["rate"] + y["rate"],
            "cpu_us": per_request(x, y, "cpu_us"),
            "part_us": per_request(x, y, "part_us"),
        }
        for x, y in zip(a, b, strict=True)
    ]


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
