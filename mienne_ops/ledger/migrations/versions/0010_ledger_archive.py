"""The ledger archive (`ledger/archive.py`) and the indexes that keep the sensors' reads on live rows.

- ``archived_<table>`` for order journeys, shipments, order holds, exceptions, the audit log and
  the inbox: same columns as the live table plus ``archived_at``; finished orders' rows move there
  (`mienne-ops ledger archive`), so the live tables hold what is in flight and the last N days.
- ``ix_journey_stage_updated`` (stage, updated_at): the archive walks finished journeys by age
  (0009 indexed the stage alone, for the sensors and /metrics).
- ``ix_inbox_source_id`` (source, id): a source's newest event and the events after a sensor's
  cursor are index reads instead of scans of the whole inbox.

Revision ID: 0010_ledger_archive
Revises: 0009_journey_stage_times
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_ledger_archive"
down_revision = "0009_journey_stage_times"
branch_labels = None
depends_on = None

ARCHIVES = [
    "archived_order_journeys",
    "archived_shipments",
    "archived_order_holds",
    "archived_exceptions",
    "archived_audit_log",
    "archived_inbox_events",
]


def upgrade() -> None:
    op.create_index("ix_journey_stage_updated", "order_journeys", ["stage", "updated_at"])
    op.create_index("ix_inbox_source_id", "inbox_events", ["source", "id"])
    op.create_table(
        "archived_order_journeys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("shopify_order_id", sa.String(32)),
        sa.Column("name", sa.String(64)),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("lines", sa.JSON()),
        sa.Column("netsuite_sales_order_id", sa.String(32)),
        sa.Column("netsuite_tranid", sa.String(64)),
        sa.Column("dcl_order_number", sa.String(64)),
        sa.Column("stateset_order_id", sa.String(64)),
        sa.Column("stateset_shipped_at", sa.DateTime(timezone=True)),
        sa.Column("cash_sale_id", sa.String(32)),
        sa.Column("shipments_completed", sa.Integer()),
        sa.Column("imported_at", sa.DateTime(timezone=True)),
        sa.Column("invoice_id", sa.String(32)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sales_order_at", sa.DateTime(timezone=True)),
        sa.Column("dispatched_at", sa.DateTime(timezone=True)),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_archived_order_journeys_dcl_order_number", "archived_order_journeys", ["dcl_order_number"]
    )
    op.create_index("ix_archived_order_journeys_name", "archived_order_journeys", ["name"])
    op.create_index(
        "ix_archived_order_journeys_netsuite_sales_order_id",
        "archived_order_journeys",
        ["netsuite_sales_order_id"],
    )
    op.create_index(
        "ix_archived_order_journeys_shopify_order_id", "archived_order_journeys", ["shopify_order_id"]
    )
    op.create_table(
        "archived_shipments",
        sa.Column("shipment_key", sa.String(160), primary_key=True, autoincrement=False),
        sa.Column("dcl_order_number", sa.String(64)),
        sa.Column("item_fulfillment_id", sa.String(32)),
        sa.Column("on_shopify_at", sa.DateTime(timezone=True)),
        sa.Column("shopify_fulfillment_id", sa.String(128)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("carrier", sa.String(64)),
        sa.Column("tracking_numbers", sa.JSON()),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_archived_shipments_dcl_order_number", "archived_shipments", ["dcl_order_number"])
    op.create_table(
        "archived_order_holds",
        sa.Column("shopify_order_id", sa.String(32), primary_key=True, autoincrement=False),
        sa.Column("reason", sa.String(32), primary_key=True, autoincrement=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("release", sa.String(32), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True)),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("placed_by", sa.String(64), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True)),
        sa.Column("released_by", sa.String(64)),
        sa.Column("shopify_hold_ids", sa.JSON(none_as_null=True)),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "archived_exceptions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("flow", sa.String(32), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("context", sa.JSON()),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_archived_exceptions_key", "archived_exceptions", ["key"])
    op.create_table(
        "archived_audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("system", sa.String(32), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("record", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("remote_id", sa.String(128)),
        sa.Column("detail", sa.Text()),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_archived_audit_log_record", "archived_audit_log", ["record"])
    op.create_table(
        "archived_inbox_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(64)),
        sa.Column("triggered_at", sa.String(40)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_archived_inbox_events_resource_id", "archived_inbox_events", ["resource_id"])


def downgrade() -> None:
    for table in reversed(ARCHIVES):
        op.drop_table(table)  # drops its indexes with it
    op.drop_index("ix_inbox_source_id", table_name="inbox_events")
    op.drop_index("ix_journey_stage_updated", table_name="order_journeys")
