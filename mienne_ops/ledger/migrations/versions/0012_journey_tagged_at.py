"""Flow A's tag confirmed on the journey: ``order_journeys.tagged_at`` (and its archive twin).

An import that stopped between the Shopify tag and its completion marker (``imported_at``) left no
trace of the tag in the ledger: `mienne-ops order status` could not tell a missing tag from one that
is there. The tag is now noted right after Shopify confirmed it. Journeys already imported keep
their meaning: the upgrade marks them tagged when they were imported (flow A tagged before it
finished).

Revision ID: 0012_journey_tagged_at
Revises: 0010_ledger_archive
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_journey_tagged_at"
down_revision = "0010_ledger_archive"
branch_labels = None
depends_on = None

TABLES = ("order_journeys", "archived_order_journeys")


def upgrade() -> None:
    for name in TABLES:
        op.add_column(name, sa.Column("tagged_at", sa.DateTime(timezone=True)))
        journeys = sa.table(
            name,
            sa.column("imported_at", sa.DateTime(timezone=True)),
            sa.column("tagged_at", sa.DateTime(timezone=True)),
        )
        op.execute(
            sa.update(journeys)
            .where(journeys.c.imported_at.is_not(None))
            .values(tagged_at=journeys.c.imported_at)
        )


def downgrade() -> None:
    for name in TABLES:
        with op.batch_alter_table(name) as batch:
            batch.drop_column("tagged_at")
