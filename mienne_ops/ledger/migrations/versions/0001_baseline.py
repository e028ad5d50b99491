"""Baseline: the ledger as mienne-ops created it before migrations (inbox, bindings, orders,
exceptions, audit log, flow E's inventory tables).

A ledger made by the old ``create_all`` has no ``alembic_version`` table; upgrading it runs this
revision, which adopts the tables that exist and creates the missing ones (the inventory tables were
created lazily, on flow E's first run). The definitions below are frozen as of that schema: later
changes are later revisions, never edits here.

Revision ID: 0001_baseline
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

metadata = sa.MetaData()

inbox_events = sa.Table(
    "inbox_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("event_id", sa.String(128), nullable=False),
    sa.Column("topic", sa.String(64), nullable=False),
    sa.Column("resource_id", sa.String(64)),
    sa.Column("triggered_at", sa.String(40)),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.UniqueConstraint("source", "event_id", name="uq_inbox_source_event"),
)

bindings = sa.Table(
    "bindings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("entity", sa.String(32), nullable=False),
    sa.Column("key", sa.String(128), nullable=False),
    sa.Column("system", sa.String(32), nullable=False),
    sa.Column("remote_id", sa.String(128), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("entity", "key", "system", name="uq_binding_entity_key_system"),
    sa.Index("ix_binding_remote", "system", "entity", "remote_id"),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("shopify_order_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), index=True),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("lines", sa.JSON),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

exceptions = sa.Table(
    "exceptions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flow", sa.String(32), nullable=False),
    sa.Column("entity", sa.String(32), nullable=False),
    sa.Column("key", sa.String(128), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
    sa.Column("context", sa.JSON),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("flow", "entity", "key", name="uq_exception_flow_entity_key"),
    sa.Index("ix_exception_status", "status"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("system", sa.String(32), nullable=False),
    sa.Column("operation", sa.String(64), nullable=False),
    sa.Column("record", sa.String(128), nullable=False, index=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("remote_id", sa.String(128)),
    sa.Column("detail", sa.Text),
)


levels = sa.Table(
    "inventory_levels",
    metadata,
    sa.Column("source", sa.String(16), primary_key=True),
    sa.Column("location", sa.String(16), primary_key=True),
    sa.Column("sku", sa.String(128), primary_key=True),
    sa.Column("available", sa.Integer, nullable=False),
    sa.Column("detail", sa.JSON),
    sa.Column("as_of", sa.String(32), nullable=False),
)

items = sa.Table(
    "inventory_items",
    metadata,
    sa.Column("sku", sa.String(128), primary_key=True),
    sa.Column("shopify_item_id", sa.String(128), nullable=False),
    sa.Column("requires_components", sa.Boolean, nullable=False),
)

boms = sa.Table(
    "inventory_boms",
    metadata,
    sa.Column("kit_sku", sa.String(128), primary_key=True),
    sa.Column("component_sku", sa.String(128), primary_key=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("component_active", sa.Boolean, nullable=False),
)

pushes = sa.Table(
    "inventory_pushes",
    metadata,
    sa.Column("location", sa.String(16), primary_key=True),
    sa.Column("sku", sa.String(128), primary_key=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("as_of", sa.String(32), nullable=False),
    sa.Column("pushed_at", sa.String(32), nullable=False),
    sa.Column("idempotency_key", sa.String(64)),
)

snapshots = sa.Table(
    "inventory_snapshots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("location", sa.String(16), nullable=False),
    sa.Column("as_of", sa.String(32), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("changed", sa.Integer, nullable=False),
    sa.Column("stale", sa.Integer, nullable=False),
    sa.Column("taken_at", sa.String(32), nullable=False),
    sa.Index("ix_inventory_snapshot", "source", "location", "id"),
)

history = sa.Table(
    "inventory_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("location", sa.String(16), nullable=False),
    sa.Column("sku", sa.String(128), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("as_of", sa.String(32), nullable=False),
    sa.Index("ix_inventory_history_sku", "sku", "location", "id"),
)


def upgrade() -> None:
    metadata.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
