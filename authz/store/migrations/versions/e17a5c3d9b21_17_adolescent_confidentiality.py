"""organizations get a jurisdiction; minors' consents to share sensitivity categories

Revision ID: e17a5c3d9b21
Revises: e7a3c1f04b92
Create Date: 2026-12-03 07:50:00.000000

The jurisdiction picks the organization's row of policies/age_bands.yaml; category_shares holds
an adolescent's consent to share a category (PSY, SEX, ...) with a named caregiver.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "e17a5c3d9b21"
down_revision = "e7a3c1f04b92"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(sa.Column("jurisdiction", sa.String(16), nullable=True))
    op.create_table(
        "category_shares",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("org_id", sa.String(40), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("minor_id", sa.String(40), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("caregiver_id", sa.String(40), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("label", sa.String(8), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.String(200), nullable=True),
        sa.Column("withdrawn_statement", sa.Text(), nullable=True),
    )
    op.create_index("ix_category_shares_org_id", "category_shares", ["org_id"])
    op.create_index("ix_category_shares_minor_id", "category_shares", ["minor_id"])


def downgrade() -> None:
    op.drop_index("ix_category_shares_minor_id", "category_shares")
    op.drop_index("ix_category_shares_org_id", "category_shares")
    op.drop_table("category_shares")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("jurisdiction")
