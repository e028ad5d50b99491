"""Flow F: returns, from the label to the refund (one row per return, keyed by its request).

A return lives for days or weeks; its status, deadline, reminders and every id its steps made are
here, so a restart or a redeploy in the middle of the wait loses nothing (see ledger/returns.py).

Revision ID: 0006_returns
Revises: 0005_service_requests
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_returns"
down_revision = "0005_service_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "returns",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("return_key", sa.String(200), nullable=False),
        sa.Column("request_id", sa.Integer),
        sa.Column("shopify_order_id", sa.String(32), nullable=False),
        sa.Column("order_name", sa.String(64)),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("value", sa.String(24), nullable=False),
        sa.Column("refunded", sa.String(24), nullable=False),
        sa.Column("country", sa.String(2)),
        sa.Column("rma_number", sa.String(32)),
        sa.Column("instant", sa.Boolean, nullable=False),
        sa.Column("label_sent_at", sa.DateTime(timezone=True)),
        sa.Column("deadline_at", sa.DateTime(timezone=True)),
        sa.Column("reminders_sent", sa.Integer, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True)),
        sa.Column("refunded_at", sa.DateTime(timezone=True)),
        sa.Column("outcome", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("return_key", name="uq_return_key"),
        sa.UniqueConstraint("rma_number", name="uq_return_rma_number"),
    )
    op.create_index("ix_returns_order", "returns", ["shopify_order_id"])
    op.create_index("ix_returns_status", "returns", ["status"])


def downgrade() -> None:
    op.drop_index("ix_returns_status", table_name="returns")
    op.drop_index("ix_returns_order", table_name="returns")
    op.drop_table("returns")
