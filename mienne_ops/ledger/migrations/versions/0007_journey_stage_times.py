"""When an order's sales order was made and when DCL got it: ``order_journeys.sales_order_at`` and
``dispatched_at``, for the SLOs (README "Metrics and SLOs").

``updated_at`` moves with every write and ``imported_at`` waits for StateSet and the tag, so neither
says when the order reached NetSuite or DCL. Both columns are set once, where the sales order is
bound and where flow B records the dispatch. Journeys from before this revision keep NULL: no time
is invented for them, and the SLOs leave them out.

Revision ID: 0007_journey_stage_times
Revises: 0006_returns
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_journey_stage_times"
down_revision = "0006_returns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("order_journeys", sa.Column("sales_order_at", sa.DateTime(timezone=True)))
    op.add_column("order_journeys", sa.Column("dispatched_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("order_journeys") as batch:
        batch.drop_column("dispatched_at")
        batch.drop_column("sales_order_at")
