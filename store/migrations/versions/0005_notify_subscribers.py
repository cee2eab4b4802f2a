"""notify subscribers: the URLs told about image pushes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 04:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_subscribers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_subscribers")),
    )
    with op.batch_alter_table("notify_subscribers", schema=None) as batch_op:
        batch_op.create_index("ix_notify_subscribers_type_id", ["type", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notify_subscribers", schema=None) as batch_op:
        batch_op.drop_index("ix_notify_subscribers_type_id")
    op.drop_table("notify_subscribers")
