"""Alembic environment: the URL and connection come from `authz.store.migrate`."""

from __future__ import annotations

from alembic import context

from authz.store.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the alembic CLI takes this path
    raise RuntimeError("run migrations through `authz init`")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
