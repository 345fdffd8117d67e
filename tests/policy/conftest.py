"""Store fixtures: every store-backed policy test runs on SQLite and, when
`AUTHZ_TEST_POSTGRES_URL` is set, on PostgreSQL (a fresh database, dropped afterwards)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from authz.store import migrate
from authz.store.db import Store, make_engine

PG_URL = os.environ.get("AUTHZ_TEST_POSTGRES_URL")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not PG_URL, reason="AUTHZ_TEST_POSTGRES_URL is not set"),
    ),
]


def _pg_admin_url(url: str) -> str:
    return "postgresql+psycopg://" + url.removeprefix("postgresql://").removeprefix(
        "postgresql+psycopg://"
    )


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'authz.db'}")
        migrate.upgrade(engine)
        yield Store(engine)
        engine.dispose()
        return
    assert PG_URL
    name = f"authz_policy_{secrets.token_hex(4)}"
    admin = create_engine(_pg_admin_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_URL.rsplit("/", 1)[0]
    engine = make_engine(f"{base}/{name}")
    try:
        migrate.upgrade(engine)
        yield Store(engine)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
