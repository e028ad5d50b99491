"""Flow A for one order: Shopify order -> NetSuite customer + sales order -> StateSet -> tag.

Each step is safe to repeat: the customer and the sales order are upserted by external id
(``PUT …/eid:``), the StateSet order is looked up by external id before it is created, the tag is
additive, and every remote id is bound in the ledger right after it exists. The order is re-read
from Shopify (never trusted from a possibly stale webhook), and an order the ledger already shows as
imported costs no API call at all. A large batch (`BusinessRules.bulk_read_min_orders`) is read
with one bulk operation first (`read_ahead`); an order it missed is read alone. Test orders are
skipped (stage ``test_skipped``) unless `BusinessRules.import_test_orders`.

After the upsert NetSuite's own total is read back and compared with Shopify's current total
(`netsuite_total_mismatch`, both numbers): the plan reconciles on paper, this proves NetSuite booked
it so.

An import that stopped halfway (a crash between a write and its ledger record) is finished by the next
`ingest` of the order: it is pending until every step is confirmed (``imported_at``). When flow B or C
moved the order on meanwhile, only the missing steps run (`_resume`: the StateSet order, looked up by
external id before it is created, and the tag) — no hold is evaluated and the sales order, which DCL
already has, is neither written nor checked again. The repair sweep (`sync.repair`) brings such
orders back.

An order edited after import (`apply_edit`) updates its sales order through the same external-id
upsert while the order has not gone to DCL; once dispatched, the edit cannot be applied silently and
becomes an `edited_after_dispatch` exception listing the old and the new lines.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from mienne_ops.domain.journey import (
    DISPATCHED_STAGES,
    Entity,
    Flow,
    OrderJourney,
    Stage,
    System,
)
from mienne_ops.domain.journey_gaps import moved_on
from mienne_ops.domain.money import to_decimal
from mienne_ops.domain.orders import (
    OrderMappingConfig,
    SalesOrderPlan,
    customer_record,
    plan_sales_order,
    sales_order_external_id,
)
from mienne_ops.domain.shopify import ShopifyOrder
from mienne_ops.domain.stateset import stateset_order_data
from mienne_ops.errors import InvalidRecordError, MienneOpsError, NotFoundError, PermanentError
from mienne_ops.integrations.dcl import DclClient
from mienne_ops.integrations.netsuite import NetSuiteClient
from mienne_ops.integrations.shopify import ShopifyClient
from mienne_ops.integrations.stateset import StateSetClient
from mienne_ops.ledger import Ledger
from mienne_ops.sync.batch import Outcome
from mienne_ops.sync.catalog import NetSuiteCatalog
from mienne_ops.sync.holds import HoldKeeper

if TYPE_CHECKING:
    from mienne_ops.business_rules import BusinessRules
    from mienne_ops.resources import ApiClients

log = logging.getLogger("mienne_ops.sync.orders")

FLOW = Flow.ORDERS.value  # a plain str: it is also a Dagster run tag, which must not be an Enum
ENTITY = Entity.ORDER


@dataclass(frozen=True)
class OrderSystems:
    """The systems flow A writes to and the ledger it records in: what its ingestor and the repair
    sweep that finishes its imports are built from (a run's resources, the CLI's `api_clients`)."""

    shopify: ShopifyClient
    netsuite: NetSuiteClient
    stateset: StateSetClient
    ledger: Ledger

    @classmethod
    def of(cls, clients: ApiClients, ledger: Ledger) -> OrderSystems:
        """The CLI's clients (`cli.api_clients`) and a ledger."""
        return cls(clients.shopify, clients.netsuite, clients.stateset, ledger)


@dataclass
class OrderIngestor:
    shopify: ShopifyClient
    netsuite: NetSuiteClient
    stateset: StateSetClient
    ledger: Ledger
    mapping: OrderMappingConfig
    imported_tag: str = "SENT_TO_NS"
    import_test_orders: bool = False
    # From this many orders in one batch, `read_ahead` reads them with one bulk operation (0: never).
    bulk_read_min_orders: int = 0
    # Order nodes read ahead, by key; `ingest` takes its order from here before reading it alone.
    read_ahead_nodes: dict[str, dict] = field(default_factory=dict)
    # Holds before dispatch: evaluated before the sales order is written, and on edits (None: off).
    holds: HoldKeeper | None = None

    @classmethod
    def from_rules(cls, rules: BusinessRules, systems: OrderSystems) -> OrderIngestor:
        """Flow A's ingestor as the rules configure it (the op and `mienne-ops orders backfill` alike):
        NetSuite's item ids read once, holds evaluated unless the rules turn them off."""
        holds = HoldKeeper(systems.shopify, systems.ledger, rules.hold_policy())
        return cls(
            shopify=systems.shopify,
            netsuite=systems.netsuite,
            stateset=systems.stateset,
            ledger=systems.ledger,
            mapping=mapping_config(rules, NetSuiteCatalog.load(systems.netsuite).item_ids),
            imported_tag=rules.imported_tag,
            import_test_orders=rules.import_test_orders,
            bulk_read_min_orders=rules.bulk_read_min_orders,
            holds=holds if rules.holds_enabled else None,
        )

    def read_ahead(self, keys: list[str]) -> int:
        """Read a large batch's orders with one bulk operation for `ingest` (how many were read).

        Below `bulk_read_min_orders` orders still to import, nothing happens: a bulk operation has
        latency, and a few single reads are cheap. The search is the batch's id range without the
        imported tag, so the result is about the batch; an order it misses is simply read alone by
        `ingest`, and a bulk operation that fails or is blocked leaves every order to those reads.
        """
        journeys = self.ledger.journeys(keys)
        pending = sorted(
            {k for k in keys if k.isdigit() and (k not in journeys or journeys[k].import_pending)}, key=int
        )
        if not self.bulk_read_min_orders or len(pending) < self.bulk_read_min_orders:
            return 0
        search = f"id:>={pending[0]} id:<={pending[-1]} -tag:{self.imported_tag}"
        try:
            nodes = self.shopify.bulk_orders(search)
        except MienneOpsError as error:
            log.warning("bulk read of %d orders failed, reading them one by one: %s", len(pending), error)
            return 0
        wanted = set(pending)
        for node in nodes:
            key = str(node["legacyResourceId"])
            if key in wanted:
                self.read_ahead_nodes[key] = node
        return len(self.read_ahead_nodes)

    def ingest(self, key: str) -> Outcome:
        """Import one Shopify order (by numeric id)."""
        known = self.ledger.journey(key)  # the order's whole state, one read
        if known and not known.import_pending:
            return Outcome.SKIPPED
        node = self.read_ahead_nodes.pop(key, None)
        order = ShopifyOrder.from_graphql(node) if node else self._read(key)
        if known and moved_on(known) and known.netsuite_sales_order_id:
            return self._resume(key, known, order)
        if order.test and not self.import_test_orders:
            self.ledger.record_order(key, order.name, Stage.TEST_SKIPPED, lines=[])
            self.ledger.audit("shopify", "order.skip", key, "ok", detail="test order")
            return Outcome.SKIPPED
        # A new journey starts *received*; one whose import stopped halfway keeps its stage.
        self.ledger.record_order(key, order.name, None, lines=_line_summary(order))
        plan = plan_sales_order(order, self.mapping)  # raises InvalidRecordError for bad orders
        if self.holds is not None:
            # Before the sales order exists: flow B sends any approved sales order it finds, so the
            # holds must be in the ledger first (and a crash in between leaves them there).
            self.holds.evaluate(key, order)
        entity_id = self._customer_id(plan)
        sales_order_id = (known and known.netsuite_sales_order_id) or self._write_sales_order(
            key, plan, entity_id
        )
        self._check_netsuite_total(key, plan, sales_order_id)
        if not (known and known.stateset_order_id):
            self._record_in_stateset(key, order, plan.external_id, sales_order_id)
        self._tag(key, order)
        self.ledger.finish_import(key, order.name)
        return Outcome.DONE

    def _resume(self, key: str, known: OrderJourney, order: ShopifyOrder) -> Outcome:
        """Finish an import that flow B or C overtook (the order is at DCL already): the StateSet
        order and the tag, each only if the ledger does not show it; audited as a resumed import.
        Lines changed since the ledger noted them are an edit after dispatch (raised once finished)."""
        current_lines = _line_summary(order)
        if not known.lines:
            self.ledger.record_order(key, order.name, None, lines=current_lines)
        finished = []
        if not known.stateset_order_id:
            sales_order_id = str(known.netsuite_sales_order_id)
            self._record_in_stateset(key, order, sales_order_external_id(order.id), sales_order_id)
            finished.append("StateSet order")
        if known.tagged_at is None:
            finished.append(f"tag {self.imported_tag}")
        self._tag(key, order)
        self.ledger.finish_import(key, order.name)
        self.ledger.audit(
            "ledger",
            "import.resume",
            key,
            "ok",
            detail=f"finished at stage {known.stage}: {', '.join(finished) or 'completion marker'}",
        )
        if known.lines and not _same_lines(known.lines, current_lines):
            raise _edited_after_dispatch(order, known.lines, current_lines)
        return Outcome.DONE

    def _tag(self, key: str, order: ShopifyOrder) -> None:
        """Tag the order as imported (additive) unless it carries the tag; noted once Shopify has it."""
        if self.imported_tag not in order.tags:
            self.shopify.add_tags(order.id, [self.imported_tag])
            self.ledger.audit("shopify", "tagsAdd", key, "ok", detail=self.imported_tag)
        self.ledger.mark_tagged(key)

    def apply_edit(self, key: str) -> Outcome:
        """Bring an imported order's sales order in line with its edited Shopify order.

        Not imported yet: the normal import. Imported, not dispatched: the same upsert replaces the
        sales order's lines. Dispatched: DCL has (or is picking) the old lines, so a difference is an
        `edited_after_dispatch` exception with both versions, for a human to settle with DCL.
        """
        known = self.ledger.journey(key)
        if not known or known.import_pending:
            return self.ingest(key)
        order = self._read(key)
        new_lines = _line_summary(order)
        old_lines = known.lines
        if known.stage in DISPATCHED_STAGES or self._sent_to_3pl(known.netsuite_sales_order_id):
            if _same_lines(old_lines, new_lines):
                return Outcome.SKIPPED
            raise _edited_after_dispatch(order, old_lines, new_lines)
        plan = plan_sales_order(order, self.mapping)
        entity_id = self._customer_id(plan)
        sales_order_id = self._write_sales_order(key, plan, entity_id)
        self._check_netsuite_total(key, plan, sales_order_id)
        self.ledger.record_order(key, order.name, known.stage, lines=new_lines)
        if self.holds is not None:
            self.holds.evaluate(key, order)  # e.g. the address corrected: its hold is released
        self.ledger.audit("netsuite", "salesOrder.edit", key, "ok", remote_id=sales_order_id)
        return Outcome.DONE

    def _read(self, key: str) -> ShopifyOrder:
        node = self.shopify.get_order(int(key))
        if node is None:
            raise NotFoundError("order not found", system="shopify", operation="get_order", record=key)
        return ShopifyOrder.from_graphql(node)

    def _sent_to_3pl(self, sales_order_id: str | None) -> bool:
        """NetSuite's own flag, in case flow B dispatched after the ledger was read."""
        if not sales_order_id:
            return False
        header = self.netsuite.get("salesOrder", sales_order_id)
        return header.get("custbody_sent_to_3pl") is True

    def _check_netsuite_total(self, key: str, plan: SalesOrderPlan, sales_order_id: str) -> None:
        """NetSuite's total after the upsert must be Shopify's current total less gift cards.

        The same read gives the sales order's tranId (DCL's order number later): kept on the journey.
        """
        header = self.netsuite.get("salesOrder", sales_order_id)
        if header.get("tranId"):
            self.ledger.bind_sales_order(key, sales_order_id, tranid=str(header["tranId"]))
        booked = to_decimal(header.get("total"))
        if booked == plan.expected_total:
            return
        raise InvalidRecordError(
            "netsuite_total_mismatch",
            f"NetSuite booked {booked}, Shopify's current total is {plan.shopify_total} "
            f"(expected {plan.expected_total} after {plan.gift_card_total} in gift cards)",
            system="netsuite",
            operation="salesOrder.total",
            record=f"{plan.shopify_name} ({plan.shopify_order_id})",
        )

    def _customer_id(self, plan: SalesOrderPlan) -> str:
        customer = plan.customer
        bound = self.ledger.remote_id(Entity.CUSTOMER, customer.external_id, System.NETSUITE)
        if bound:
            return bound
        entity_id = self.netsuite.find_customer_by_email(customer.email) if customer.email else None
        if entity_id is None:
            body = customer_record(customer, self.mapping.subsidiary_id)
            entity_id = self.netsuite.upsert("customer", customer.external_id, body)
            self.ledger.audit("netsuite", "customer.upsert", customer.external_id, "ok", remote_id=entity_id)
        return self.ledger.bind(Entity.CUSTOMER, customer.external_id, System.NETSUITE, entity_id)

    def _write_sales_order(self, key: str, plan: SalesOrderPlan, entity_id: str) -> str:
        sales_order_id = self.netsuite.upsert(
            "salesOrder", plan.external_id, plan.record(entity_id), replace=["item"]
        )
        self.ledger.audit("netsuite", "salesOrder.upsert", key, "ok", remote_id=sales_order_id)
        return self.ledger.bind_sales_order(key, sales_order_id)

    def _record_in_stateset(
        self, key: str, order: ShopifyOrder, external_id: str, sales_order_id: str
    ) -> None:
        created = self.stateset.create_order(external_id, stateset_order_data(order, sales_order_id))
        self.ledger.audit("stateset", "orders.create", key, "ok", remote_id=created["id"])
        self.ledger.bind_stateset_order(key, created["id"])


def _line_summary(order: ShopifyOrder) -> list[dict]:
    """What the ledger keeps of an order's lines (SKU and quantity: what inventory must hold back)."""
    return [
        {"sku": line.sku, "quantity": line.current_quantity}
        for line in order.line_items
        if line.sku and line.current_quantity > 0
    ]


def edit_pending(payload: dict, recorded_lines: list[dict] | None) -> bool:
    """Whether an `orders/updated` webhook shows other lines than the ledger recorded at import.

    Most updates of an imported order are no edit (our own tag, a note, a fulfillment); comparing
    the webhook's line quantities with the ledger's costs no API call. An unreadable payload is
    treated as an edit, so the order is re-read rather than missed.
    """
    try:
        lines = _line_summary(ShopifyOrder.from_rest(payload)) + _refunded_units(payload)
    except (KeyError, TypeError, ValueError):
        return True
    return not _same_lines(list(recorded_lines or []), lines)


def _refunded_units(payload: dict) -> list[dict]:
    """Units refunded on the order, by SKU: a refund lowers a line's current quantity, but it is no
    edit — flow F books it (a cash refund once billed); the sales order keeps its lines."""
    skus = {str(item["id"]): item.get("sku") for item in payload.get("line_items") or []}
    refunded = []
    for refund in payload.get("refunds") or []:
        for item in refund.get("refund_line_items") or []:
            sku = skus.get(str(item.get("line_item_id"))) or (item.get("line_item") or {}).get("sku")
            if sku:
                refunded.append({"sku": sku, "quantity": int(item["quantity"])})
    return refunded


def _edited_after_dispatch(
    order: ShopifyOrder, old_lines: list[dict], new_lines: list[dict]
) -> InvalidRecordError:
    return InvalidRecordError(
        "edited_after_dispatch",
        f"edited in Shopify after it went to DCL; old lines {_describe(old_lines)}, "
        f"new lines {_describe(new_lines)}",
        system="shopify",
        operation="apply_edit",
        record=f"{order.name} ({order.id})",
    )


def _same_lines(old: list[dict], new: list[dict]) -> bool:
    return _quantities(old) == _quantities(new)


def _quantities(lines: list[dict]) -> dict[str, int]:
    result: dict[str, int] = {}
    for line in lines:
        result[line["sku"]] = result.get(line["sku"], 0) + int(line["quantity"])
    return result


def _describe(lines: list[dict]) -> str:
    return ", ".join(f"{sku} x{qty}" for sku, qty in sorted(_quantities(lines).items())) or "none"


def mapping_config(rules, item_ids: dict[str, int]) -> OrderMappingConfig:
    """The domain's mapping config from the business rules and NetSuite's item ids."""
    ZoneInfo(rules.shop_timezone)  # a misspelt zone fails the run at once, not order by order
    return OrderMappingConfig(
        sku_item_ids=item_ids,
        ship_methods=rules.ship_methods,
        location_id=rules.netsuite_location_id,
        tax_item_id=rules.tax_item_id,
        gift_card_item_id=rules.gift_card_item_id,
        discount_item_id=rules.discount_item_id,
        gift_card_sale_item_id=rules.gift_card_sale_item_id,
        tip_item_id=rules.tip_item_id,
        duty_item_id=rules.duty_item_id,
        rounding_item_id=rules.rounding_item_id,
        total_tolerance=rules.tolerance,
        tran_date_timezone=rules.shop_timezone,
        po_box_ship_method_ids=set(rules.po_box_ship_method_ids),
        po_box_ship_method_by_country=dict(rules.po_box_ship_method_by_country),
        allowed_countries={c.upper() for c in rules.allowed_countries},
        subsidiary_id=rules.netsuite_subsidiary_id,
        shop_currency=rules.shop_currency,
        max_line_quantity=rules.max_line_quantity,
    )


@dataclass
class OrderCanceller:
    """A Shopify cancellation before dispatch closes the NetSuite sales order so it never ships.

    After dispatch, DCL is asked to cancel first (it refuses once picking started); an order DCL
    will ship anyway is quarantined for a human instead of being silently left inconsistent. The
    webhook's word is not taken for it: Shopify is asked whether the order is cancelled (a delivery
    replayed under another topic would otherwise cancel a paid, open order), and StateSet's record
    is cancelled too.
    """

    netsuite: NetSuiteClient
    dcl: DclClient
    ledger: Ledger
    shopify: ShopifyClient
    stateset: StateSetClient | None = None

    def cancel(self, key: str) -> Outcome:
        known: OrderJourney | None = self.ledger.journey(key)
        if known and known.stage == Stage.CANCELLED:
            return Outcome.SKIPPED
        order = self.shopify.get_order(int(key))
        if order is None or not order.get("cancelledAt"):
            raise InvalidRecordError(
                "not_cancelled_in_shopify",
                "a cancellation arrived for an order Shopify does not show as cancelled; nothing was changed",
                system="shopify",
                operation="orders/cancelled",
                record=f"{order.get('name')} ({key})" if order else key,
            )
        sales_order_id = known.netsuite_sales_order_id if known else None
        dcl_order_number = known.dcl_order_number if known else None
        if dcl_order_number:
            if not self.dcl.cancel_order(dcl_order_number):
                raise PermanentError(
                    "cancelled in Shopify after DCL started picking; stop the shipment or refund by hand",
                    system="dcl",
                    operation="cancel_order",
                    record=dcl_order_number,
                    code="cancel_after_dispatch",
                )
            self.ledger.audit("dcl", "order.cancel", key, "ok", remote_id=dcl_order_number)
        if sales_order_id:
            self._close_sales_order(sales_order_id, key)
        stateset_id = self._stateset_order(key, known)
        if stateset_id and self.stateset is not None:
            self.stateset.cancel_order(stateset_id, reason=order.get("cancelReason") or "customer")
            self.ledger.audit("stateset", "order.cancel", key, "ok", remote_id=stateset_id)
        self.ledger.record_order(key, None, Stage.CANCELLED)
        for hold in self.ledger.active_holds([key]):  # nothing left to hold
            self.ledger.release_hold(key, hold.reason, released_by="cancellation")
        return Outcome.DONE

    def _stateset_order(self, key: str, known: OrderJourney | None) -> str | None:
        """The order's StateSet order: the bound one, else one an import created but never recorded
        (a crash between the create and its record), found by external id and bound now."""
        if known and known.stateset_order_id:
            return known.stateset_order_id
        if self.stateset is None or not (known and known.netsuite_sales_order_id):
            return None  # never reached NetSuite: flow A never created a StateSet order either
        found = self.stateset.find_order_by_external_id(sales_order_external_id(int(key)))
        return self.ledger.bind_stateset_order(key, found["id"]) if found else None

    def _close_sales_order(self, sales_order_id: str, key: str) -> None:
        if self.netsuite.close_sales_order(sales_order_id):
            self.ledger.audit("netsuite", "salesOrder.close", key, "ok", remote_id=sales_order_id)
