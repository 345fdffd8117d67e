"""No answered decision is lost (issue 12, finding 3), with real `authz serve` processes.

A worker killed with SIGKILL right after answering, and a graceful stop while PostgreSQL does
not answer, both leave the decisions they answered in the spool; the next start writes them.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.engine import make_url

from authz.store.db import Store
from authz.store.models import Decision
from tests.conftest import _truncate
from tests.helpers import Api
from tests.ops.serving import Server, wait_for
from tests.ops.tcp_proxy import TcpProxy


def _env(base: dict[str, str], tmp_path: Path, **extra: str) -> dict[str, str]:
    metrics = tmp_path / f"prometheus-{time.monotonic_ns()}"
    metrics.mkdir()
    return {
        **base,
        "AUTHZ_LOG_LEVEL": "info",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "AUTHZ_DECISION_SPOOL_DIR": str(tmp_path / "spool"),
        **extra,
    }


def _answer_checks(api: Api, url: str, seconds: float) -> list[str]:
    """Single checks one after another for `seconds`; the decision ids that were answered."""
    service = api.service_token("authz:check")
    body = {
        "token": api.provider_token(),
        "action": "invoice.read",
        "resource": {"type": "invoice", "id": "inv_1", "owner": "cli_nobody"},
    }
    answered: list[str] = []
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {service}"
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            r = http.post(url + "/v1/access/check", json=body, timeout=10)
            if r.status_code != 200:
                break
            answered.append(r.json()["decision_id"])
    return answered


def _stored(url: str, ids: list[str]) -> set[str]:
    store = Store.from_url(url)
    try:
        with store.read() as session:
            return set(session.scalars(select(Decision.id).where(Decision.id.in_(ids))))
    finally:
        store.close()


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def test_a_killed_worker_loses_no_answered_decision(
    api: Api, settings_env: dict[str, str], tmp_path: Path
) -> None:
    env = _env(settings_env, tmp_path)
    server = Server(env, workers=1)
    try:
        server.wait_ready()
        workers = wait_for(lambda: _children(server.proc.pid), 20, "a worker")
        answered = _answer_checks(api, server.url, 1.5)
        # Right after the last answer, before the log's next write: no graceful anything.
        for pid in (*workers, server.proc.pid):
            os.kill(pid, signal.SIGKILL)
        server.proc.wait(10)
    finally:
        server.stop()
    assert len(answered) > 50
    missing = set(answered) - _stored(settings_env["AUTHZ_DATABASE_URL"], answered)
    assert missing, "the kill came right after a write: nothing was at stake"
    spooled = list((tmp_path / "spool").glob("*.spool"))
    assert spooled, "the killed worker left its spool"
    again = Server(_env(settings_env, tmp_path), workers=1)
    try:
        again.wait_ready()
        wait_for(
            lambda: _stored(settings_env["AUTHZ_DATABASE_URL"], answered) == set(answered),
            20,
            f"the {len(missing)} decisions answered but not written before the kill",
        )
    finally:
        assert again.stop() == 0
    assert not list((tmp_path / "spool").glob("*.spool")), "replayed segments are removed"


@pytest.fixture
def proxied_url(pg_database: str) -> Any:
    _truncate(pg_database)
    url = make_url(pg_database)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        yield pg_database, through, proxy
    finally:
        proxy.close()


def test_a_graceful_stop_without_the_database_keeps_and_reports_its_decisions(
    proxied_url: tuple[str, str, TcpProxy], tmp_path: Path
) -> None:
    from api import create_app
    from authz.tokens import keys

    direct, through, proxy = proxied_url
    base = {
        "AUTHZ_DATABASE_URL": direct,
        "AUTHZ_DEV_MODE": "1",
        "AUTHZ_ISSUER": "http://authz.test",
        "AUTHZ_DECISION_SPOOL_DIR": str(tmp_path / "spool-test"),
    }
    app = create_app(base)
    rt = app.extensions["authz"]
    keys.ensure_key(rt.store, "test", keys.ACCESS_TOKEN)
    keys.ensure_key(rt.store, "test", keys.DEV_ISSUER)
    api = Api.bootstrap(app)
    settings = {
        **base,
        "AUTHZ_DATABASE_URL": through,
        "AUTHZ_POOL_TIMEOUT": "1",
        "AUTHZ_STATEMENT_TIMEOUT_MS": "1000",
    }
    server = Server(_env(settings, tmp_path), workers=1)
    try:
        server.wait_ready()
        answered = _answer_checks(api, server.url, 1.0)
        proxy.cut()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(60)
        line = server.wait_for_line(lambda x: "answered decisions could not be written" in x, 5)
    finally:
        server.stop()
        rt.close()
    assert len(answered) > 20
    proxy.restore()
    held = set(answered) - _stored(direct, answered)
    assert held, "the outage came before the log's next write"
    # A write whose commit was cut may have landed unconfirmed: the spool keeps it too, and
    # its replay skips what the store already holds.
    assert json.loads(server.lines[line])["spooled"] >= len(held)
    again = Server(_env({**settings, "AUTHZ_DATABASE_URL": direct}, tmp_path), workers=1)
    try:
        again.wait_ready()
        wait_for(lambda: _stored(direct, answered) == set(answered), 20, "the spooled decisions")
    finally:
        again.stop()
    assert not list((tmp_path / "spool").glob("*.spool"))
