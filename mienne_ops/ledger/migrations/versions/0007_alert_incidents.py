"""Alerts: one row per incident (its key unique), with what was sent where, so every alert is sent
once, its resolution once, and a crash between the two loses neither (see ledger/alerts.py).

Revision ID: 0007_alert_incidents
Revises: 0006_returns
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_alert_incidents"
down_revision = "0006_returns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("facts", sa.JSON, nullable=False),
        sa.Column("link", sa.Text, nullable=False),
        sa.Column("occurrences", sa.Integer, nullable=False),
        sa.Column("sent", sa.JSON, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("incident_key", name="uq_alert_incident_key"),
    )
    op.create_index("ix_alert_incidents_status", "alert_incidents", ["status"])


def downgrade() -> None:
    op.drop_index("ix_alert_incidents_status", table_name="alert_incidents")
    op.drop_table("alert_incidents")
