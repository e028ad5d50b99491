"""Each DCL shipment's carrier and tracking numbers on its ledger row (flow C records them).

`mienne-ops order status` shows an order's shipments with their tracking from the ledger alone;
before this, the numbers lived only in DCL and Shopify. Both columns are nullable: shipments
settled before the upgrade keep no tracking (status says "not recorded").

Revision ID: 0008_shipment_tracking
Revises: 0007_alert_incidents
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_shipment_tracking"
down_revision = "0007_alert_incidents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("shipments", sa.Column("carrier", sa.String(64)))
    op.add_column("shipments", sa.Column("tracking_numbers", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("shipments") as batch:
        batch.drop_column("tracking_numbers")
        batch.drop_column("carrier")
