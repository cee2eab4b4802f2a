"""portal bindings: which client app uses which portal of which service

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 03:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_bindings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_app_id", sa.Integer(), nullable=False),
        sa.Column("service_app_id", sa.Integer(), nullable=False),
        sa.Column("portal", sa.String(length=200), nullable=False),
        sa.Column("service_name", sa.String(length=200), nullable=False),
        sa.Column("deployed", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_app_id"],
            ["apps.id"],
            name=op.f("fk_portal_bindings_client_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["service_app_id"],
            ["apps.id"],
            name=op.f("fk_portal_bindings_service_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_bindings")),
        sa.UniqueConstraint(
            "client_app_id", "service_app_id", "portal", name="uq_portal_bindings_client_portal"
        ),
    )


def downgrade() -> None:
    op.drop_table("portal_bindings")
