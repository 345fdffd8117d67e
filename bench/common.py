"""What every HTTP benchmark shares: a free loopback port and wrk's machine-readable report."""

from __future__ import annotations

import base64
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

#: The end of every wrk script: counts non-200 answers per thread and prints one `WRK {…}`
#: JSON line (requests, seconds, p50/p99 in µs, bad answers, socket errors). Scripts are
#: %-formatted, hence the doubled percent signs.
WRK_REPORT = """local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local bad_total = 0
  for _, t in ipairs(threads) do bad_total = bad_total + t:get("bad") end
  io.write(string.format(
    'WRK {"requests": %%d, "seconds": %%f, "p50_us": %%d, "p99_us": %%d, "bad": %%d, '
    .. '"errors": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    bad_total, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout))
end
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


AUDIENCE = "https://portal.bench"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"


@dataclass
class Practice:
    """A migrated store with an organization, a provider and a portal backend, driven in-process
    through the app (the same HTTP API a portal uses)."""

    app: Any
    env: dict[str, str]
    client_id: str
    client_secret: str
    provider_id: str

    @property
    def rt(self) -> Any:
        return self.app.extensions["authz"]

    def token(self, data: dict[str, str]) -> str:
        raw = f"{self.client_id}:{self.client_secret}".encode()
        basic = {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        r = self.app.test_client().post("/oauth/token", headers=basic, data=data)
        assert r.status_code == 200, r.get_json()
        return str(r.get_json()["access_token"])

    def sign_in(self, resource: str, email: str) -> str:
        from authz.oauth import identity

        id_token = identity.mint_dev_id_token(self.rt.settings, self.rt.dev_keys, email)
        return self.token(
            {
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": id_token,
                "subject_token_type": ID_TOKEN,
                "resource": resource,
                "audience": AUDIENCE,
            }
        )

    def post(self, path: str, body: dict[str, Any], token: str) -> Any:
        r = self.app.test_client().post(
            path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code in (200, 201), r.get_json()
        return r.get_json()

    def active_grant(self) -> tuple[str, str, str]:
        """A caregiver with active portal access: (admin token, caregiver token, receiver id)."""
        admin = self.sign_in(f"provider:{self.provider_id}", "dr@bench.test")
        receiver = self.post("/v1/clients", {"first_name": "Sam", "client_type": "adult"}, admin)
        caregiver = self.post(
            "/v1/clients",
            {"first_name": "Jenna", "client_type": "adult", "email": "jenna@bench.test"},
            admin,
        )
        link = self.post(
            f"/v1/clients/{receiver['id']}/links",
            {
                "client_id": caregiver["id"],
                "relationship": "parent",
                "portal_access": {"enabled": True, "acknowledgement": "full access intended"},
            },
            admin,
        )
        token = self.sign_in(f"client:{caregiver['id']}", "jenna@bench.test")
        self.post(f"/v1/invites/{link['dev_invite_token']}/accept", {}, token)
        return admin, token, receiver["id"]

    def close(self) -> None:
        """Flush the decision log and release the store's connections."""
        self.rt.close()


def practice(database_url: str, issuer: str, scopes: list[str], **env: str) -> Practice:
    """Migrate the store at `database_url` and set up one practice with a portal backend."""
    from api import create_app
    from authz.accounts import orgs
    from authz.oauth import oauth_clients
    from authz.store import migrate
    from authz.tokens import keys

    settings = {
        "AUTHZ_DATABASE_URL": database_url,
        "AUTHZ_DEV_MODE": "1",
        "AUTHZ_ISSUER": issuer,
        "AUTHZ_PORTAL_URL": "http://portal.bench",
        **env,
    }
    app = create_app(settings)
    rt = app.extensions["authz"]
    migrate.upgrade(rt.store.engine)
    keys.ensure_key(rt.store, "bench", keys.ACCESS_TOKEN)
    keys.ensure_key(rt.store, "bench", keys.DEV_ISSUER)
    org = orgs.create_org(rt.store, "bench", "Bench practice", ["linked_portal_access"])
    prv = orgs.create_provider(rt.store, "bench", org["id"], "dr@bench.test", "Dr. Lee")
    oc = oauth_clients.create_client(rt.store, "bench", org["id"], [AUDIENCE], scopes, "portal")
    return Practice(app, settings, oc["client_id"], oc["client_secret"], prv["id"])


@contextmanager
def postgres_database(server_url: str, prefix: str = "authz_bench") -> Iterator[str]:
    """A new database on `server_url`'s server, dropped (and its sessions ended) afterwards.
    The test suite's own databases come from here too."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        server_url.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
