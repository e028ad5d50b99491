"""Typed journeys: what ``bindings`` held under conventions moves into tables that say what they hold.

Before, ``bindings`` doubled as a key-value store: pseudo-systems (``stateset_shipped``,
``cash_sale``, ``complete``), placeholders (``nothing-to-fulfil``, ``nothing-posted``), ASN versions
as systems ``v<n>`` with ``digest:reference:units`` values. This revision creates

- ``order_journeys`` (replacing ``orders``): one row per order with its ids in every system;
- ``shipments``, ``inbound_orders``, ``asn_versions``, ``asn_replacements``, ``receipts``;

copies every row over (``orders`` whole, each binding to its column), deletes the bindings it moved
and drops ``orders``. ``bindings`` keeps the true remote-id maps (customers) and anything this
revision does not recognise — nothing is lost. A downgrade is not offered: restore the backup taken
before upgrading (README, "Production storage").

Revision ID: 0002_typed_journeys
Revises: 0001_baseline
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002_typed_journeys"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

metadata = sa.MetaData()

order_journeys = sa.Table(
    "order_journeys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("shopify_order_id", sa.String(32)),
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
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("shopify_order_id", name="uq_journey_shopify_order"),
    sa.UniqueConstraint("netsuite_sales_order_id", name="uq_journey_sales_order"),
    sa.UniqueConstraint("dcl_order_number", name="uq_journey_dcl_order"),
)
shipments = sa.Table(
    "shipments",
    metadata,
    sa.Column("shipment_key", sa.String(160), primary_key=True),
    sa.Column("dcl_order_number", sa.String(64), index=True),
    sa.Column("item_fulfillment_id", sa.String(32)),
    sa.Column("on_shopify_at", sa.DateTime(timezone=True)),
    sa.Column("shopify_fulfillment_id", sa.String(128)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
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

# The tables as revision 0001 left them (read, then reduced).
old_orders = sa.table(
    "orders",
    sa.column("shopify_order_id"),
    sa.column("name"),
    sa.column("stage"),
    sa.column("lines", sa.JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
bindings = sa.table(
    "bindings",
    sa.column("id"),
    sa.column("entity"),
    sa.column("key"),
    sa.column("system"),
    sa.column("remote_id"),
    sa.column("created_at", sa.DateTime(timezone=True)),
)

NOTHING_TO_FULFIL = "nothing-to-fulfil"
NOTHING_POSTED = "nothing-posted"


def upgrade() -> None:
    connection = op.get_bind()
    metadata.create_all(connection)
    moved: list[int] = []
    by_kind: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in connection.execute(sa.select(bindings).order_by(bindings.c.id)):
        by_kind[(row.entity, _kind(row.system))].append(row)
    journeys = _Journeys(connection)
    journeys.load_orders()
    moved += journeys.move_order_bindings(by_kind)
    moved += journeys.move_sales_order_bindings(by_kind)
    moved += journeys.move_completions(by_kind)
    journeys.write()
    moved += _move_shipments(connection, by_kind, journeys.dcl_numbers())
    moved += _move_inbound(connection, by_kind)
    for start in range(0, len(moved), 500):
        connection.execute(sa.delete(bindings).where(bindings.c.id.in_(moved[start : start + 500])))
    op.drop_table("orders")


def downgrade() -> None:
    raise NotImplementedError("0002 cannot be undone in place: restore the backup taken before upgrading")


def _kind(system: str) -> str:
    """A binding's system with the ASN conventions folded (``v3`` -> ``v<n>``, ``cancelled-77`` ->
    ``cancelled``)."""
    if system.startswith("v") and system[1:].isdigit():
        return "v<n>"
    for prefix in ("cancelled-", "replaced-"):
        if system.startswith(prefix):
            return prefix[:-1]
    return system


class _Journeys:
    """Journeys assembled in memory from ``orders`` and the order / sales-order bindings."""

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection
        self.by_shopify: dict[str, dict[str, Any]] = {}
        self.by_sales_order: dict[str, dict[str, Any]] = {}

    def load_orders(self) -> None:
        for row in self.connection.execute(sa.select(old_orders)):
            self.by_shopify[row.shopify_order_id] = _journey(
                shopify_order_id=row.shopify_order_id,
                name=row.name,
                stage=row.stage,
                lines=row.lines,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )

    def _shopify_journey(self, key: str, at: datetime) -> dict[str, Any]:
        if key not in self.by_shopify:  # bound but never recorded (a crash in between)
            self.by_shopify[key] = _journey(shopify_order_id=key, stage="received", created_at=at)
        return self.by_shopify[key]

    def _sales_order_journey(self, so_id: str, at: datetime) -> dict[str, Any]:
        for journey in self.by_shopify.values():
            if journey["netsuite_sales_order_id"] == so_id:
                return journey
        if so_id not in self.by_sales_order:  # a sales order that did not come from Shopify
            self.by_sales_order[so_id] = _journey(
                netsuite_sales_order_id=so_id, stage="dispatched", created_at=at
            )
        return self.by_sales_order[so_id]

    def move_order_bindings(self, by_kind: dict[tuple[str, str], list[Any]]) -> list[int]:
        moved = []
        columns = {
            "netsuite": "netsuite_sales_order_id",
            "stateset": "stateset_order_id",
            "dcl": "dcl_order_number",
        }
        for system, column in columns.items():
            for row in by_kind.pop(("order", system), []):
                journey = self._shopify_journey(row.key, row.created_at)
                journey[column] = row.remote_id
                if system == "netsuite" and journey["stage"] == "received":
                    journey["stage"] = "in_netsuite"
                moved.append(row.id)
        for row in by_kind.pop(("order", "stateset_shipped"), []):
            self._shopify_journey(row.key, row.created_at)["stateset_shipped_at"] = row.created_at
            moved.append(row.id)
        return moved

    def move_sales_order_bindings(self, by_kind: dict[tuple[str, str], list[Any]]) -> list[int]:
        moved = []
        for row in by_kind.pop(("sales_order", "dcl"), []):
            journey = self._sales_order_journey(row.key, row.created_at)
            journey["dcl_order_number"] = journey["dcl_order_number"] or row.remote_id
            journey["name"] = journey["name"] or row.remote_id
            moved.append(row.id)
        for row in by_kind.pop(("sales_order", "cash_sale"), []):
            self._sales_order_journey(row.key, row.created_at)["cash_sale_id"] = row.remote_id
            moved.append(row.id)
        return moved

    def move_completions(self, by_kind: dict[tuple[str, str], list[Any]]) -> list[int]:
        """``dcl_order`` ``<number>:<shipments>`` -> complete -> sales order id."""
        moved = []
        for row in by_kind.pop(("dcl_order", "complete"), []):
            number, _, count = row.key.rpartition(":")
            journey = self._sales_order_journey(row.remote_id, row.created_at)
            journey["dcl_order_number"] = journey["dcl_order_number"] or number
            journey["shipments_completed"] = max(journey["shipments_completed"] or 0, int(count or 0))
            moved.append(row.id)
        return moved

    def dcl_numbers(self) -> list[str]:
        every = [*self.by_shopify.values(), *self.by_sales_order.values()]
        return [j["dcl_order_number"] for j in every if j["dcl_order_number"]]

    def write(self) -> None:
        rows = [*self.by_shopify.values(), *self.by_sales_order.values()]
        for start in range(0, len(rows), 500):
            self.connection.execute(sa.insert(order_journeys), rows[start : start + 500])


def _journey(**values: Any) -> dict[str, Any]:
    at = values.get("created_at") or datetime.now(UTC)
    return {
        "shopify_order_id": None,
        "name": None,
        "lines": None,
        "netsuite_sales_order_id": None,
        "netsuite_tranid": None,
        "dcl_order_number": None,
        "stateset_order_id": None,
        "stateset_shipped_at": None,
        "cash_sale_id": None,
        "shipments_completed": None,
        **values,
        "created_at": at,
        "updated_at": values.get("updated_at") or at,
    }


def _move_shipments(
    connection: sa.Connection, by_kind: dict[tuple[str, str], list[Any]], dcl_numbers: list[str]
) -> list[int]:
    """``shipment`` bindings: ``netsuite`` -> item fulfillment, ``shopify`` -> on Shopify."""
    rows: dict[str, dict[str, Any]] = {}
    moved = []
    # A shipment key is ``<order number>-<date>-<carton>``: the longest known order number before it.
    numbers = sorted(dcl_numbers, key=len, reverse=True)

    def row_for(binding: Any) -> dict[str, Any]:
        owner = next((n for n in numbers if binding.key.startswith(f"{n}-")), None)
        return rows.setdefault(
            binding.key,
            {
                "shipment_key": binding.key,
                "dcl_order_number": owner,
                "item_fulfillment_id": None,
                "on_shopify_at": None,
                "shopify_fulfillment_id": None,
                "created_at": binding.created_at,
                "updated_at": binding.created_at,
            },
        )

    for binding in by_kind.pop(("shipment", "netsuite"), []):
        row_for(binding)["item_fulfillment_id"] = binding.remote_id
        moved.append(binding.id)
    for binding in by_kind.pop(("shipment", "shopify"), []):
        row = row_for(binding)
        row["on_shopify_at"] = binding.created_at
        row["shopify_fulfillment_id"] = None if binding.remote_id == NOTHING_TO_FULFIL else binding.remote_id
        moved.append(binding.id)
    if rows:
        connection.execute(sa.insert(shipments), list(rows.values()))
    return moved


def _move_inbound(connection: sa.Connection, by_kind: dict[tuple[str, str], list[Any]]) -> list[int]:
    moved = []
    po_numbers: dict[str, str] = {}
    for binding in by_kind.pop(("inbound_order", "dcl"), []):
        po_numbers[binding.key] = binding.remote_id
        connection.execute(
            sa.insert(inbound_orders),
            {
                "netsuite_order_id": binding.key,
                "dcl_po_number": binding.remote_id,
                "created_at": binding.created_at,
                "updated_at": binding.created_at,
            },
        )
        moved.append(binding.id)
    for binding in by_kind.pop(("inbound_asn", "v<n>"), []):
        fingerprint, reference, units = [*binding.remote_id.split(":"), "0", "0"][:3]
        connection.execute(
            sa.insert(asn_versions),
            {
                "netsuite_order_id": binding.key,
                "version": int(binding.system[1:]),
                "fingerprint": fingerprint,
                "reference": reference,
                "units": int(units or 0),
                # Which PO number a version got was not kept before; the order's current one.
                "dcl_po_number": po_numbers.get(binding.key),
                "sent_at": binding.created_at,
            },
        )
        moved.append(binding.id)
    replacements: dict[tuple[str, str], dict[str, Any]] = {}
    for kind in ("cancelled", "replaced"):
        for binding in by_kind.pop(("inbound_asn", kind), []):
            old = binding.system.split("-", 1)[1]
            row = replacements.setdefault(
                (binding.key, old),
                {
                    "netsuite_order_id": binding.key,
                    "old_dcl_po_number": old,
                    "cancel_confirmed_at": binding.created_at,
                    "new_dcl_po_number": None,
                },
            )
            if kind == "replaced":
                row["new_dcl_po_number"] = binding.remote_id
            moved.append(binding.id)
    if replacements:
        connection.execute(sa.insert(asn_replacements), list(replacements.values()))
    posted = []
    for binding in by_kind.pop(("dcl_receipt", "netsuite"), []):
        posted.append(
            {
                "receipt_key": binding.key,
                "dcl_po_number": binding.key.split("-", 1)[0],
                "item_receipt_id": None if binding.remote_id == NOTHING_POSTED else binding.remote_id,
                "posted_at": binding.created_at,
            }
        )
        moved.append(binding.id)
    if posted:
        connection.execute(sa.insert(receipts), posted)
    return moved
