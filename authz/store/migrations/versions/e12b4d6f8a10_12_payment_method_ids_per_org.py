"""payment_methods: the key is (org_id, id), so payment-method ids are each organization's own

Revision ID: e12b4d6f8a10
Revises: e17a5c3d9b21
Create Date: 2026-12-03 09:30:00.000000

With `id` alone as the key, registering an id another organization already used answered 409 and
so told the caller that the id exists elsewhere (issue 12, finding 9). Rows are kept as they are:
every existing id is unique, so it is unique within its organization too.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "e12b4d6f8a10"
down_revision = "e17a5c3d9b21"
branch_labels = None
depends_on = None

TABLE = "payment_methods"
# PostgreSQL's own name for the table's primary key; SQLite keeps it in the table's DDL.
PK = "payment_methods_pkey"


def _table(pk_columns: list[str]) -> sa.Table:
    """The table as it stands (for SQLite's copy-and-move, which cannot name a reflected,
    unnamed primary key in order to drop it)."""
    return sa.Table(
        TABLE,
        sa.MetaData(),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(40), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("client_id", sa.String(40), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(*pk_columns, name=PK),
        sa.Index("ix_payment_methods_client_id", "client_id"),
    )


def _move_key(old: list[str], new: list[str]) -> None:
    # PostgreSQL alters the table in place (its key is named `PK`, whatever created it);
    # SQLite copies the rows into a table with the new key and moves it into place.
    name = sa.inspect(op.get_bind()).get_pk_constraint(TABLE).get("name") or PK
    with op.batch_alter_table(TABLE, copy_from=_table(old)) as batch:
        batch.drop_constraint(name, type_="primary")
        batch.create_primary_key(PK, new)


def upgrade() -> None:
    _move_key(["id"], ["org_id", "id"])


def downgrade() -> None:
    twice = sa.text("SELECT id FROM payment_methods GROUP BY id HAVING COUNT(*) > 1 LIMIT 1")
    shared = op.get_bind().execute(twice).scalar()
    if shared is not None:
        raise RuntimeError(
            f"payment method id {shared} is used by more than one organization: the older "
            "schema keys payment methods by id alone, so it cannot hold both"
        )
    _move_key(["org_id", "id"], ["id"])
