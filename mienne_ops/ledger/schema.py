"""The ledger's tables (SQLAlchemy Core): mienne-ops's own durable memory, one metadata.

The database is built and changed only by the Alembic revisions in `ledger/migrations/`; a change
here needs a new revision (a test compares the two on SQLite and PostgreSQL).

- ``inbox_events``: every verified webhook, unique per (source, event id), so a duplicate delivery
  is stored once; sensors drain it by its increasing ``id``.
- ``bindings``: remote-id maps with no journey of their own (a Shopify customer's NetSuite entity id;
  OCA's binder). Unique per (entity, key, system): the database, not a Python check, stops two runs
  from binding twice.
- ``order_journeys``: one row per order — its ids in Shopify, NetSuite (sales order, tranId, cash
  sale), DCL (order number) and StateSet, its stage and markers (StateSet shipped, shipments
  completed). Each remote id is unique: no two journeys can claim one record.
- ``shipments``: each DCL shipment's carrier, tracking numbers, item fulfillment and whether its
  tracking is on Shopify (C).
- ``inbound_orders``, ``asn_versions``, ``asn_replacements``, ``receipts``: flow D's PO / TO ↔ DCL
  PO number, every announcement sent, cancel-and-replace confirmations, receipts posted.
- ``order_holds``: holds before dispatch, one row per (order, reason): since when, by whom, what
  releases it, when it was released and by whom, and the Shopify fulfillment-order holds mirroring it.
- ``exceptions``: the quarantine. One row per (flow, entity, key): open / retrying / resolved.
- ``audit_log``: every external write we made or attempted (system, operation, record, outcome).
"""

from __future__ import annotations

import sqlalchemy as sa

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
    # The sensors' reads: a source's newest id and the events after a cursor; an order's earlier
    # deliveries (staleness). Without them each tick scans the whole inbox.
    sa.Index("ix_inbox_source_id", "source", "id"),
    sa.Index("ix_inbox_source_resource", "source", "resource_id"),
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

order_journeys = sa.Table(
    "order_journeys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("shopify_order_id", sa.String(32)),  # None: a sales order that did not come from Shopify
    sa.Column("name", sa.String(64), index=True),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("lines", sa.JSON),
    sa.Column("netsuite_sales_order_id", sa.String(32)),
    sa.Column("netsuite_tranid", sa.String(64)),
    sa.Column("dcl_order_number", sa.String(64)),
    sa.Column("stateset_order_id", sa.String(64)),
    sa.Column("stateset_shipped_at", sa.DateTime(timezone=True)),
    sa.Column("cash_sale_id", sa.String(32)),
    sa.Column("shipments_completed", sa.Integer),
    sa.Column("imported_at", sa.DateTime(timezone=True)),  # flow A finished every step
    sa.Column("tagged_at", sa.DateTime(timezone=True)),  # Shopify confirmed flow A's tag (0012)
    sa.Column("invoice_id", sa.String(32)),  # billed by invoice instead of cash sale (flow C)
    sa.Column("sales_order_at", sa.DateTime(timezone=True)),  # the sales order was bound (A)
    sa.Column("dispatched_at", sa.DateTime(timezone=True)),  # DCL first accepted the order (B)
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # Each remote record belongs to one journey: the database refuses a second (NULLs are free).
    sa.UniqueConstraint("shopify_order_id", name="uq_journey_shopify_order"),
    sa.UniqueConstraint("netsuite_sales_order_id", name="uq_journey_sales_order"),
    sa.UniqueConstraint("dcl_order_number", name="uq_journey_dcl_order"),
    sa.UniqueConstraint("invoice_id", name="uq_journey_invoice"),
    sa.Index("ix_journey_stage", "stage"),
    sa.Index("ix_journey_sales_order_at", "sales_order_at"),
    sa.Index("ix_journey_dispatched_at", "dispatched_at"),
    # The archive walks finished journeys by stage and age (ledger archive).
    sa.Index("ix_journey_stage_updated", "stage", "updated_at"),
)

shipments = sa.Table(
    "shipments",
    metadata,
    sa.Column("shipment_key", sa.String(160), primary_key=True),
    sa.Column("dcl_order_number", sa.String(64), index=True),
    sa.Column("item_fulfillment_id", sa.String(32)),
    sa.Column("on_shopify_at", sa.DateTime(timezone=True)),
    sa.Column("shopify_fulfillment_id", sa.String(128)),
    # What DCL shipped it with (flow C records it with the shipment): `order status` shows it.
    sa.Column("carrier", sa.String(64)),
    sa.Column("tracking_numbers", sa.JSON),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_shipment_on_shopify_at", "on_shopify_at"),
)

inbound_orders = sa.Table(
    "inbound_orders",
    metadata,
    sa.Column("netsuite_order_id", sa.String(32), primary_key=True),
    sa.Column("dcl_po_number", sa.String(64)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("dcl_po_number", name="uq_inbound_dcl_po"),
)

asn_versions = sa.Table(
    "asn_versions",
    metadata,
    sa.Column("netsuite_order_id", sa.String(32), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("reference", sa.String(64), nullable=False),
    sa.Column("units", sa.Integer, nullable=False),
    sa.Column("dcl_po_number", sa.String(64)),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
)

asn_replacements = sa.Table(
    "asn_replacements",
    metadata,
    sa.Column("netsuite_order_id", sa.String(32), primary_key=True),
    sa.Column("old_dcl_po_number", sa.String(64), primary_key=True),
    sa.Column("cancel_confirmed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("new_dcl_po_number", sa.String(64)),
)

receipts = sa.Table(
    "receipts",
    metadata,
    sa.Column("receipt_key", sa.String(160), primary_key=True),
    sa.Column("dcl_po_number", sa.String(64), nullable=False, index=True),
    sa.Column("item_receipt_id", sa.String(32)),
    sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
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

order_holds = sa.Table(
    "order_holds",
    metadata,
    sa.Column("shopify_order_id", sa.String(32), primary_key=True),
    sa.Column("reason", sa.String(32), primary_key=True),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("release", sa.String(32), nullable=False),
    sa.Column("until", sa.DateTime(timezone=True)),
    sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("placed_by", sa.String(64), nullable=False),
    sa.Column("released_at", sa.DateTime(timezone=True)),
    sa.Column("released_by", sa.String(64)),
    sa.Column("shopify_hold_ids", sa.JSON(none_as_null=True)),  # NULL: not mirrored / nothing left there
    sa.Index("ix_order_holds_active", "released_at"),
)

# -- flow F: requests to cancel or refund (see ledger/requests.py) ----------------------------------

service_requests = sa.Table(
    "service_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_key", sa.String(200), nullable=False),  # the idempotency key
    sa.Column("kind", sa.String(16), nullable=False),  # cancel | refund | return
    sa.Column("source", sa.String(16), nullable=False),  # gorgias | zendesk | shopify | operator
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
    sa.Index("ix_service_requests_order", "shopify_order_id"),
    sa.Index("ix_service_requests_status", "status"),
)

# -- flow F: returns, from the label to the refund (see ledger/returns.py) -------------------------

returns = sa.Table(
    "returns",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("return_key", sa.String(200), nullable=False),  # the request's idempotency key
    sa.Column("request_id", sa.Integer),
    sa.Column("shopify_order_id", sa.String(32), nullable=False),
    sa.Column("order_name", sa.String(64)),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("lines", sa.JSON, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("value", sa.String(24), nullable=False),  # Decimal as text: exact on every dialect
    sa.Column("refunded", sa.String(24), nullable=False),
    sa.Column("country", sa.String(2)),
    sa.Column("rma_number", sa.String(32)),  # NetSuite RMA tranId = DCL rma_number
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
    sa.Index("ix_returns_order", "shopify_order_id"),
    sa.Index("ix_returns_status", "status"),
)

# -- flow E: inventory (see ledger/inventory.py) ---------------------------------------------------

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

# -- alerts: one row per incident, so each is announced once and its end once (ledger/alerts.py) ---

alert_incidents = sa.Table(
    "alert_incidents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_key", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open | resolved
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("facts", sa.JSON, nullable=False),
    sa.Column("link", sa.Text, nullable=False),
    sa.Column("occurrences", sa.Integer, nullable=False),
    sa.Column("sent", sa.JSON, nullable=False),  # "<destination>:<opened|resolved>" -> when it was sent
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("incident_key", name="uq_alert_incident_key"),
    sa.Index("ix_alert_incidents_status", "status"),
)

# -- the archive (see ledger/archive.py) -------------------------------------------------------------
# Finished orders' rows move here (`mienne-ops ledger archive`), so the live tables the sensors read
# hold what is in flight plus the last N days, whatever the ledger's age. Same columns as the live
# table plus when the row moved; no unique constraints (a row is moved once, by id), and indexes
# only for the keyed lookups that fall back to the archive (an order's journey by any of its ids).


def _archived(table: sa.Table, *lookups: str) -> sa.Table:
    """The archive table of ``table``: its columns and primary key, ``archived_at``, and an index
    per lookup column."""
    columns = [
        sa.Column(c.name, c.type, nullable=c.nullable, primary_key=c.primary_key, autoincrement=False)
        for c in table.columns
    ]
    name = f"archived_{table.name}"
    return sa.Table(
        name,
        metadata,
        *columns,
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        *(sa.Index(f"ix_{name}_{column}", column) for column in lookups),
    )


archived_order_journeys = _archived(
    order_journeys, "shopify_order_id", "name", "netsuite_sales_order_id", "dcl_order_number"
)
archived_shipments = _archived(shipments, "dcl_order_number")
archived_order_holds = _archived(order_holds)
archived_exceptions = _archived(exceptions, "key")
archived_audit_log = _archived(audit_log, "record")
archived_inbox_events = _archived(inbox_events, "resource_id")
