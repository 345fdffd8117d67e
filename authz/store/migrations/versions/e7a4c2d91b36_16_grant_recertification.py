"""links: recertification (a review-by date; who last re-approved the grant, when and why)

Revision ID: e7a4c2d91b36
Revises: e7b3c5a1d902
Create Date: 2026-12-03 07:20:00.000000

Every active grant must be re-approved by its review-by date or it lapses. Grants active before
this revision get a review-by date one policy period (policies/recertification.yaml, 365 days by
default) after they were last activated or acknowledged, and never sooner than 30 days after the
upgrade: an old grant is not cut off by the upgrade itself, and its first reminder goes out.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "e7a4c2d91b36"
down_revision = "e7b3c5a1d902"
branch_labels = None
depends_on = None

# The period as of this revision; later changes of the policy apply from the next re-approval.
_PERIOD = dt.timedelta(days=365)
#: The least time an existing grant has to be re-approved after the upgrade (the first reminder).
_GRACE = dt.timedelta(days=30)


def _aware(value: object) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def upgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.add_column(sa.Column("review_by", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("recertified_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("recertified_by", sa.String(80), nullable=True))
        batch.add_column(sa.Column("recertified_note", sa.Text(), nullable=True))
    links = sa.table(
        "links",
        sa.column("id", sa.String),
        sa.column("portal_status", sa.String),
        sa.column("activated_at", sa.DateTime(timezone=True)),
        sa.column("acknowledged_at", sa.DateTime(timezone=True)),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("review_by", sa.DateTime(timezone=True)),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(
            links.c.id, links.c.activated_at, links.c.acknowledged_at, links.c.created_at
        ).where(links.c.portal_status == "active")
    ).all()
    earliest = dt.datetime.now(dt.UTC) + _GRACE
    for lid, activated, acknowledged, created in rows:
        since = _aware(activated) or _aware(acknowledged) or _aware(created)
        if since is not None:
            review_by = max(since + _PERIOD, earliest)
            conn.execute(links.update().where(links.c.id == lid).values(review_by=review_by))


def downgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.drop_column("recertified_note")
        batch.drop_column("recertified_by")
        batch.drop_column("recertified_at")
        batch.drop_column("review_by")
