"""Fixtures: every store test runs on SQLite and on PostgreSQL (when AUTHZ_TEST_POSTGRES_URL)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from authz.base import clock
from authz.store import migrate
from authz.store.db import make_engine
from authz.store.models import Base
from authz.tokens import keys
from bench.common import postgres_database
from tests.helpers import Api

PG_ENV = "AUTHZ_TEST_POSTGRES_URL"


def _pg_admin_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url and os.environ.get("CI") == "true":
        raise RuntimeError(f"{PG_ENV} must be set in CI: PostgreSQL tests never skip there")
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is much faster)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of this test process, migrated once, dropped at the end."""
    admin_url = _pg_admin_url()
    if not admin_url:
        pytest.skip(f"{PG_ENV} not set")
    with postgres_database(admin_url, prefix="authz_test") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


def _truncate(url: str) -> None:
    # The database belongs to this test process, so whatever is still connected to it is left
    # over from an earlier test (a server thread, a killed replica): it must not hold the locks
    # TRUNCATE needs. No statement timeout here: a loaded CI machine can be slow to truncate.
    engine = make_engine(url, pool_timeout=10, statement_timeout_ms=0)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    migrate.upgrade(engine)  # re-creates the state row
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated, empty store URL: SQLite and PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "authz.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_database")
        _truncate(url)
        yield url


@pytest.fixture
def settings_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "AUTHZ_DATABASE_URL": db_url,
        # A test's own spool: a PostgreSQL database is reused (truncated) by the tests of one
        # process, and what an earlier test left spooled would be replayed into the next one.
        "AUTHZ_DECISION_SPOOL_DIR": str(tmp_path / "decision-spool"),
        "AUTHZ_DEV_MODE": "1",
        "AUTHZ_ISSUER": "http://authz.test",
        "AUTHZ_PORTAL_URL": "http://portal.test",
    }


@pytest.fixture
def app(settings_env: dict[str, str]) -> Iterator[Any]:
    from api import create_app

    application = create_app(settings_env)
    rt = application.extensions["authz"]
    keys.ensure_key(rt.store, "test", keys.ACCESS_TOKEN)
    keys.ensure_key(rt.store, "test", keys.DEV_ISSUER)
    yield application
    rt.close()
    clock.reset()


@pytest.fixture
def api(app: Any) -> Api:
    """The HTTP API with a demo organization, a provider, a reviewer and a portal backend."""
    return Api.bootstrap(app)
