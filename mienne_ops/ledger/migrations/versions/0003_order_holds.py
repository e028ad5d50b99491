"""Holds before dispatch: ``order_holds``, one row per (order, reason).

Revision ID: 0003_order_holds
Revises: 0002_typed_journeys
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_order_holds"
down_revision = "0002_typed_journeys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_holds",
        sa.Column("shopify_order_id", sa.String(32), primary_key=True),
        sa.Column("reason", sa.String(32), primary_key=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("release", sa.String(32), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True)),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("placed_by", sa.String(64), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True)),
        sa.Column("released_by", sa.String(64)),
        sa.Column("shopify_hold_ids", sa.JSON(none_as_null=True)),
    )
    op.create_index("ix_order_holds_active", "order_holds", ["released_at"])


def downgrade() -> None:
    op.drop_index("ix_order_holds_active", table_name="order_holds")
    op.drop_table("order_holds")
