"""Payment-method ids are each organization's own (issue 12, finding 9): registering an id another
organization uses reveals nothing, and a check about `pm_x` in one organization never reads
another organization's `pm_x`. SQLite and PostgreSQL, through the HTTP API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert, inspect, select

from authz.accounts import clients, orgs, payments
from authz.base.errors import Conflict
from authz.compliance import audit_log
from authz.policy import vocabulary
from authz.policy.engine import Engine, PolicySet
from authz.policy.facts import FactIndex
from authz.store import migrate
from authz.store.audit import GENESIS
from authz.store.db import Store, make_engine
from authz.store.models import ChainHead, PaymentMethod, State
from bench.common import postgres_database
from tests.compliance.cli import authz
from tests.compliance.test_policy_store import enforcer_from
from tests.conftest import PG_ENV
from tests.helpers import Api


def _register(api: Api, client_id: str, pm: str) -> Any:
    return api.call("POST", f"/v1/clients/{client_id}/payment-methods", {"id": pm, "label": "c"})


def _person(api: Api, first: str, email: str) -> tuple[str, str]:
    """A client of `api`'s organization and its own signed-in token."""
    cid = api.client(first, "adult", email)["id"]
    return cid, api.sign_in(f"client:{cid}", email)


def _allowed(
    api: Api, token: str, action: str, owner: str, pm: str, service: str | None = None
) -> bool:
    """One check through `/v1/access/check` by `api`'s organization's portal backend."""
    if vocabulary.ACTIONS[action].payment == "resource":
        body: dict[str, Any] = {"resource": {"type": "payment_method", "id": pm, "owner": owner}}
    else:
        body = {
            "resource": {"type": "invoice", "id": "inv_1", "owner": owner},
            "context": {"payment_method": pm},
        }
    got = api.ok(
        "POST",
        "/v1/access/check",
        {"token": token, "action": action, **body},
        token=service or api.service_token("authz:check"),
    )
    return bool(got["allowed"])


def test_another_organizations_id_registers_and_one_organization_keeps_ids_unique(
    app: Any, api: Api
) -> None:
    other = Api.bootstrap(app, name="Other")
    sam = api.client("Sam")["id"]
    zoe, yan = other.client("Zoe")["id"], other.client("Yan")["id"]
    assert _register(api, sam, "pm_x").status_code == 201
    # Before: 409 "already registered", which told Other that pm_x exists somewhere else.
    r = _register(other, zoe, "pm_x")
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["client_id"] == zoe
    # Within one organization an id still names one payment method, owned by one client.
    for org, cid in ((api, sam), (other, zoe), (other, yan)):
        dup = _register(org, cid, "pm_x")
        assert dup.status_code == 409 and dup.mimetype == "application/problem+json"
    listed = other.ok("GET", f"/v1/clients/{zoe}/payment-methods")["items"]
    assert listed == [{"id": "pm_x", "client_id": zoe, "label": "c"}]
    assert other.ok("GET", f"/v1/clients/{yan}/payment-methods")["items"] == []
    mine = api.ok("GET", f"/v1/clients/{sam}/payment-methods")["items"]
    assert [p["client_id"] for p in mine] == [sam]


def test_a_check_reads_the_payment_methods_of_its_own_organization_only(
    app: Any, api: Api, db_url: str
) -> None:
    other = Api.bootstrap(app, name="Other")
    sam, sam_token = _person(api, "Sam", "sam@one.test")
    zoe, zoe_token = _person(other, "Zoe", "zoe@two.test")
    yan, yan_token = _person(other, "Yan", "yan@two.test")
    # pm_x in both organizations (Sam's first, then Zoe's: the second must not replace the
    # first in the facts); pm_a only in the first, pm_b only in the second.
    for org, cid, pm in ((api, sam, "pm_x"), (other, zoe, "pm_x"), (api, sam, "pm_a")):
        assert _register(org, cid, pm).status_code == 201
    assert _register(other, zoe, "pm_b").status_code == 201
    one, two = api.service_token("authz:check"), other.service_token("authz:check")

    for action in ("payment_method.use", "payment_method.charge", "invoice.pay"):
        # Each owner pays with its own pm_x: decided by its own organization's ownership.
        assert _allowed(api, sam_token, action, sam, "pm_x", one), action
        assert _allowed(other, zoe_token, action, zoe, "pm_x", two), action
        # Yan (Other) has no pm_x: Zoe's in Other and Sam's in the first do not make it his.
        assert not _allowed(other, yan_token, action, yan, "pm_x", two), action
        # An id only the other organization holds belongs to nobody here, in both directions.
        assert not _allowed(other, zoe_token, action, zoe, "pm_a", two), action
        assert not _allowed(api, sam_token, action, sam, "pm_b", one), action
        # And nothing crosses organizations: neither can act on the other's client.
        assert not _allowed(api, sam_token, action, zoe, "pm_x", one), action
        assert not _allowed(other, zoe_token, action, sam, "pm_x", two), action

    # A fresh read of the store (a restart, another replica) decides the same.
    engine = Engine(PolicySet.load(), FactIndex.load(api.rt.store))
    for owner, pm, expected in (
        (sam, "pm_x", True),
        (zoe, "pm_x", True),
        (yan, "pm_x", False),
        (zoe, "pm_a", False),
        (sam, "pm_b", False),
    ):
        asked = (f"client:{owner}", owner, "payment_method.use", pm, "")
        assert engine.evaluate(*asked)[0] is expected, asked

    # The export of both organizations loads into stock pycasbin and decides the same as the
    # engine, although both hold a pm_x: the g2 pair names the client, hence the organization.
    done = authz(db_url, "grants", "export", "--format", "casbin")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"g2, pm_x, {sam}" in lines and f"g2, pm_x, {zoe}" in lines
    enforcer = enforcer_from(lines)
    for sub in (sam, zoe, yan):
        for owner in (sam, zoe, yan):
            for pm in ("pm_x", "pm_a", "pm_b", ""):
                for action in ("payment_method.use", "invoice.pay"):
                    asked = (f"client:{sub}", owner, action, pm, "")
                    assert enforcer.enforce(*asked) == engine.evaluate(*asked)[0], asked
    only_other = authz(db_url, "grants", "export", "--format", "casbin", "--org", other.org_id)
    g2 = [ln for ln in only_other.stdout.splitlines() if ln.startswith("g2, ")]
    assert g2 == [f"g2, pm_b, {zoe}", f"g2, pm_x, {zoe}"]


# -- the migration ---------------------------------------------------------------------------

BEFORE = "e17a5c3d9b21"  # the head before payment-method ids became per organization


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own (no schema): SQLite and PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    admin_url = os.environ.get(PG_ENV)
    if not admin_url:
        pytest.skip(f"{PG_ENV} not set")
    with postgres_database(admin_url, prefix="authz_test") as url:
        yield url


def _at(engine: Any, revision: str, down: bool = False) -> None:
    cfg = migrate._config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def _rows(store: Store) -> list[tuple[Any, ...]]:
    with store.read() as session:
        return sorted(
            tuple(r)
            for r in session.execute(
                select(
                    PaymentMethod.org_id,
                    PaymentMethod.id,
                    PaymentMethod.client_id,
                    PaymentMethod.label,
                    PaymentMethod.created_at,
                )
            )
        )


def test_the_migration_keeps_every_payment_method_and_scopes_ids(empty_url: str) -> None:
    engine = make_engine(empty_url)
    _at(engine, BEFORE)
    with engine.begin() as conn:  # what `authz init` writes beside the schema
        conn.execute(insert(State).values(id=1, revision=0))
        if conn.execute(select(ChainHead.name)).first() is None:
            for name in ("changes", "decisions"):
                conn.execute(insert(ChainHead).values(name=name, seq=0, hash=GENESIS))
    store = Store(engine)
    one = orgs.create_org(store, "test", "One", [])["id"]
    two = orgs.create_org(store, "test", "Two", [])["id"]
    sam = clients.create_client(store, "test", one, {"first_name": "Sam", "client_type": "adult"})
    zoe = clients.create_client(store, "test", two, {"first_name": "Zoe", "client_type": "adult"})
    for org, cid, pm in ((one, sam, "pm_x"), (one, sam, "pm_y"), (two, zoe, "pm_z")):
        payments.register(store, "test", org, cid["id"], {"id": pm, "label": f"card {pm}"})
    before = _rows(store)
    assert len(before) == 3

    assert migrate.upgrade(engine) == [migrate.current(engine)]  # e12b4d6f8a10 and on
    assert migrate.upgrade(engine) == []
    assert _rows(store) == before  # nothing lost, nothing changed
    key = inspect(engine).get_pk_constraint("payment_methods")["constrained_columns"]
    assert key == ["org_id", "id"]
    assert "ix_payment_methods_client_id" in {
        ix["name"] for ix in inspect(engine).get_indexes("payment_methods")
    }
    assert audit_log.verify(store)["ok"]
    # The old rows decide as before, and Two may now use One's ids for its own client.
    payments.register(store, "test", two, zoe["id"], {"id": "pm_x", "label": "Two's"})
    with pytest.raises(Conflict):
        payments.register(store, "test", one, sam["id"], {"id": "pm_x", "label": "again"})
    facts = FactIndex.load(store)
    assert facts.pm_belongs("pm_x", sam["id"]) and facts.pm_belongs("pm_x", zoe["id"])
    assert facts.pm_belongs("pm_y", sam["id"]) and not facts.pm_belongs("pm_y", zoe["id"])
    assert facts.pm_belongs("pm_z", zoe["id"]) and not facts.pm_belongs("pm_z", sam["id"])
    # The older schema cannot hold an id twice: going back says so instead of failing midway.
    with pytest.raises(RuntimeError, match="pm_x is used by more than one organization"):
        _at(engine, BEFORE, down=True)
    engine.dispose()
