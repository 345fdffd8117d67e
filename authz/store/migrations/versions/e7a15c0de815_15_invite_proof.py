"""invites: proof of relationship, lockout and the caregiver's answer

Revision ID: e7a15c0de815
Revises: e7a4c2d91b36
Create Date: 2026-12-03 07:00:00.000000

The caregiver proves the relationship (the care receiver's date of birth) before accepting;
five wrong answers lock the invite. A declined invite is recorded with when it was declined.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "e7a15c0de815"
down_revision = "e7a4c2d91b36"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invites") as batch:
        batch.add_column(
            sa.Column("proof_failures", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("proved_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("declined_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invites") as batch:
        batch.drop_column("declined_at")
        batch.drop_column("locked_at")
        batch.drop_column("proved_at")
        batch.drop_column("proof_failures")
