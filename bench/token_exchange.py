"""Token exchanges per second, in-process and over HTTP (2 gunicorn workers), beside the cost
of one ES256 signature plus one verification measured in the same run.

    python -m bench token_exchange [--requests N] [--seconds S] [--connections C] [--skip-http]

The exchange measured is "switch account" (RFC 8693: a caregiver's token for the care
receiver), the flow with the most checks. Everything runs on loopback against a temporary
SQLite store in development mode. The in-process figures are taken in interleaved rounds (a
batch of signatures, of verifications, of exchanges through the use case and through the WSGI
app, then again), so that a neighbour's load hits the ceiling and the exchange alike: the ratio
is the median of the per-round ratios. The HTTP run lasts `--seconds` (wrk, one thread,
`--connections` keep-alive connections). The load average is printed with the table.
"""

from __future__ import annotations

import argparse
import base64
import gc
import io
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from bench.common import AUDIENCE, ID_TOKEN, TOKEN_EXCHANGE, WRK_REPORT, free_port, practice

ROOT = Path(__file__).resolve().parent.parent
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
BATCH = 50


@dataclass
class Fixture:
    """A store with a caregiver whose portal access to a care receiver is active."""

    env: dict[str, str]
    client_id: str
    client_secret: str
    caregiver_token: str
    receiver: str

    def form(self) -> dict[str, str]:
        return {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": self.caregiver_token,
            "subject_token_type": ACCESS,
            "resource": f"client:{self.receiver}",
            "audience": AUDIENCE,
        }

    def basic(self) -> str:
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def build_fixture(workdir: Path, issuer: str) -> tuple[Fixture, Any]:
    """Migrate a fresh SQLite store and set up an organization, a portal backend and a grant."""
    from authz.policy.grants import CLIENT_SCOPES

    p = practice(f"sqlite:///{workdir / 'authz.db'}", issuer, ["authz:admin", *CLIENT_SCOPES])
    _admin, token, receiver = p.active_grant()
    return Fixture(p.env, p.client_id, p.client_secret, token, receiver), p.app


# -- measurements ----------------------------------------------------------------------------


def sign_verify_ops() -> tuple[Callable[[], None], Callable[[], None]]:
    """One ES256 signature and one verification with PyJWT, on claims like the exchange's."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    now = int(time.time())
    claims = {
        "iss": "http://127.0.0.1",
        "sub": "client:cli_0123456789abcdef",
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "jti": secrets.token_urlsafe(16),
        "client_id": "oc_0123456789abcdef",
        "scope": "appointments billing documents forms messages profile",
        "org": "org_0123456789abcdef",
        "authz_via": "delegation",
        "act": {"sub": "client:cli_fedcba9876543210"},
        "grant": "lnk_0123456789abcdef",
    }
    headers = {"kid": "bench", "typ": "at+jwt"}
    token = jwt.encode(claims, key, algorithm="ES256", headers=headers)

    def sign() -> None:
        jwt.encode(claims, key, algorithm="ES256", headers=headers)

    def verify() -> None:
        jwt.decode(token, public, algorithms=["ES256"], audience=AUDIENCE)

    return sign, verify


def use_case_op(fixture: Fixture, app: Any) -> Callable[[], None]:
    """The exchange itself, in-process: verify the subject token, check it and the grant
    against the store (one read), decide, sign. What the Authlib grant runs per request."""
    from authz.oauth import oauth_clients
    from authz.oauth.oauth_clients import TOKEN_EXCHANGE
    from authz.oauth.rfc8693 import Exchange
    from authz.oauth.token_issuer import Issuance, token_generator

    rt = app.extensions["authz"]
    client = oauth_clients.query_client(rt.store, fixture.client_id)
    assert client is not None
    generate, params = token_generator(rt), fixture.form()

    def one() -> None:
        outcome = Exchange(rt).decide(client, params)
        d = outcome.decision
        generate(
            TOKEN_EXCHANGE, client, Issuance(d.subject, outcome.audience, d.extra), outcome.scope
        )

    return one


def wsgi_op(fixture: Fixture, app: Any) -> Callable[[], None]:
    """The whole service in-process: the WSGI app called directly, no socket."""
    body = urllib.parse.urlencode(fixture.form()).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/oauth/token",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": fixture.basic(),
    }

    def one() -> None:
        status: list[str] = []
        env = {**environ, "wsgi.input": io.BytesIO(body)}
        out = b"".join(app(env, lambda s, h, e=None: status.append(s)))
        if not status[0].startswith("200"):
            raise RuntimeError(f"exchange failed: {out[:300]!r}")

    return one


@dataclass
class Series:
    """Per-call latencies of one operation, and its mean per round."""

    calls: list[float]
    rounds: list[float]


def interleaved(ops: dict[str, Callable[[], None]], rounds: int) -> dict[str, Series]:
    """Run a batch of each operation in turn, `rounds` times, timing every call."""
    for op in ops.values():
        for _ in range(BATCH):  # warm-up: caches, pooled connections
            op()
    out = {name: Series([], []) for name in ops}
    clock = time.perf_counter
    for _ in range(rounds):
        for name, op in ops.items():
            calls = out[name].calls
            start = clock()
            for _ in range(BATCH):
                t0 = clock()
                op()
                calls.append(clock() - t0)
            out[name].rounds.append((clock() - start) / BATCH)
    return out


WRK_SCRIPT = (
    """
wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = %(auth)s
"""
    + WRK_REPORT
)


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


def over_http(fixture: Fixture, seconds: int, connections: int, workdir: Path) -> dict[str, Any]:
    """Exchanges/s and latency against `authz serve --workers 2`, driven by wrk for a bounded
    time (so a bounded number of requests)."""
    server_log = open(workdir / "serve.log", "wb")  # noqa: SIM115 (closed in `finally`)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **fixture.env,
        "AUTHZ_ISSUER": url,
        "PYTHONPATH": str(ROOT),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "authz.cli", "serve", "--workers", "2", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        # NOTE: a file, not a pipe: nobody reads a pipe during the run, and once the access log
        # fills it (64 KiB, about 200 requests) every worker blocks on its next log line.
        stderr=server_log,
    )
    try:
        _await_ready(url, server, server_log)
        # The caregiver's token names the issuer, so get one from this server.
        token = _caregiver_token_from(url, fixture)
        body = urllib.parse.urlencode({**fixture.form(), "subject_token": token})
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(
                WRK_SCRIPT % {"body": _lua_string(body), "auth": _lua_string(fixture.basic())}
            )
        # One wrk thread: the two workers need the two cores more than the load generator.
        wrk = ["wrk", "-t1", f"-c{connections}", "-s", script.name, url + "/oauth/token"]
        subprocess.run([*wrk, "-d2s"], capture_output=True, text=True, check=True)  # warm-up
        run = subprocess.run([*wrk, f"-d{seconds}s"], capture_output=True, text=True, check=True)
        os.unlink(script.name)
        line = next(x for x in run.stdout.splitlines() if x.startswith("WRK "))
        result: dict[str, Any] = json.loads(line[4:])
        return result
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        server_log.close()


def _await_ready(url: str, server: subprocess.Popen[bytes], log: Any) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            err = Path(log.name).read_text(errors="replace")
            raise RuntimeError(f"authz serve exited: {err[-2000:]}")
        try:
            if requests.get(url + "/.well-known/jwks.json", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)  # polling a port that is not open yet: there is no event to await
    raise RuntimeError("authz serve did not answer within 30 s")


def _caregiver_token_from(url: str, fixture: Fixture) -> str:
    claims = jwt.decode(fixture.caregiver_token, options={"verify_signature": False})
    from api import create_app
    from authz.oauth import identity

    app = create_app({**fixture.env, "AUTHZ_ISSUER": url})
    rt = app.extensions["authz"]
    email = "jenna@bench.test"
    r = requests.post(
        url + "/oauth/token",
        headers={"Authorization": fixture.basic()},
        data={
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": identity.mint_dev_id_token(rt.settings, rt.dev_keys, email),
            "subject_token_type": ID_TOKEN,
            "resource": claims["sub"],
            "audience": AUDIENCE,
        },
        timeout=10,
    )
    r.raise_for_status()
    rt.store.engine.dispose()
    return str(r.json()["access_token"])


# -- report ----------------------------------------------------------------------------------


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench token_exchange")
    parser.add_argument("--requests", type=int, default=4000, help="calls per in-process measure")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections (HTTP)")
    parser.add_argument("--seconds", type=int, default=10, help="length of the HTTP run")
    parser.add_argument("--skip-http", action="store_true", help="in-process only")
    args = parser.parse_args(argv)

    load_before = _load()
    workdir = Path(tempfile.mkdtemp(prefix="authz-bench-"))
    try:
        fixture, app = build_fixture(workdir, "http://127.0.0.1")
        sign, verify = sign_verify_ops()
        gc.collect()
        gc.freeze()  # the fixture's objects are not the exchange's garbage
        runs = interleaved(
            {
                "sign": sign,
                "verify": verify,
                "use case": use_case_op(fixture, app),
                "wsgi": wsgi_op(fixture, app),
            },
            max(1, args.requests // BATCH),
        )
        sign_s = statistics.median(runs["sign"].rounds)
        verify_s = statistics.median(runs["verify"].rounds)
        crypto = [s + v for s, v in zip(runs["sign"].rounds, runs["verify"].rounds, strict=True)]
        ceiling = 1 / statistics.median(crypto)
        rows = [
            ("ES256 sign (PyJWT)", f"{sign_s * 1e6:.0f} µs", "", "", ""),
            ("ES256 verify (PyJWT)", f"{verify_s * 1e6:.0f} µs", "", "", ""),
            ("ceiling: 1 / (sign + verify)", f"{ceiling:,.0f} /s", "", "", "100 %"),
        ]
        for label, name, target in (
            ("exchange use case, in-process", "use case", " (target ≥ 40 %)"),
            ("exchange via WSGI app, in-process", "wsgi", ""),
        ):
            series = runs[name]
            rate = 1 / statistics.median(series.rounds)
            # Same round, same neighbours: the ratio of the round, then the median of those.
            ratio = statistics.median(c / r for c, r in zip(crypto, series.rounds, strict=True))
            rows.append(
                (
                    label,
                    f"{rate:,.0f} /s",
                    f"{_pct(series.calls, 50) * 1e3:.2f} ms",
                    f"{_pct(series.calls, 99) * 1e3:.2f} ms",
                    f"{ratio:.0%}{target}",
                )
            )
        app.extensions["authz"].store.engine.dispose()
        if not args.skip_http:
            if shutil.which("wrk") is None:
                raise SystemExit("wrk is needed for the HTTP measurement (apt-get install wrk)")
            http = over_http(fixture, args.seconds, args.connections, workdir)
            if http["bad"] or http["errors"]:
                raise SystemExit(f"HTTP run had failures: {http}")
            http_rate = http["requests"] / http["seconds"]
            rows.append(
                (
                    f"exchange, HTTP, 2 workers, {args.connections} conns",
                    f"{http_rate:,.0f} /s",
                    f"{http['p50_us'] / 1e3:.2f} ms",
                    f"{http['p99_us'] / 1e3:.2f} ms",
                    f"{http_rate / ceiling:.0%} (target ≥ 500/s, p99 ≤ 50 ms)",
                )
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _print_table(("measure", "median rate/cost", "p50", "p99", "vs ceiling"), rows)
    print(
        f"\n{os.cpu_count()} CPUs; load average (1/5/15 min) before {load_before}, after {_load()}"
    )


def _print_table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in (head, *rows)) for i in range(len(head))]
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print(line)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main(sys.argv[1:])
