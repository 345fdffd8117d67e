"""chain heads: where each hash chain must end

Revision ID: e7a3c1f04b92
Revises: e7a15c0de815
Create Date: 2026-12-03 07:10:00.000000

`chain_heads` holds the seq and hash of the newest row of each chain (`changes`, `decisions`).
A trigger on each table moves it forward on every insert, in the inserting transaction, so that
no writer has to remember to: `authz audit verify` then refuses a chain that stops short of its
head (a truncated or emptied table, a last row moved elsewhere). Whoever can run DDL on the
database can also move the head; signed checkpoints kept outside it (`authz audit checkpoint`)
are what catch that.

(The index for the replicas' catch-up, first planned here, is revision e7b3c5a1d902.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "e7a3c1f04b92"
down_revision = "e7a15c0de815"
branch_labels = None
depends_on = None

GENESIS = "0" * 64
CHAINS = {"changes": "audit_events", "decisions": "decisions"}

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION authz_chain_head() RETURNS trigger AS $$
BEGIN
    UPDATE chain_heads h SET seq = n.seq, hash = n.hash
    FROM (SELECT seq, hash FROM new_rows ORDER BY seq DESC LIMIT 1) n
    WHERE h.name = TG_ARGV[0] AND h.seq < n.seq;
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "chain_heads",
        sa.Column("name", sa.String(length=20), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
    )
    bind = op.get_bind()
    for name, table in CHAINS.items():
        tail = bind.execute(
            sa.text(f"SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1")  # noqa: S608
        ).first()
        bind.execute(
            sa.text("INSERT INTO chain_heads (name, seq, hash) VALUES (:n, :s, :h)"),
            {"n": name, "s": tail[0] if tail else 0, "h": tail[1] if tail else GENESIS},
        )
    if bind.dialect.name == "postgresql":
        # One update a statement (a COPY of a thousand decisions moves the head once).
        op.execute(_PG_FUNCTION)
        for name, table in CHAINS.items():
            op.execute(
                f"CREATE TRIGGER {table}_chain_head AFTER INSERT ON {table} "
                "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
                f"EXECUTE FUNCTION authz_chain_head('{name}')"
            )
    else:
        for name, table in CHAINS.items():
            sql = (
                f"CREATE TRIGGER {table}_chain_head AFTER INSERT ON {table} BEGIN "  # noqa: S608
                "UPDATE chain_heads SET seq = NEW.seq, hash = NEW.hash "
                f"WHERE name = '{name}' AND seq < NEW.seq; END"
            )
            op.execute(sql)


def downgrade() -> None:
    for table in CHAINS.values():
        op.execute(
            f"DROP TRIGGER IF EXISTS {table}_chain_head"
            + (f" ON {table}" if op.get_bind().dialect.name == "postgresql" else "")
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS authz_chain_head()")
    op.drop_table("chain_heads")
