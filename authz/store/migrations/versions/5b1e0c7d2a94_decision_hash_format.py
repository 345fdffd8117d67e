"""decisions: hash_format column

Revision ID: 5b1e0c7d2a94
Revises: 128db119d566
Create Date: 2026-11-22 00:10:00.000000

Rows written before this migration keep a NULL `hash_format` (the JSON-object form, 1), so
that their hashes still verify; the writer marks its rows 2 (see `authz.policy.decision_log`).
The owner_client_id index stays, although each index costs every insert of the log: the access
review of one client (`authz report access --client`) reads that client's decisions by it, over
up to six years of an organization's decisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "5b1e0c7d2a94"
down_revision = "128db119d566"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain DDL, not batch mode: on SQLite, ADD COLUMN needs no table copy, and the decisions
    # table is the largest there is.
    op.add_column("decisions", sa.Column("hash_format", sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    # Rows of format 2 would no longer verify without the column: refuse rather than lose it.
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM decisions WHERE hash_format = 2 LIMIT 1")).first():
        raise RuntimeError("decisions of hash format 2 exist; this downgrade would orphan them")
    with op.batch_alter_table("decisions") as batch_op:
        batch_op.drop_column("hash_format")
