"""Flow A for one order: Shopify order -> NetSuite customer + sales order -> StateSet -> tag.

Each step is safe to repeat: the customer and the sales order are upserted by external id
(``PUT …/eid:``), the StateSet order is looked up by external id before it is created, the tag is
additive, and every remote id is bound in the ledger right after it exists. The order is re-read
from Shopify (never trusted from a possibly stale webhook), and an order the ledger already shows as
imported costs no API call at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mienne_ops.domain.orders import (
    OrderMappingConfig,
    customer_record,
    plan_sales_order,
)
from mienne_ops.domain.shopify import ShopifyOrder
from mienne_ops.domain.stateset import stateset_order_data
from mienne_ops.errors import NotFoundError, PermanentError
from mienne_ops.integrations.dcl import DclClient
from mienne_ops.integrations.netsuite import NetSuiteClient
from mienne_ops.integrations.shopify import ShopifyClient
from mienne_ops.integrations.stateset import StateSetClient
from mienne_ops.ledger import Ledger
from mienne_ops.sync.batch import Outcome

log = logging.getLogger("mienne_ops.sync.orders")

FLOW = "A"
ENTITY = "order"

# Journey stages, in order (the CLI prints them; later stages are set by flows B and C).
STAGE_RECEIVED = "received"
STAGE_IN_NETSUITE = "in_netsuite"
STAGE_CANCELLED = "cancelled"
STAGE_DISPATCHED = "dispatched"
STAGE_PARTIALLY_SHIPPED = "partially_shipped"
STAGE_SHIPPED = "shipped"
IMPORTED_STAGES = {STAGE_IN_NETSUITE, STAGE_DISPATCHED, STAGE_PARTIALLY_SHIPPED, STAGE_SHIPPED}


@dataclass
class OrderIngestor:
    shopify: ShopifyClient
    netsuite: NetSuiteClient
    stateset: StateSetClient
    ledger: Ledger
    mapping: OrderMappingConfig
    imported_tag: str = "SENT_TO_NS"

    def ingest(self, key: str) -> Outcome:
        """Import one Shopify order (by numeric id)."""
        known = self.ledger.find_order(key)
        if known and known["stage"] in IMPORTED_STAGES | {STAGE_CANCELLED}:
            return Outcome.SKIPPED
        node = self.shopify.get_order(int(key))
        if node is None:
            raise NotFoundError("order not found", system="shopify", operation="get_order", record=key)
        order = ShopifyOrder.from_graphql(node)
        self.ledger.record_order(key, order.name, STAGE_RECEIVED, lines=_line_summary(order))
        plan = plan_sales_order(order, self.mapping)  # raises InvalidRecordError for bad orders
        entity_id = self._customer_id(plan)
        sales_order_id = self._upsert_sales_order(key, plan, entity_id)
        self._record_in_stateset(key, order, plan.external_id, sales_order_id)
        if self.imported_tag not in order.tags:
            self.shopify.add_tags(order.id, [self.imported_tag])
            self.ledger.audit("shopify", "tagsAdd", key, "ok", detail=self.imported_tag)
        self.ledger.record_order(key, order.name, STAGE_IN_NETSUITE)
        return Outcome.DONE

    def _customer_id(self, plan) -> str:
        customer = plan.customer
        bound = self.ledger.binding("customer", customer.external_id, "netsuite")
        if bound:
            return bound
        entity_id = self.netsuite.find_customer_by_email(customer.email) if customer.email else None
        if entity_id is None:
            entity_id = self.netsuite.upsert("customer", customer.external_id, customer_record(customer))
            self.ledger.audit("netsuite", "customer.upsert", customer.external_id, "ok", remote_id=entity_id)
        return self.ledger.bind("customer", customer.external_id, "netsuite", entity_id)

    def _upsert_sales_order(self, key: str, plan, entity_id: str) -> str:
        bound = self.ledger.binding(ENTITY, key, "netsuite")
        if bound:
            return bound
        sales_order_id = self.netsuite.upsert(
            "salesOrder", plan.external_id, plan.record(entity_id), replace=["item"]
        )
        self.ledger.audit("netsuite", "salesOrder.upsert", key, "ok", remote_id=sales_order_id)
        return self.ledger.bind(ENTITY, key, "netsuite", sales_order_id)

    def _record_in_stateset(
        self, key: str, order: ShopifyOrder, external_id: str, sales_order_id: str
    ) -> None:
        if self.ledger.binding(ENTITY, key, "stateset"):
            return
        created = self.stateset.create_order(external_id, stateset_order_data(order, sales_order_id))
        self.ledger.audit("stateset", "orders.create", key, "ok", remote_id=created["id"])
        self.ledger.bind(ENTITY, key, "stateset", created["id"])


def _line_summary(order: ShopifyOrder) -> list[dict]:
    """What the ledger keeps of an order's lines (SKU and quantity: what inventory must hold back)."""
    return [
        {"sku": line.sku, "quantity": line.current_quantity}
        for line in order.line_items
        if line.sku and line.current_quantity > 0
    ]


def mapping_config(rules, item_ids: dict[str, int]) -> OrderMappingConfig:
    """The domain's mapping config from the business rules and NetSuite's item ids."""
    return OrderMappingConfig(
        sku_item_ids=item_ids,
        ship_methods=rules.ship_methods,
        default_ship_method_id=rules.default_ship_method_id,
        location_id=rules.netsuite_location_id,
        tax_item_id=rules.tax_item_id,
        gift_card_item_id=rules.gift_card_item_id,
        discount_item_id=rules.discount_item_id,
        total_tolerance=rules.tolerance,
    )


@dataclass
class OrderCanceller:
    """A Shopify cancellation before dispatch closes the NetSuite sales order so it never ships.

    After dispatch, DCL is asked to cancel first (it refuses once picking started); an order DCL
    will ship anyway is quarantined for a human instead of being silently left inconsistent.
    """

    netsuite: NetSuiteClient
    dcl: DclClient
    ledger: Ledger

    def cancel(self, key: str) -> Outcome:
        known = self.ledger.find_order(key)
        if known and known["stage"] == STAGE_CANCELLED:
            return Outcome.SKIPPED
        sales_order_id = self.ledger.binding(ENTITY, key, "netsuite")
        dcl_order_number = self.ledger.binding(ENTITY, key, "dcl")
        if dcl_order_number and not self.dcl.cancel_order(dcl_order_number):
            raise PermanentError(
                "cancelled in Shopify after DCL started picking; stop the shipment or refund by hand",
                system="dcl",
                operation="cancel_order",
                record=dcl_order_number,
                code="cancel_after_dispatch",
            )
        if sales_order_id:
            self._close_sales_order(sales_order_id, key)
        self.ledger.record_order(key, None, STAGE_CANCELLED)
        return Outcome.DONE

    def _close_sales_order(self, sales_order_id: str, key: str) -> None:
        record = self.netsuite.get("salesOrder", sales_order_id, expand=True)
        lines = record.get("item", {}).get("items", [])
        open_lines = [{"line": line["line"], "isClosed": True} for line in lines if not line.get("isClosed")]
        if open_lines:
            self.netsuite.patch("salesOrder", sales_order_id, {"item": {"items": open_lines}})
            self.ledger.audit("netsuite", "salesOrder.close", key, "ok", remote_id=sales_order_id)
