"""links: why portal access was ended

Revision ID: c41e2a9b7d10
Revises: 9d3f6a2b7c41
Create Date: 2026-12-02 19:40:00.000000

The provider, an adult care receiver or the caregiver (renouncing) may end a grant with a reason;
the review shows who ended it, when and why.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c41e2a9b7d10"
down_revision = "9d3f6a2b7c41"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.add_column(sa.Column("revoked_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.drop_column("revoked_reason")
