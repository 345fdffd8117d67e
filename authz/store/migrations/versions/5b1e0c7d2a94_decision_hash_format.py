"""decisions: hash_format column; drop the owner_client_id index

Revision ID: 5b1e0c7d2a94
Revises: 128db119d566
Create Date: 2026-11-22 00:10:00.000000

Rows written before this migration keep a NULL `hash_format` (the JSON-object form, 1), so
that their hashes still verify; the writer marks its rows 2 (see `authz.policy.decision_log`).
The owner_client_id index served no query: the audit API's client filter is an OR over three
columns and every decision query narrows by org_id (indexed) first, while each index costs
every one of the log's inserts.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "5b1e0c7d2a94"
down_revision = "128db119d566"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain DDL, not batch mode: on SQLite, ADD COLUMN and DROP INDEX need no table copy,
    # and the decisions table is the largest there is.
    op.add_column("decisions", sa.Column("hash_format", sa.SmallInteger(), nullable=True))
    op.drop_index("ix_decisions_owner_client_id", table_name="decisions")


def downgrade() -> None:
    # Rows of format 2 would no longer verify without the column: refuse rather than lose it.
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM decisions WHERE hash_format = 2 LIMIT 1")).first():
        raise RuntimeError("decisions of hash format 2 exist; this downgrade would orphan them")
    op.create_index("ix_decisions_owner_client_id", "decisions", ["owner_client_id"], unique=False)
    with op.batch_alter_table("decisions") as batch_op:
        batch_op.drop_column("hash_format")
