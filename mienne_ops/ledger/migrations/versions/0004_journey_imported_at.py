"""Flow A's completion marker on the journey: ``order_journeys.imported_at``.

The stage cannot tell whether flow A finished an order: flow B sends any approved sales order it
finds, so an import that stopped after the sales order (a crash before StateSet or the tag) was
moved on to *dispatched* and never finished. Journeys already imported keep their meaning: the
upgrade marks every Shopify journey past *received* as imported (at its last update).

Revision ID: 0004_journey_imported_at
Revises: 0003_order_holds
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_journey_imported_at"
down_revision = "0003_order_holds"
branch_labels = None
depends_on = None

IMPORTED = ("in_netsuite", "dispatched", "partially_shipped", "shipped")


def upgrade() -> None:
    op.add_column("order_journeys", sa.Column("imported_at", sa.DateTime(timezone=True)))
    journeys = sa.table(
        "order_journeys",
        sa.column("shopify_order_id"),
        sa.column("stage"),
        sa.column("imported_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        sa.update(journeys)
        .where(journeys.c.shopify_order_id.is_not(None), journeys.c.stage.in_(IMPORTED))
        .values(imported_at=journeys.c.updated_at)
    )


def downgrade() -> None:
    with op.batch_alter_table("order_journeys") as batch:
        batch.drop_column("imported_at")
