"""Flow F: customers' and operators' requests (cancel, refund) and the invoice a journey was billed by.

``service_requests`` holds one row per request, keyed by its idempotency key (a ticket, a Shopify
refund, an operator's command), so a request delivered twice is handled once; its status is the
approval queue. ``order_journeys.invoice_id`` is the invoice flow C bills with when the rules bill by
invoice instead of cash sale (a refund then books a credit memo and a customer refund).

Revision ID: 0005_service_requests
Revises: 0004_journey_imported_at
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_service_requests"
down_revision = "0004_journey_imported_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("order_journeys") as batch:
        batch.add_column(sa.Column("invoice_id", sa.String(32)))
        batch.create_unique_constraint("uq_journey_invoice", ["invoice_id"])
    op.create_table(
        "service_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("ticket_system", sa.String(16)),
        sa.Column("ticket_id", sa.String(32)),
        sa.Column("shopify_order_id", sa.String(32)),
        sa.Column("order_name", sa.String(64)),
        sa.Column("requester", sa.String(254)),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("decision", sa.JSON),
        sa.Column("outcome", sa.JSON),
        sa.Column("decided_by", sa.String(64)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("request_key", name="uq_service_request_key"),
    )
    op.create_index("ix_service_requests_order", "service_requests", ["shopify_order_id"])
    op.create_index("ix_service_requests_status", "service_requests", ["status"])


def downgrade() -> None:
    op.drop_index("ix_service_requests_status", table_name="service_requests")
    op.drop_index("ix_service_requests_order", table_name="service_requests")
    op.drop_table("service_requests")
    with op.batch_alter_table("order_journeys") as batch:
        batch.drop_constraint("uq_journey_invoice", type_="unique")
        batch.drop_column("invoice_id")
