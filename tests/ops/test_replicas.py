"""Replicas on one PostgreSQL agree: a write through one is seen by every other, never late.

In-process first (two apps, one behind the TCP proxy): notifications keep a replica warm without
any request to it, and a replica that lost its channel reconnects and catches up by itself. Then
the issue's test: two `authz serve` processes (the development server and granian with two
workers), 10,000 checks on both interleaved with revokes and re-grants through either.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy.engine import make_url

from api import create_app
from authz.service import access
from authz.tokens import keys
from tests.conftest import _truncate
from tests.helpers import Api
from tests.ops.serving import Server, wait_for
from tests.ops.tcp_proxy import TcpProxy

ACK = "I confirm full access is intended."
CHECK_SCOPES = "authz:check authz:check:subjects"


def _app(url: str, **extra: str) -> Any:
    app = create_app(
        {
            "AUTHZ_DATABASE_URL": url,
            "AUTHZ_DEV_MODE": "1",
            "AUTHZ_ISSUER": "http://authz.test",
            "AUTHZ_POOL_TIMEOUT": "1",
            "AUTHZ_STATEMENT_TIMEOUT_MS": "1000",
            **extra,
        }
    )
    rt = app.extensions["authz"]
    keys.ensure_key(rt.store, "test", keys.ACCESS_TOKEN)
    keys.ensure_key(rt.store, "test", keys.DEV_ISSUER)
    return app


def _close(app: Any) -> None:
    app.extensions["authz"].close()


@pytest.fixture
def two_apps(pg_database: str) -> Iterator[tuple[Api, Any, TcpProxy]]:
    """Replica A on PostgreSQL directly; replica B through the proxy, listening."""
    _truncate(pg_database)
    url = make_url(pg_database)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    a, b = _app(pg_database), _app(through)
    try:
        yield Api.bootstrap(a), b, proxy
    finally:
        _close(b)
        _close(a)
        proxy.close()


def _facts_revision(app: Any) -> int:
    service = app.extensions["authz"].extras.get("access")
    return int(service.facts.revision) if service is not None else 0


def test_notifications_keep_a_replica_warm_and_a_lost_channel_catches_up(
    two_apps: tuple[Api, Any, TcpProxy],
) -> None:
    api, b, proxy = two_apps
    sam = api.client("Sam", "adult", "sam@x.test")["id"]
    link, _ = api.grant(sam, "jenna@x.test")
    # A poll far beyond this test: only notifications (or a reconnection) can refresh B.
    listener = access.start_replication(b.extensions["authz"], poll_interval=600)
    assert listener is not None
    start = api.rt.store.revision()
    wait_for(lambda: _facts_revision(b) >= start, 10, "B to load its facts")
    wait_for(lambda: listener.state.listening, 5, "B to listen")

    revoked = api.ok(
        "PATCH", f"/v1/clients/{sam}/links/{link['id']}", {"portal_access": {"enabled": False}}
    )
    wait_for(lambda: _facts_revision(b) >= int(revoked["revision"]), 2, "the revoke on B")
    assert listener.state.notifications >= 1

    proxy.cut()
    wait_for(lambda: not listener.state.listening, 10, "B to notice the lost channel")
    # An email change and an unlink while B hears nothing.
    moved = api.ok("PATCH", f"/v1/clients/{sam}", {"email": "sam.new@x.test"})
    unlinked = api.ok("DELETE", f"/v1/clients/{sam}/links/{link['id']}")
    assert int(unlinked["revision"]) > int(moved["revision"]) > int(revoked["revision"])
    proxy.restore()
    restored = time.monotonic()
    wait_for(lambda: _facts_revision(b) >= int(unlinked["revision"]), 5, "B to catch up")
    assert time.monotonic() - restored < 5
    assert listener.state.listening and listener.state.reconnects >= 1

    # B answers from what it caught up on, and says how fresh it is.
    b_api = Api(b, api.org_id, api.provider_id, api.provider_email, api.reviewer_id,
                api.client_id, api.client_secret)  # fmt: skip
    service = b_api.service_token(CHECK_SCOPES)
    cg = link["linked_client_id"]
    check = b_api.ok(
        "POST",
        "/v1/access/check",
        {
            "subject": f"client:{cg}",
            "acting_as": f"client:{sam}",
            "action": "invoice.read",
            "resource": {"type": "invoice", "id": "inv_1", "owner": sam},
        },
        token=service,
    )
    assert check["allowed"] is False
    for login in ("sam@x.test", "sam.new@x.test"):
        on_b = b_api.ok("GET", f"/v1/access/accounts?login={login}", token=service)
        on_a = api.ok("GET", f"/v1/access/accounts?login={login}", token=service)
        assert on_b["accounts"] == on_a["accounts"], login
        if login == "sam@x.test":
            assert sam not in [a["client_id"] for a in on_b["accounts"]]
    ready = b.test_client().get("/readyz").get_json()
    assert ready["revision_lag"] == 0 and ready["checks"]["replication"]["ok"]
    metrics = b.test_client().get("/metrics").text
    assert "authz_revision_lag 0.0" in metrics and "authz_replication_listening 1.0" in metrics


# -- the issue's test: two processes, 10,000 checks, revokes and re-grants -----------------------

TOTAL_CHECKS = 10_000
CHECKERS = 4
#: Two in three requests are batches of this many checks, one in three a single check.
BATCH = 8
STABLE, CHURNING = 8, 6


@dataclass
class Pair:
    receiver: str
    caregiver: str
    caregiver_token: str
    link: str
    stable: bool
    #: The receiver's date of birth, which the caregiver proves before each acceptance.
    birth_date: str = "1980-01-01"
    #: (monotonic time the revoke returned, time the re-grant was sent or None), in order.
    revocations: list[list[float | None]] = field(default_factory=list)


@dataclass
class Seen:
    sent: float
    received: float
    pair: Pair
    allowed: bool
    replica: str


def _body(pair: Pair) -> dict[str, Any]:
    return {
        "subject": f"client:{pair.caregiver}",
        "acting_as": f"client:{pair.receiver}",
        "action": "invoice.read",
        "resource": {"type": "invoice", "id": "inv_1", "owner": pair.receiver},
    }


def _stale_allow(seen: Seen) -> bool:
    """An allow sent after a revoke returned, with no re-grant begun before it was answered."""
    if not seen.allowed:
        return False
    for revoked_at, regranted_at in seen.pair.revocations:
        assert revoked_at is not None
        if revoked_at < seen.sent and (regranted_at is None or regranted_at > seen.received):
            return True
    return False


@pytest.fixture(params=["postgresql", "sqlite"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Api, list[Server]]]:
    """PostgreSQL: two replicas. SQLite: one deployment on one file, `--workers 4` and a second
    process (where a check learns of other processes' writes from the published revision)."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_database")
        _truncate(url)
    else:
        url = f"sqlite:///{tmp_path / 'authz.db'}"
        shutil.copy(request.getfixturevalue("sqlite_template"), tmp_path / "authz.db")
    app = _app(url)
    env = {
        "AUTHZ_DATABASE_URL": url,
        "AUTHZ_DEV_MODE": "1",
        "AUTHZ_ISSUER": "http://authz.test",
        "AUTHZ_LOG_LEVEL": "WARNING",
    }
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    servers = [
        Server(env),
        Server(
            {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
            workers=2 if request.param == "postgresql" else 4,
        ),
    ]
    try:
        api = Api.bootstrap(app)
        for server in servers:
            server.wait_ready()
        yield api, servers
    finally:
        for server in servers:
            server.stop()
        _close(app)


@pytest.mark.slow
def test_two_replicas_never_allow_after_a_revoke_returned(
    replicas: tuple[Api, list[Server]],
) -> None:
    api, servers = replicas
    pairs = []
    for i in range(STABLE + CHURNING):
        receiver = api.client(f"R{i}", "adult", f"r{i}@x.test", birth_date="1980-01-01")["id"]
        link, token = api.grant(receiver, f"c{i}@x.test")
        pairs.append(Pair(receiver, link["linked_client_id"], token, link["id"], i < STABLE))
    admin = {"Authorization": f"Bearer {api.provider_token()}"}
    service = {"Authorization": f"Bearer {api.service_token(CHECK_SCOPES)}"}
    urls = [s.url for s in servers]
    seen: list[Seen] = []
    errors: list[str] = []
    done = threading.Event()

    def churn() -> None:
        """Revoke and re-grant the churning pairs through either replica, alternately."""
        http, rng, cycle = requests.Session(), random.Random(6), 0
        while not done.is_set():
            pair = pairs[STABLE + cycle % CHURNING]
            via, back = rng.sample(urls, 2)
            unlink = cycle % 2 == 1
            path = f"{via}/v1/clients/{pair.receiver}/links/{pair.link}"
            if unlink:
                r = http.delete(path, headers=admin, timeout=10)
            else:
                r = http.patch(
                    path, json={"portal_access": {"enabled": False}}, headers=admin, timeout=10
                )
            if r.status_code != 200:
                errors.append(f"revoke: {r.status_code} {r.text[:200]}")
                return
            record: list[float | None] = [time.monotonic(), None]
            pair.revocations.append(record)
            time.sleep(rng.uniform(0.01, 0.05))
            record[1] = time.monotonic()
            if unlink:
                r = http.post(
                    f"{back}/v1/clients/{pair.receiver}/links",
                    json={
                        "client_id": pair.caregiver,
                        "relationship": "parent",
                        "portal_access": {"enabled": True, "acknowledgement": ACK},
                    },
                    headers=admin,
                    timeout=10,
                )
            else:
                r = http.patch(
                    f"{back}/v1/clients/{pair.receiver}/links/{pair.link}",
                    json={"portal_access": {"enabled": True, "acknowledgement": ACK}},
                    headers=admin,
                    timeout=10,
                )
            if r.status_code not in (200, 201):
                errors.append(f"re-grant: {r.status_code} {r.text[:200]}")
                return
            pair.link = r.json()["id"]
            invite = r.json()["dev_invite_token"]
            proved = http.post(
                f"{via}/v1/invites/{invite}/proof",
                json={"birth_date": pair.birth_date},
                headers={"Authorization": f"Bearer {pair.caregiver_token}"},
                timeout=10,
            )
            if proved.status_code != 200:
                errors.append(f"proof: {proved.status_code} {proved.text[:200]}")
                return
            accepted = http.post(
                f"{via}/v1/invites/{invite}/accept",
                json={},
                headers={"Authorization": f"Bearer {pair.caregiver_token}"},
                timeout=10,
            )
            if accepted.status_code != 200:
                errors.append(f"accept: {accepted.status_code} {accepted.text[:200]}")
                return
            time.sleep(rng.uniform(0.01, 0.05))
            cycle += 1

    def check(worker: int) -> None:
        """Single checks and batches of BATCH, alternating replicas, until this one's share."""
        http, rng, n, left = requests.Session(), random.Random(worker), 0, TOTAL_CHECKS // CHECKERS
        while left > 0:
            replica = urls[(n + worker) % len(urls)]
            batch = [rng.choice(pairs) for _ in range(1 if n % 3 == 0 else min(BATCH, left))]
            n, left = n + 1, left - len(batch)
            sent = time.monotonic()
            if len(batch) == 1:
                r = http.post(
                    replica + "/v1/access/check", json=_body(batch[0]), headers=service, timeout=10
                )
                answers = [r.json()] if r.status_code == 200 else []
            else:
                r = http.post(
                    replica + "/v1/access/check-batch",
                    json={"checks": [_body(p) for p in batch]},
                    headers=service,
                    timeout=10,
                )
                answers = r.json()["results"] if r.status_code == 200 else []
            received = time.monotonic()
            if r.status_code != 200:
                errors.append(f"check: {r.status_code} {r.text[:200]}")
                return
            for pair, answer in zip(batch, answers, strict=True):
                seen.append(Seen(sent, received, pair, answer["allowed"], replica))

    started = time.monotonic()
    churner = threading.Thread(target=churn)
    checkers = [threading.Thread(target=check, args=(w,)) for w in range(CHECKERS)]
    churner.start()
    for t in checkers:
        t.start()
    for t in checkers:
        t.join(90)
    done.set()
    churner.join(30)
    elapsed = time.monotonic() - started

    assert not errors, errors[:5]
    assert len(seen) == TOTAL_CHECKS
    revokes = sum(len(p.revocations) for p in pairs)
    assert revokes >= 20, f"only {revokes} revokes in {elapsed:.1f}s"
    stale = [s for s in seen if _stale_allow(s)]
    lost = [s for s in seen if s.pair.stable and not s.allowed]
    assert stale == [], f"{len(stale)} allows after a revoke returned"
    assert lost == [], f"{len(lost)} denies of grants active the whole time"
    # Both replicas answered, and the churning grants were seen both ways on both.
    for url in urls:
        mine = [s for s in seen if s.replica == url and not s.pair.stable]
        assert {s.allowed for s in mine} == {True, False}, url
    if api.rt.store.engine.dialect.name != "postgresql":
        return
    for server in servers:
        ready = requests.get(server.url + "/readyz", timeout=5).json()
        assert ready["checks"]["replication"]["detail"].startswith("listening"), ready
        # Every worker of every replica listens, and none is behind once the writes stop.
        metrics = requests.get(server.url + "/metrics", timeout=5).text
        assert "authz_replication_listening 1.0" in metrics, server.url
        wait_for(
            lambda s=server: (
                "authz_revision_lag 0.0" in requests.get(s.url + "/metrics", timeout=5).text
            ),
            5,
            "no lag",
        )


def test_a_revoked_switch_token_stays_dead_on_another_replica(
    two_apps: tuple[Api, Any, TcpProxy],
) -> None:
    """Issue 12, finding 1, across replicas: the token is minted, its grant revoked and granted
    again (a new acknowledgement, a new invite accepted) on A; B never brings it back."""
    api, b, _ = two_apps
    mia = api.client("Mia", "adult", "mia@x.test")["id"]
    carlos = api.client("Carlos", "adult", "carlos@x.test")["id"]
    access = {"enabled": True, "acknowledgement": ACK}
    link = api.ok(
        "POST",
        f"/v1/clients/{mia}/links",
        {"client_id": carlos, "relationship": "caregiver", "portal_access": access},
    )
    own = api.sign_in(f"client:{carlos}", "carlos@x.test")
    api.accept(link["dev_invite_token"], own)
    old = api.exchange(own, f"client:{mia}").get_json()["access_token"]
    path = f"/v1/clients/{mia}/links/{link['id']}"
    api.ok("PATCH", path, {"portal_access": {"enabled": False}})
    again = api.ok("PATCH", path, {"portal_access": access})
    api.accept(again["dev_invite_token"], own)

    b_api = Api(b, api.org_id, api.provider_id, api.provider_email, api.reviewer_id,
                api.client_id, api.client_secret)  # fmt: skip
    r = b_api.http.post("/oauth/introspect", data={"token": old}, headers=b_api.basic())
    assert r.status_code == 200 and r.get_json() == {"active": False}
    service = b_api.service_token(CHECK_SCOPES)
    body = {
        "token": old,
        "action": "invoice.read",
        "resource": {"type": "invoice", "id": "inv_1", "owner": mia},
    }
    assert b_api.ok("POST", "/v1/access/check", body, token=service)["allowed"] is False
    fresh = b_api.exchange(own, f"client:{mia}").get_json()["access_token"]
    body["token"] = fresh
    assert b_api.ok("POST", "/v1/access/check", body, token=service)["allowed"] is True
