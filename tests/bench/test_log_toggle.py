"""The HTTP bench's measure of what the decision log costs: one server, its log on and off."""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from pathlib import Path

import requests

from bench import http_checks
from bench.common import free_port

ROOT = Path(__file__).resolve().parents[2]


def _recorded(db: Path) -> int:
    """Decisions in the store once the workers' writers have written what they hold (their
    tick is a second: the count is read until it stops moving)."""
    last, deadline = -1, time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(1.5)
        with sqlite3.connect(db) as conn:
            now = conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
        if now == last:
            return int(now)
        last = now
    raise AssertionError("the decision log did not settle")


def test_a_toggled_server_records_checks_only_while_its_log_is_on(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    fixture = http_checks.build_store(tmp_path, url)
    said = tmp_path / "log"
    said.mkdir()
    env = {
        **os.environ,
        **fixture["env"],
        "PYTHONPATH": str(ROOT),
        http_checks.TOGGLE_DIR: str(said),
    }
    server = http_checks._start(
        [sys.executable, "-m", "bench.http_checks", "--serve", "toggled", "--port", str(port)],
        env,
        url,
        "/.well-known/jwks.json",
    )
    try:
        fam = http_checks.Client(url, fixture).family()
        check = {
            "token": fam["delegated"],
            "action": "invoice.pay",
            "resource": {"type": "invoice", "id": "inv_1", "owner": fam["sam"]},
            "context": {"payment_method": "pm_sam"},
        }
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {fam['service']}"

        def checks(n: int) -> None:
            for _ in range(n):
                r = http.post(url + "/v1/access/check", json=check, timeout=10)
                assert r.status_code == 200 and r.json()["allowed"], r.text

        db = tmp_path / "authz.db"
        http_checks.set_log(server, False, said)
        before = _recorded(db)
        checks(40)
        assert _recorded(db) == before  # answered, not recorded: the log is off
        writers = http_checks.writers_cpu(said)
        http_checks.set_log(server, True, said)
        checks(40)
        assert _recorded(db) == before + 40
        # The writer threads wrote them: their CPU, which the bench reports apart, moved.
        assert http_checks.writers_cpu(said) > writers
        workers = http_checks._workers(server.pid)
        states = [p for p in said.iterdir() if p.suffix != ".writer"]
        assert sorted(p.name for p in states) == sorted(str(w) for w in workers)
        assert all(p.read_text() == "on" for p in states)
        assert sorted(p.stem for p in said.glob("*.writer")) == sorted(str(w) for w in workers)
    finally:
        http_checks._stop(server)
    assert http_checks.live_in_group(server.pid) == []
