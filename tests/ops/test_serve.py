"""`authz serve --workers N`: granian, metrics summed over workers, graceful shutdown."""

from __future__ import annotations

import base64
import json
import re
import signal
import socket
from pathlib import Path
from typing import Any

import requests

from tests.helpers import Api
from tests.ops.serving import Server


def _env(settings_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    return {
        **settings_env,
        "AUTHZ_LOG_LEVEL": "debug",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        match = re.match(r"^(\w+)\{(.*)\} (\S+)$", line)
        if match and match[1] == name and all(f'{k}="{v}"' in match[2] for k, v in labels.items()):
            total += float(match[3])
    return total


def test_workers_serve_counts_and_shuts_down_gracefully(
    api: Api, settings_env: dict[str, str], tmp_path: Path
) -> None:
    server = Server(_env(settings_env, tmp_path), workers=2)
    try:
        server.wait_ready()
        auth = (api.client_id, api.client_secret)
        tokens = [
            requests.post(
                server.url + "/oauth/token",
                data={"grant_type": "client_credentials", "scope": "authz:admin"},
                auth=auth,
                timeout=10,
            )
            for _ in range(8)
        ]
        assert [r.status_code for r in tokens] == [200] * 8
        token = tokens[0].json()["access_token"]
        listed = requests.get(
            server.url + "/v1/clients",
            headers={"Authorization": f"Bearer {token}", "X-Request-Id": "serve-1"},
            timeout=10,
        )
        assert listed.status_code == 200 and listed.headers["X-Request-Id"] == "serve-1"

        # Whichever worker answers, /metrics adds up every worker's samples.
        text = requests.get(server.url + "/metrics", timeout=10).text
        assert _metric(text, "authz_token_requests_total", result="issued") == 8
        assert _metric(text, "authz_http_requests_total", route="/oauth/token", status="200") == 8

        # An in-flight request: headers sent, body not yet. SIGTERM must let it finish.
        body = "grant_type=client_credentials&scope=authz%3Aadmin"
        started = sum('"request started"' in line for line in server.lines)
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as conn:
            basic = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            conn.sendall(
                (
                    "POST /oauth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: {basic}\r\n"
                    "Content-Type: application/x-www-form-urlencoded\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n" + body[:10]
                ).encode()
            )
            seen = [0]

            def request_started(line: str) -> bool:
                if '"request started"' in line:
                    seen[0] += 1
                return seen[0] > started

            server.wait_for_line(request_started, 20)
            server.proc.send_signal(signal.SIGTERM)
            # Both workers have stopped accepting: what is in flight still gets its answer.
            stopping = server.wait_for_line(lambda line: "Stopping worker-" in line, 20)
            server.wait_for_line(lambda line: "Stopping worker-" in line, 20, stopping + 1)
            conn.sendall(body[10:].encode())
            raw = _read_all(conn)
        status_line, _, rest = raw.partition("\r\n")
        assert " 200 " in status_line, raw
        assert "access_token" in rest
        assert server.proc.wait(30) == 0
    finally:
        server.stop()
    access = [json.loads(line) for line in server.lines if '"logger": "authz.access"' in line]
    assert any(entry.get("request_id") == "serve-1" for entry in access)
    everything = "\n".join(server.lines)
    assert api.client_secret not in everything and token not in everything


def _read_all(conn: Any) -> str:
    chunks = []
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return b"".join(chunks).decode()
        chunks.append(chunk)


def test_a_graceful_stop_writes_every_decision_it_answered(
    api: Api, settings_env: dict[str, str], tmp_path: Path
) -> None:
    """Checks run until SIGTERM: every decision a worker answered is in the store afterwards,
    including those still batched in memory when the stop came (the log writes every second)."""
    import threading

    from sqlalchemy import func, select

    from authz.store.models import Decision

    def logged() -> int:
        with api.rt.store.read() as session:
            return session.scalar(select(func.count()).select_from(Decision)) or 0

    sam = api.client("Sam", "adult", "sam@x.test")
    check = {
        "token": api.sign_in(f"client:{sam['id']}", "sam@x.test"),
        "action": "invoice.read",
        "resource": {"type": "invoice", "id": "inv_1", "owner": sam["id"]},
    }
    service = api.service_token("authz:check")
    before = logged()
    server = Server(_env(settings_env, tmp_path), workers=2)
    answered = [0, 0]
    try:
        server.wait_ready()

        def checks(i: int) -> None:
            http = requests.Session()
            while True:
                try:
                    r = http.post(
                        server.url + "/v1/access/check",
                        json=check,
                        headers={"Authorization": f"Bearer {service}"},
                        timeout=20,
                    )
                except requests.RequestException:
                    return  # the server stopped accepting
                assert r.status_code == 200, r.text
                answered[i] += 1

        threads = [threading.Thread(target=checks, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        while sum(answered) < 200:
            threading.Event().wait(0.01)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0
        for t in threads:
            t.join(30)
    finally:
        server.stop()
    assert logged() - before == sum(answered)


def test_a_worker_that_dies_is_replaced(
    api: Api, settings_env: dict[str, str], tmp_path: Path
) -> None:
    """A worker killed outright (out of memory, a crash) is replaced; the server keeps serving."""
    import os
    import time

    server = Server(_env(settings_env, tmp_path), workers=2)
    try:
        server.wait_ready()
        children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children")
        workers = {int(pid) for pid in children.read_text().split()}
        assert len(workers) == 2
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        server.wait_for_line(lambda line: "Respawning worker-" in line, 20)

        def replaced() -> bool:
            now = {int(pid) for pid in children.read_text().split()}
            return len(now) == 2 and victim not in now

        deadline = time.monotonic() + 30
        while not replaced():
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.1)
        server.wait_ready()
        http = requests.Session()
        assert all(http.get(server.url + "/readyz", timeout=10).ok for _ in range(20))
        assert server.proc.poll() is None
    finally:
        server.stop()
    assert server.proc.returncode == 0


def test_a_long_request_line_or_header_over_http_is_a_problem(
    api: Api, settings_env: dict[str, str], tmp_path: Path
) -> None:
    """Over the real server (not only the test client): the edge's limits answer problem JSON.
    Past granian's own limits (a target over 65,534 bytes, over 100 headers, ~400 KiB of
    head) granian refuses before the app runs, with the same status and an empty body."""
    server = Server(_env(settings_env, tmp_path), workers=1)
    try:
        server.wait_ready()
        for path, headers, status in [
            ("/v1/clients?x=" + "a" * 4100, {}, 414),
            ("/v1/clients?x=" + "a" * 60_000, {}, 414),
            ("/v1/clients", {"X-Filler": "a" * 8200}, 431),
            ("/v1/clients", {"X-Filler": "a" * 300_000}, 431),
        ]:
            r = requests.get(server.url + path, headers=headers, timeout=10)
            assert r.status_code == status, (len(path), r.status_code)
            assert r.headers["Content-Type"] == "application/problem+json"
            assert r.json()["status"] == status
        for path, headers, status in [
            ("/v1/clients?x=" + "a" * 70_000, {}, 414),
            ("/v1/clients", {f"X-H{i}": "a" for i in range(120)}, 431),
        ]:
            r = requests.get(server.url + path, headers=headers, timeout=10)
            assert (r.status_code, r.content) == (status, b"")
    finally:
        server.stop()
