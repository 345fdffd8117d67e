"""Create or upgrade the schema with Alembic; a second run is a no-op."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from authz.store.audit import GENESIS
from authz.store.models import ChainHead, State

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> list[str]:
    """Apply pending migrations; return the revisions applied (empty when up to date)."""
    cfg = _config(engine)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.begin() as conn:
        before = MigrationContext.configure(conn).get_current_revision()
    if before == head:
        applied: list[str] = []
    else:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        applied = [str(head)]
    with engine.begin() as conn:
        if conn.execute(select(State.id)).first() is None:
            conn.execute(insert(State).values(id=1, revision=0))
        have = set(conn.scalars(select(ChainHead.name)))
        for name in ("changes", "decisions"):
            if name not in have:  # an emptied store (tests truncate every table)
                conn.execute(insert(ChainHead).values(name=name, seq=0, hash=GENESIS))
    return applied


def current(engine: Engine) -> str | None:
    """The schema revision the database is at."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def autogenerate(engine: Engine, message: str) -> None:
    """Write a new migration from the models (developers only)."""
    cfg = _config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)
