"""What mienne-ops remembers about a record's way through the systems, as typed values.

The vocabulary every flow and the ledger share — flows, entities, systems, an order's stages — and
the typed rows the ledger returns: an order's journey (one row per order: its ids in every system
and its markers), a DCL shipment's progress, an inbound order's announcements and receipts. A name
that is not in these enums cannot be written, so a typo fails where it is made instead of returning
nothing later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Flow(StrEnum):
    """The business flows (README "What each flow does"); their letters key the exceptions queue."""

    ORDERS = "A"
    DISPATCH = "B"
    FULFILLMENT = "C"
    INBOUND = "D"
    INVENTORY = "E"
    REQUESTS = "F"  # cancellations and refunds (returns join them)


class Entity(StrEnum):
    """What a flow handles one at a time (the exceptions queue's and bindings' record kinds)."""

    ORDER = "order"  # a Shopify order (key: its numeric id)
    # A Shopify order's cancellation (key: the order's id): its own exceptions, so a cancellation
    # Shopify does not confirm (a forged webhook) neither blocks nor hides the order's import.
    CANCELLATION = "cancellation"
    # A repair of a Shopify order's missing steps (key: the order's id): its own exceptions, so a
    # repair never resolves, nor hides behind, the order's own (an edit after dispatch, a bad SKU).
    ORDER_REPAIR = "order_repair"
    CUSTOMER = "customer"  # a Shopify customer (key: its NetSuite external id)
    SALES_ORDER = "sales_order"  # a NetSuite sales order (key: internal id)
    DCL_ORDER = "dcl_order"  # a DCL order (key: order number = the sales order's tranId)
    INBOUND_ORDER = "inbound_order"  # a NetSuite PO / TO (key: internal id)
    DCL_PO = "dcl_po"  # a DCL purchase order notification (key: dcl_po_number)
    DCL_RECEIPT = "dcl_receipt"  # one DCL receipt (key: <dcl_po_number>-<receipt key>)
    REQUEST = "request"  # a cancel/refund request (key: its idempotency key)
    TICKET = "ticket"  # a helpdesk ticket that could not be read as a request (key: system:id)
    RETURN = "return"  # a return (key: its request's idempotency key)
    DCL_RMA = "dcl_rma"  # an RMA DCL received (key: rma_number), e.g. one no return of ours made


class System(StrEnum):
    SHOPIFY = "shopify"
    NETSUITE = "netsuite"
    DCL = "dcl"
    STATESET = "stateset"
    GORGIAS = "gorgias"
    ZENDESK = "zendesk"
    RECHARGE = "recharge"
    LEDGER = "ledger"


class Stage(StrEnum):
    """An order's journey, in order (flow A sets the first ones, B and C the later ones)."""

    RECEIVED = "received"
    IN_NETSUITE = "in_netsuite"
    DISPATCHED = "dispatched"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"
    TEST_SKIPPED = "test_skipped"
    # A hold placed after dispatch (`sync.hold_recall`): DCL is being asked to cancel its order
    # (*withdrawing*: the intent is written before the call, so a crash never forgets it), then DCL
    # cancelled it (*withdrawn*): flow B sends the order again, under a new number, when released.
    WITHDRAWING = "withdrawing"
    WITHDRAWN = "withdrawn"


DISPATCHED_STAGES = frozenset({Stage.DISPATCHED, Stage.PARTIALLY_SHIPPED, Stage.SHIPPED})
# Stages flow A never imports an order in (a cancelled or skipped test order stays so).
CLOSED_STAGES = frozenset({Stage.CANCELLED, Stage.TEST_SKIPPED})


@dataclass(frozen=True)
class OrderJourney:
    """One order's row: its ids in every system and what has been done for it.

    A journey usually starts from a Shopify order (flow A). A NetSuite sales order that did not come
    from Shopify gets a journey of its own when flow B sends it to DCL (no Shopify id then).
    """

    id: int
    shopify_order_id: str | None
    name: str | None
    stage: Stage
    lines: list[dict[str, Any]] = field(default_factory=list)
    netsuite_sales_order_id: str | None = None
    netsuite_tranid: str | None = None
    dcl_order_number: str | None = None
    stateset_order_id: str | None = None
    stateset_shipped_at: datetime | None = None
    cash_sale_id: str | None = None
    invoice_id: str | None = None  # billed by invoice (flow C, when the rules say so)
    # Flow C finished everything for this many DCL shipments (fulfillments, StateSet, cash sale);
    # a later shipment (a higher count) makes the order due again.
    shipments_completed: int | None = None
    # Flow A finished every step (sales order, StateSet, tag). The stage cannot say it: flow B sends
    # any approved sales order, so an order whose import crashed halfway may already be at DCL.
    imported_at: datetime | None = None
    # Shopify confirmed flow A's tag (`imported_tag`); an import that stopped right after tagging
    # shows the tag as there, not missing.
    tagged_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def import_pending(self) -> bool:
        """Flow A still has work on this order (never imported, or an import that stopped halfway)."""
        return self.imported_at is None and self.stage not in CLOSED_STAGES

    def ids_by_system(self) -> dict[str, str]:
        """The record's id in each system that has it (for people: `mienne-ops order status`)."""
        ids = {
            "shopify order": self.shopify_order_id,
            "netsuite sales order": self.netsuite_sales_order_id,
            "netsuite tranId": self.netsuite_tranid,
            "stateset order": self.stateset_order_id,
            "dcl order": self.dcl_order_number,
            "netsuite cash sale": self.cash_sale_id,
        }
        return {label: value for label, value in ids.items() if value}

    def complete_for(self, shipment_count: int) -> bool:
        return self.shipments_completed is not None and self.shipments_completed >= shipment_count


@dataclass(frozen=True)
class ShipmentProgress:
    """One DCL shipment's way into NetSuite and Shopify (flow C), keyed by `shipment_key`."""

    shipment_key: str
    dcl_order_number: str | None
    item_fulfillment_id: str | None
    on_shopify_at: datetime | None
    # None with `on_shopify_at` set: nothing was left to fulfil in Shopify (done by someone else).
    shopify_fulfillment_id: str | None
    # As DCL reported them when flow C first saw the shipment; None for rows settled before 0008.
    carrier: str | None = None
    tracking_numbers: tuple[str, ...] | None = None

    @property
    def on_shopify(self) -> bool:
        return self.on_shopify_at is not None


@dataclass(frozen=True)
class AsnVersion:
    """One announcement of a PO / TO to DCL (flow D): what was sent, as which reference."""

    version: int
    fingerprint: str
    reference: str
    units: int
    dcl_po_number: str | None = None


@dataclass(frozen=True)
class PostedReceipt:
    """A DCL receipt handled in NetSuite; ``item_receipt_id`` None: nothing of it could post (every
    line was excess, quarantined with its reason)."""

    receipt_key: str
    dcl_po_number: str
    item_receipt_id: str | None
    posted_at: datetime
