"""decisions: no index on owner_client_id

Revision ID: 9d3f6a2b7c41
Revises: 5b1e0c7d2a94
Create Date: 2026-11-22 03:30:00.000000

Every decision is appended to this table, and an index on the owner of the resource takes each
row at a random place: on a log of 200,000 rows with owners spread over 250,000 clients, that
one index made an insert cost 38 µs instead of 13, and the gap widens as the log grows (each
batch dirties a page of the index per row). The other indexes take rows in time order (`at`,
`seq`, the per-process `id` counter) or in a few places (`org_id`), so they stay cheap.

The access review of one client (`authz report access --client`) now reads its organization's
decisions through the `org_id` index and keeps that client's: slower on a large log, and run by
a reviewer now and then, not by every check.
"""

from __future__ import annotations

from alembic import op

revision = "9d3f6a2b7c41"
down_revision = "5b1e0c7d2a94"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_decisions_owner_client_id", table_name="decisions")


def downgrade() -> None:
    op.create_index("ix_decisions_owner_client_id", "decisions", ["owner_client_id"])
