"""Flow B: NetSuite sales orders not yet sent to the 3PL go to DCL as one batch; the flag is set.

The DCL order number (the sales order's tranId) is the idempotency key: DCL refuses a second order
with the same number, and the DCL client reports "already exists" only after confirming through
`GET /orders`, so a resend after a crash or timeout never creates a second DCL order. The NetSuite
flag ``custbody_sent_to_3pl`` is a desired-state PATCH made only after DCL accepted the order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mienne_ops.domain.dispatch import (
    RESEND_SAME_NUMBER,
    RESEND_SUFFIX,
    DispatchConfig,
    plan_dcl_order,
    resend_order_number,
)
from mienne_ops.domain.journey import DISPATCHED_STAGES, Entity, Flow, OrderJourney, Stage
from mienne_ops.domain.orders import sales_order_external_id
from mienne_ops.domain.suiteql_rows import SalesOrderLine, UnreadableRow
from mienne_ops.errors import RemoteValidationError
from mienne_ops.integrations.dcl import DclClient
from mienne_ops.integrations.netsuite import NetSuiteClient, suiteql_date
from mienne_ops.ledger import Ledger
from mienne_ops.ledger.store import ExceptionStatus
from mienne_ops.sync import holds
from mienne_ops.sync.batch import BatchReport, Outcome, run_batch
from mienne_ops.sync.hold_recall import DclRecall

log = logging.getLogger("mienne_ops.sync.dispatch")

FLOW = Flow.DISPATCH.value  # a plain str: it is also a Dagster run tag, which must not be an Enum
ENTITY = Entity.SALES_ORDER

PENDING_DISPATCH_QUERY = (
    "SELECT t.id, t.tranid, t.externalid, t.otherrefnum, "
    f"{suiteql_date('t.trandate', 'trandate')}, t.entity FROM transaction t "
    "WHERE t.type = 'SalesOrd' AND t.status = 'B' AND t.custbody_sent_to_3pl = 'F' ORDER BY t.id"
)

# A kit on a sales order is its kit line plus hidden member lines (``kitmemberof`` = the kit line):
# only the kit line is the order's line. DCL gets the kit as its SKU or exploded into its components
# (bundle_lines, per the BOM flag), and NetSuite fulfils the members with their kit line.
LINES_QUERY = (
    "SELECT tl.transaction, tl.id AS line, i.itemid AS sku, tl.itemtype, ABS(tl.quantity) AS qty, "
    "tl.quantityshiprecv AS qty_shipped, tl.isclosed, tl.custcol_shopify_line_id AS shopify_line_id, "
    "tl.custcol_dcl_quantity AS dcl_qty "
    "FROM transactionline tl JOIN item i ON i.id = tl.item "
    "WHERE tl.transaction IN ({ids}) AND tl.mainline = 'F' AND tl.taxline = 'F' "
    "AND tl.kitmemberof IS NULL AND tl.itemtype IN ('InvtPart','Assembly','Kit') "
    "ORDER BY tl.transaction, tl.linesequencenumber"
)


def shopify_order_key(external_id: str | None) -> str | None:
    """The Shopify order id inside a sales order's external id (``shopify-order-<id>``)."""
    prefix = sales_order_external_id(0)[:-1]
    if external_id and external_id.startswith(prefix):
        return external_id[len(prefix) :]
    return None


def sales_order_lines(
    netsuite: NetSuiteClient, sales_order_ids: list[str]
) -> dict[str, list[SalesOrderLine | UnreadableRow]]:
    """Item lines of many sales orders in one SuiteQL query, parsed once, grouped by sales order id
    (a line that cannot be read stays with its order, which is then refused with the reason)."""
    lines: dict[str, list[SalesOrderLine | UnreadableRow]] = {so_id: [] for so_id in sales_order_ids}
    for start in range(0, len(sales_order_ids), 500):
        chunk = sales_order_ids[start : start + 500]
        query = LINES_QUERY.format(ids=", ".join(str(int(so_id)) for so_id in chunk))
        for row in netsuite.suiteql_rows(SalesOrderLine, query):
            so_id = row.raw.get("transaction") if isinstance(row, UnreadableRow) else row.transaction
            lines.setdefault(str(so_id), []).append(row)
    return lines


def held_sales_order_ids(ledger: Ledger) -> set[str]:
    """Sales orders not dispatched meanwhile: their Shopify order is on hold, or has an unresolved
    flow-A exception.

    A hold (`domain.holds`: edit window, fraud, address, value, pre-order, manual) keeps an order
    from DCL until it is released. An order with an exception exists in NetSuite but is not known
    good: NetSuite booked another total than Shopify's (`netsuite_total_mismatch`) or a later edit
    could not be applied to it. Shipping it would ship what the customer no longer ordered.
    """
    statuses = [ExceptionStatus.OPEN, ExceptionStatus.RETRYING]
    keys = ledger.keys_with_exceptions(Flow.ORDERS, Entity.ORDER, statuses)
    moment = holds.utc_now()
    keys |= {h.shopify_order_id for h in ledger.active_holds() if holds.holding(h, moment)}
    journeys = ledger.journeys(keys).values() if keys else []
    return {j.netsuite_sales_order_id for j in journeys if j.netsuite_sales_order_id}


def withdrawn_sales_order_ids(ledger: Ledger) -> set[str]:
    """Sales orders whose DCL order was cancelled for a hold (`sync.hold_recall`): flow B sends them
    again once released, found here even if NetSuite's flag was never set back to F (a crash)."""
    journeys = ledger.journeys_in_stage([Stage.WITHDRAWN, Stage.WITHDRAWING])
    return {j.netsuite_sales_order_id for j in journeys if j.netsuite_sales_order_id}


@dataclass(frozen=True)
class PlannedDispatch:
    """A sales order ready for DCL: the DCL order and the Shopify order it came from (if any)."""

    dcl_order: dict
    shopify_order_id: str | None
    tranid: str | None
    # A resend of an order DCL cancelled for a hold: its journey and the cancelled number.
    journey_id: int | None = None
    resend_of: str | None = None


@dataclass
class Dispatcher:
    netsuite: NetSuiteClient
    dcl: DclClient
    ledger: Ledger
    config: DispatchConfig
    workers: int = 1
    # How an order DCL cancelled for a hold is sent again (`BusinessRules.dcl_resend_cancelled_as`).
    resend_mode: str = RESEND_SUFFIX

    def dispatch(self, sales_order_ids: list[str]) -> BatchReport:
        """Plan every order, send the good ones to DCL in one batch, then set their flags."""
        lines = sales_order_lines(self.netsuite, sales_order_ids)
        planned: dict[str, PlannedDispatch] = {}
        held = held_sales_order_ids(self.ledger)

        def plan(so_id: str) -> Outcome:
            if so_id in held:
                return Outcome.SKIPPED
            header = self.netsuite.get("salesOrder", so_id, expand=True)
            # The Shopify order, from the sales order's own external id: found once, used for both
            # the cancelled check and the journey written when DCL accepts.
            key = shopify_order_key(header.get("externalId"))
            journey = self.ledger.journey(key) if key else None
            if journey and journey.stage == Stage.CANCELLED:
                return Outcome.SKIPPED
            if journey and journey.stage == Stage.WITHDRAWING:
                # Released while DCL was being asked to cancel: finish that first (never guess).
                if not DclRecall(self.dcl, self.netsuite, self.ledger).withdraw(journey):
                    return Outcome.SKIPPED  # DCL refused: it still has the order, which goes on
                journey = self.ledger.journey(str(key))
            resend = journey is not None and journey.stage == Stage.WITHDRAWN
            if not resend and header.get("custbody_sent_to_3pl") is True:
                return Outcome.SKIPPED
            order = plan_dcl_order(header, lines.get(so_id, []), self.config)
            order["order_number"] = self._order_number(order["order_number"], journey)
            planned[so_id] = PlannedDispatch(
                dcl_order=order,
                shopify_order_id=key,
                tranid=header.get("tranId"),
                journey_id=journey.id if resend and journey else None,
                resend_of=journey.dcl_order_number if resend and journey else None,
            )
            return Outcome.DONE

        report = run_batch(
            flow=FLOW,
            entity=ENTITY,
            keys=sales_order_ids,
            handle=plan,
            ledger=self.ledger,
            workers=self.workers,
        )
        if not planned:
            return report
        results = {r.order_number: r for r in self.dcl.submit_batch([p.dcl_order for p in planned.values()])}

        def confirm(so_id: str) -> Outcome:
            order = planned[so_id].dcl_order
            result = results.get(order["order_number"])
            plan = planned[so_id]
            if result is None or not (result.accepted or result.already_exists):
                message = result.error_message if result else "no result for this order in the batch"
                if plan.resend_of and self.resend_mode == RESEND_SAME_NUMBER:
                    message += (
                        f" (sending DCL order {plan.resend_of} again after DCL cancelled it: DCL does "
                        "not take the cancelled order's number again; set dcl_resend_cancelled_as "
                        "to suffix and retry)"
                    )
                raise RemoteValidationError(
                    message, system="dcl", operation="batches", record=order["order_number"]
                )
            resent = f" (again, after {plan.resend_of} was cancelled)" if plan.resend_of else ""
            self.ledger.audit(
                "dcl", "batches.order", order["order_number"], "ok", remote_id=so_id, detail=resent or None
            )
            if plan.resend_of and plan.journey_id is not None:
                # Before NetSuite's flag: flow C must find the new number's shipments, and a crash
                # after this leaves a journey flow B re-confirms under the new number.
                self.ledger.rebind_dcl_order(plan.journey_id, plan.resend_of, order["order_number"])
            self.netsuite.patch("salesOrder", so_id, {"custbody_sent_to_3pl": True})
            self.ledger.record_dispatch(
                so_id,
                order["order_number"],
                shopify_order_id=planned[so_id].shopify_order_id,
                tranid=planned[so_id].tranid,
            )
            return Outcome.DONE

        confirmed = run_batch(
            flow=FLOW, entity=ENTITY, keys=list(planned), handle=confirm, ledger=self.ledger
        )
        # The plan step counted planned orders as done; the confirm step has the final word for them.
        report.counts[Outcome.DONE] -= len(planned)
        report.merge(confirmed)
        return report

    def _order_number(self, base: str, journey: OrderJourney | None) -> str:
        """The DCL number to send: a withdrawn order's next number; an order DCL already has, the
        number it has it under (a resend's may differ from the tranId's); else the tranId's."""
        if journey is None or not journey.dcl_order_number:
            return base
        if journey.stage == Stage.WITHDRAWN:
            return resend_order_number(base, journey.dcl_order_number, self.resend_mode)
        if journey.stage in DISPATCHED_STAGES:
            return journey.dcl_order_number
        return base


def dispatch_config(rules, kit_components: dict[str, list[tuple[str, int]]], account: str, freight: str):
    ship_methods = {}
    for ship_method_id in rules.dcl_ship_methods:
        carrier_service = rules.dcl_carrier_service(int(ship_method_id))
        if carrier_service:
            ship_methods[int(ship_method_id)] = carrier_service
    return DispatchConfig(
        account_number=account,
        freight_account=freight,
        ship_methods=ship_methods,
        kit_components=kit_components,
        rush_ship_method_ids=set(rules.rush_ship_method_ids),
    )
