"""decisions (SQLite): the chain's head moves once a write, not once a row

Revision ID: f4a8d2c6b913
Revises: e12b4d6f8a10
Create Date: 2026-12-04 04:15:00.000000

SQLite has no statement-level triggers, so `decisions_chain_head` (e7a3c1f04b92) ran an UPDATE of
`chain_heads` for every decision inserted: measured 3 µs of CPU a row, a third of the whole
insert. The decision log's writer, the one writer of the table, now moves the head in the same
transaction as its rows, once (`authz.policy.decision_log`), as PostgreSQL's statement trigger
does. A row inserted by anything else leaves the head behind, which `authz audit verify` reports
as a chain that does not end at its head. The changes chain keeps its trigger (a few rows a
request at most).
"""

from __future__ import annotations

from alembic import op

revision = "f4a8d2c6b913"
down_revision = "e12b4d6f8a10"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS decisions_chain_head")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TRIGGER decisions_chain_head AFTER INSERT ON decisions BEGIN "
            "UPDATE chain_heads SET seq = NEW.seq, hash = NEW.hash "
            "WHERE name = 'decisions' AND seq < NEW.seq; END"
        )
