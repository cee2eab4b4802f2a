"""release failures: the spec a scheduler rolled back, per proc

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 21:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("procs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("failed_spec_hash", sa.String(length=64), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("procs", schema=None) as batch_op:
        batch_op.drop_column("failed_spec_hash")
