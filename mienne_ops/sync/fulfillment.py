"""Flow C for one DCL order: each shipment -> NetSuite item fulfillment -> StateSet -> Shopify.

Every shipment has a stable key (order number, ship date, first carton). Each write is keyed by it:
the item fulfillment carries ``externalId = dcl-shipment-<key>`` and is looked up by SuiteQL before
the transform; in Shopify there is one fulfillment per assigned location of the order's fulfillment
orders, and units already in a fulfillment with the shipment's tracking numbers are never sent again;
the cash sale carries ``externalId = cashsale-so-<id>`` (an invoice, for orders billed by invoice,
``invoice-so-<id>``). Units whose fulfillment order is ON_HOLD or
SCHEDULED leave the order *retrying* (`WaitingError`) until a run finds it released. The records in the
ledger (the order's journey and each shipment's progress) make a re-run cost no API calls for
shipments already complete.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mienne_ops.domain.dcl_records import (
    UNREADABLE_ORDER,
    UNREADABLE_SHIPMENT,
    DclOrder,
    Shipment,
    parse_dcl_order,
)
from mienne_ops.domain.dispatch import is_resend_number
from mienne_ops.domain.fulfillment import (
    WAITING_FO_REASONS,
    fulfillments_with_tracking,
    item_fulfillment_external_id,
    plan_item_fulfillment,
    plan_shopify_fulfillment,
    shipment_key,
    shipped_by_line,
    should_bill,
    tracking_info,
    units_not_on_shopify,
)
from mienne_ops.domain.journey import Entity, Flow, OrderJourney, Stage
from mienne_ops.domain.suiteql_rows import SalesOrderLine, UnreadableRow
from mienne_ops.errors import InvalidRecordError, NotFoundError, TransientError, WaitingError
from mienne_ops.integrations.netsuite import NetSuiteClient, suiteql_literal
from mienne_ops.integrations.shopify import ShopifyClient
from mienne_ops.integrations.stateset import StateSetClient
from mienne_ops.ledger import Ledger
from mienne_ops.sync.batch import Outcome
from mienne_ops.sync.dispatch import sales_order_lines, shopify_order_key

log = logging.getLogger("mienne_ops.sync.fulfillment")

#: Billing record (REST record type) -> (SuiteQL type code, externalId prefix ``<prefix>-so-<id>``).
BILLING_RECORDS = {"cashSale": ("CashSale", "cashsale"), "invoice": ("CustInvc", "invoice")}
FLOW = Flow.FULFILLMENT.value  # a plain str: it is also a Dagster run tag, which must not be an Enum
ENTITY = Entity.DCL_ORDER


def readable_lines(rows: list[SalesOrderLine | UnreadableRow], order_number: str) -> list[SalesOrderLine]:
    """The sales order's item lines; one NetSuite answered in a shape we cannot read holds the order."""
    for row in rows:
        if isinstance(row, UnreadableRow):
            raise InvalidRecordError(
                row.reason,
                f"DCL order {order_number}: a sales order line cannot be read ({row.problem})",
                system="netsuite",
                operation="sales_order_lines",
                record=order_number,
                payload={"order_number": order_number, "raw": row.raw},
            )
    return [row for row in rows if isinstance(row, SalesOrderLine)]


def line_item_gid(shopify_line_id: str) -> str:
    return f"gid://shopify/LineItem/{shopify_line_id}"


@dataclass
class ShipmentSync:
    netsuite: NetSuiteClient
    shopify: ShopifyClient
    stateset: StateSetClient
    ledger: Ledger
    kit_components: dict[str, list[tuple[str, int]]]
    location_by_warehouse: dict[str, int]
    default_location_id: int
    cash_sale_policy: str = "on_full_shipment"
    notify_customer: bool = False
    # NetSuite shipMethod id -> "packageUps" / "packageFedEx" (integrated carriers); else "package".
    package_sublists: dict[int, str] = field(default_factory=dict)
    # Extra cash-sale fields from the rules, e.g. {"paymentMethod": {"id": "5"}}.
    cash_sale_fields: dict[str, Any] = field(default_factory=dict)
    # "cashSale" (prepaid web orders) or "invoice" (customers on terms): what a shipped order is
    # billed with (`BusinessRules.billing_record`).
    billing_record: str = "cashSale"
    _so_cache: dict[str, str] = field(default_factory=dict)

    def sync(self, dcl_order: dict[str, Any] | DclOrder) -> Outcome:
        # Read once: lines, stage and either shipment shape DCL may answer with (`domain.dcl_records`).
        order = parse_dcl_order(dcl_order)
        order_number, shipments = order.order_number, order.shipments
        if not shipments:
            return Outcome.SKIPPED
        if order.unreadable:
            raise InvalidRecordError(
                UNREADABLE_ORDER,
                f"DCL order {order_number} cannot be read ({order.unreadable})",
                system="dcl",
                operation="read_order",
                record=order_number,
                payload={"order_number": order_number, "raw": order.raw},
            )
        journey = self._journey(order_number)  # the order's ids and markers, one keyed read
        if journey.complete_for(len(shipments)):
            return Outcome.SKIPPED  # every shipment, the cash sale and StateSet already done
        so_id = str(journey.netsuite_sales_order_id)
        order_key = journey.shopify_order_id
        so_lines = readable_lines(sales_order_lines(self.netsuite, [so_id])[so_id], order_number)
        location_id = self.location_by_warehouse.get(order.location or "", self.default_location_id)
        shipped_before: dict[int, int] = defaultdict(int)
        did_work = False
        waiting: list[str] = []
        for shipment in shipments:
            if shipment.unreadable:
                # Earlier shipments went through; this one and later ones wait, never "done".
                raise InvalidRecordError(
                    UNREADABLE_SHIPMENT,
                    f"DCL order {order_number}: a shipment cannot be read ({shipment.unreadable})",
                    system="dcl",
                    operation="read_shipment",
                    record=order_number,
                    payload={"order_number": order_number, "raw": shipment.raw},
                )
            key = shipment_key(order_number, shipment)
            quantities = shipped_by_line(order, shipment, self.kit_components, dict(shipped_before))
            for line, quantity in quantities.items():
                shipped_before[line] += quantity
            progress = self.ledger.shipment(key)
            if progress is None or progress.tracking_numbers is None:
                self._record_tracking(key, order_number, shipment)
            if progress and progress.on_shopify:
                continue
            did_work = True
            if not (progress and progress.item_fulfillment_id):
                self._item_fulfillment(so_id, order_number, shipment, quantities, key, location_id, so_lines)
            if order_key:
                reason = self._shopify_fulfillment(
                    order_key, order_number, so_lines, quantities, shipment, key
                )
                waiting.extend([reason] if reason else [])
        fully_shipped = self._fully_shipped(order, shipped_before)
        stateset_done = True
        if order_key:
            # The stage first: a crash right after StateSet's ship then leaves a shipped journey
            # without its StateSet mark, which the repair sweep (`sync.repair`) finds and notes.
            self.ledger.set_stage(journey.id, Stage.SHIPPED if fully_shipped else Stage.PARTIALLY_SHIPPED)
            stateset_done = self._stateset_shipped(journey, shipments[-1], fully_shipped)
        billed = self._cash_sale(journey, order_number)
        if waiting:
            # Never done while the tracking is not on Shopify: retried until the FO is released.
            raise WaitingError(
                waiting[0],
                "shipped, but Shopify holds the fulfillment order "
                + ("on hold" if waiting[0] == WAITING_FO_REASONS["on_hold"] else "as scheduled")
                + "; the tracking goes to Shopify once it is released",
                system="shopify",
                operation="fulfillmentCreate",
                record=order_number,
            )
        if fully_shipped and billed and stateset_done:
            self.ledger.mark_shipments_complete(journey.id, len(shipments))
        return Outcome.DONE if did_work else Outcome.SKIPPED

    # -- steps ----------------------------------------------------------------------------------
    def _journey(self, order_number: str) -> OrderJourney:
        """The journey flow B wrote when DCL accepted the order; else (sent by someone else, or the
        dispatch record lost in a crash) found in NetSuite by tranId and recorded now."""
        journey = self.ledger.journey_by_dcl_order(order_number)
        if journey is not None and journey.netsuite_sales_order_id:
            return journey
        rows = list(
            self.netsuite.suiteql(
                "SELECT t.id, t.externalid FROM transaction t WHERE t.type = 'SalesOrd' "
                f"AND t.tranid = {suiteql_literal(str(order_number))}"
            )
        )
        if not rows and is_resend_number(order_number):
            # An order DCL cancelled for a hold, sent again: flow B moves the journey to this number
            # right after DCL accepts it (`Ledger.rebind_dcl_order`); a crash in between is finished
            # by flow B's next run, so this shipment comes back later instead of being quarantined.
            raise TransientError(
                "a resent DCL order flow B has not recorded yet", system="ledger", record=order_number
            )
        if not rows:
            raise NotFoundError(
                "no NetSuite sales order for this DCL order", system="netsuite", record=order_number
            )
        return self.ledger.record_dispatch(
            str(rows[0]["id"]),
            order_number,
            shopify_order_id=shopify_order_key(rows[0].get("externalid")),
            tranid=order_number,
        )

    def _record_tracking(self, key: str, order_number: str, shipment: Shipment) -> None:
        """The shipment's carrier and numbers in the ledger, so `order status` shows them."""
        tracking = tracking_info(shipment)
        self.ledger.record_tracking(key, order_number, tracking.company, tracking.numbers)

    def _item_fulfillment(self, so_id, order_number, shipment, quantities, key, location_id, so_lines) -> str:
        external_id = item_fulfillment_external_id(order_number, shipment)
        existing = self.netsuite.find_by_external_id("ItemShip", external_id)
        if existing is None:
            body = plan_item_fulfillment(
                order_number,
                shipment,
                quantities,
                location_id,
                [row.line for row in so_lines],
                package_sublist=self._package_sublist(so_id),
            )
            existing = self.netsuite.transform("salesOrder", so_id, "itemFulfillment", body, record=key)
            self.ledger.audit("netsuite", "itemFulfillment.transform", key, "ok", remote_id=existing)
        return self.ledger.bind_item_fulfillment(key, order_number, existing)

    def _package_sublist(self, so_id: str) -> str:
        """The package sublist the sales order's ship method gives its fulfillments (rules)."""
        if not self.package_sublists:
            return "package"  # no integrated carrier configured: no need to ask NetSuite
        rows = list(
            self.netsuite.suiteql(f"SELECT t.shipmethod FROM transaction t WHERE t.id = {int(so_id)}")
        )
        ship_method = rows[0].get("shipmethod") if rows else None
        return self.package_sublists.get(int(ship_method), "package") if ship_method else "package"

    def _shopify_fulfillment(
        self, order_key, order_number, so_lines, quantities, shipment, key
    ) -> str | None:
        """Put the shipment's tracking on Shopify: one fulfillment per assigned location.

        Returns the exceptions-queue reason when some units wait on a held or scheduled fulfillment
        order: the shipment is then not bound, so a later run sends the rest. Units already in a
        fulfillment with this shipment's tracking are never sent again.
        """
        tracking = tracking_info(shipment)
        fulfillments, fulfillment_orders = self.shopify.fulfillment_state(int(order_key))
        shopify_line_by_so_line = {row.line: row.shopify_line_id for row in so_lines if row.shopify_line_id}
        by_shopify_line = {
            line_item_gid(shopify_line_by_so_line[line]): quantity
            for line, quantity in quantities.items()
            if quantity > 0 and line in shopify_line_by_so_line
        }
        sent = fulfillments_with_tracking(fulfillments, tracking.numbers)
        plan = plan_shopify_fulfillment(fulfillment_orders, units_not_on_shopify(by_shopify_line, sent))
        ids = [fulfillment["id"] for fulfillment in sent]
        for location in plan.fulfillments:
            created = self.shopify.create_fulfillment(
                location.lines_by_fulfillment_order,
                tracking_company=tracking.company,
                tracking_numbers=tracking.numbers,
                tracking_urls=tracking.urls,
                notify_customer=self.notify_customer,
                record=key,
            )
            self.ledger.audit("shopify", "fulfillmentCreate", key, "ok", remote_id=created["id"])
            ids.append(created["id"])
        if plan.waiting_reason:
            return plan.waiting_reason
        if plan.unplaced and not ids:
            raise InvalidRecordError(
                "shopify_nothing_to_fulfil",
                f"{plan.unplaced} shipped unit(s) have no open fulfillment order line in Shopify "
                "(fulfilled by someone else, cancelled or incomplete): the tracking is not on Shopify",
                system="shopify",
                operation="fulfillmentCreate",
                record=key,
            )
        # No id: nothing was left to fulfil (someone else fulfilled these units); settled all the same.
        self.ledger.record_on_shopify(key, order_number, ids[0] if ids else None)
        return None

    def _stateset_shipped(self, journey: OrderJourney, last_shipment: Shipment, fully_shipped: bool) -> bool:
        """Move the StateSet order to shipped once everything shipped; True when nothing is left
        to do in StateSet (no StateSet order, or it is shipped)."""
        if not journey.stateset_order_id or journey.stateset_shipped_at:
            return True
        if not fully_shipped:
            return False
        stateset_id = journey.stateset_order_id
        order_key = str(journey.shopify_order_id)
        tracking = tracking_info(last_shipment)
        self.stateset.ship_order(
            stateset_id,
            carrier=tracking.company,
            # The SDK requires a method; DCL's service (e.g. GROUND) is it, the carrier if none is given.
            method=last_shipment.shipping_service or tracking.company,
            tracking_number=tracking.numbers[0] if tracking.numbers else "",
            # DCL reports no freight cost (dcl.md §5): the customer's charge is in the order's totals.
            shipping_cost=Decimal("0"),
            tracking_url=tracking.urls[0] if tracking.urls else None,
        )
        self.ledger.audit("stateset", "orders.ship", order_key, "ok", remote_id=stateset_id)
        self.ledger.mark_stateset_shipped(journey.id)
        return True

    def _cash_sale(self, journey: OrderJourney, order_number: str) -> bool:
        """Bill the sales order (cash sale or invoice, per `billing_record`) when the policy says so;
        True when nothing is left to bill."""
        if self.cash_sale_policy == "never" or journey.cash_sale_id or journey.invoice_id:
            return True
        if self.billing_record not in BILLING_RECORDS:
            raise InvalidRecordError(
                "bad_billing_record",
                f"BusinessRules.billing_record is {self.billing_record!r}; expected one of "
                + ", ".join(BILLING_RECORDS),
                system="netsuite",
                operation="bill",
                record=order_number,
            )
        so_id = str(journey.netsuite_sales_order_id)
        rows = list(self.netsuite.suiteql(f"SELECT t.status FROM transaction t WHERE t.id = {int(so_id)}"))
        status = rows[0].get("status", "") if rows else ""
        if not should_bill(status, self.cash_sale_policy):
            return False
        record = self.billing_record
        type_code, prefix = BILLING_RECORDS[record]
        external_id = f"{prefix}-so-{so_id}"
        existing = self.netsuite.find_by_external_id(type_code, external_id)
        if existing is None:
            # Payment method and deposit account belong to a cash sale; an invoice is paid later.
            fields = self.cash_sale_fields if record == "cashSale" else {}
            existing = self.netsuite.transform(
                "salesOrder", so_id, record, {"externalId": external_id, **fields}, record=order_number
            )
            self.ledger.audit("netsuite", f"{record}.transform", order_number, "ok", remote_id=existing)
        if record == "invoice":
            self.ledger.bind_invoice(journey.id, existing)
        else:
            self.ledger.bind_cash_sale(journey.id, existing)
        return True

    @staticmethod
    def _fully_shipped(order: DclOrder, shipped: dict[int, int]) -> bool:
        """DCL's word (stage 60+), or every DCL line covered by the shipments seen."""
        if order.order_stage >= 60:
            return True
        return all(shipped.get(line.line_number, 0) >= line.quantity for line in order.lines)
