"""Flow C in Dagster: DCL shipments become item fulfillments, StateSet shipments, Shopify fulfillments.

DCL has no webhooks, so `dcl_shipments_sensor` polls ``GET /orders?modified_from=`` from its cursor
(minus a small look-back, because DCL's clock and ours differ and its filter is in Pacific time),
keeps the orders that have shipments not yet fully synced according to the ledger, and requests one
run per batch. The run re-reads those orders from DCL so it always works on fresh data. Orders with a
retrying exception come back on every tick, except those waiting on a Shopify fulfillment order
that is on hold or scheduled: they come back every `waiting_fulfillment_recheck_seconds`.
"""

from datetime import datetime, timedelta
from typing import Any

import dagster as dg

from mienne_ops.business_rules import BusinessRules
from mienne_ops.domain.dcl_records import DclOrder
from mienne_ops.domain.exception_queue import ExceptionQueue
from mienne_ops.domain.fulfillment import WAITING_FO_REASONS, shipment_key
from mienne_ops.errors import NotFoundError
from mienne_ops.flows.common import (
    BATCH_RETRY_POLICY,
    TAG_FLOW,
    finish,
    flow_tags,
    stop_on_rejected_credentials,
)
from mienne_ops.flows.execution import flow_executor, on_queue
from mienne_ops.flows.sensor_kit import (
    BatchRuns,
    PollWindow,
    SensorCursor,
    flow_sensor,
    read_exceptions,
    sensor_result,
)
from mienne_ops.integrations.dcl import DclResource
from mienne_ops.integrations.netsuite import NetSuiteResource
from mienne_ops.integrations.shopify import ShopifyResource
from mienne_ops.integrations.stateset import StateSetResource
from mienne_ops.ledger.resource import LedgerResource
from mienne_ops.ledger.store import Ledger
from mienne_ops.sync.batch import run_batch
from mienne_ops.sync.catalog import NetSuiteCatalog
from mienne_ops.sync.fulfillment import ENTITY, FLOW, ShipmentSync


class SyncShipmentsConfig(dg.Config):
    order_numbers: list[str]


def cash_sale_fields(rules: BusinessRules) -> dict[str, Any]:
    """The cash-sale fields the rules set (payment method, deposit account)."""
    fields: dict[str, Any] = {}
    if rules.cash_sale_payment_method_id is not None:
        fields["paymentMethod"] = {"id": str(rules.cash_sale_payment_method_id)}
    if rules.cash_sale_account_id is not None:
        fields["account"] = {"id": str(rules.cash_sale_account_id)}
    return fields


@dg.op(retry_policy=BATCH_RETRY_POLICY, tags={TAG_FLOW: FLOW, **on_queue("netsuite")})
@stop_on_rejected_credentials
def sync_dcl_shipments(
    context: dg.OpExecutionContext,
    config: SyncShipmentsConfig,
    dcl: DclResource,
    netsuite: NetSuiteResource,
    shopify: ShopifyResource,
    stateset: StateSetResource,
    ledger: LedgerResource,
    rules: BusinessRules,
) -> dg.Output:
    catalog = NetSuiteCatalog.load(netsuite.client)
    sync = ShipmentSync(
        netsuite=netsuite.client,
        shopify=shopify.client,
        stateset=stateset.client,
        ledger=ledger.ledger,
        # Every kit's BOM, not only the exploded ones: components DCL ships roll up to their kit line
        # even if the BOM flag changed since dispatch (a kit shipped as itself matches by SKU first).
        kit_components=catalog.kits,
        location_by_warehouse=rules.netsuite_location_by_warehouse,
        default_location_id=rules.netsuite_location_id,
        cash_sale_policy=rules.cash_sale_policy,
        notify_customer=rules.notify_customer_on_fulfillment,
        package_sublists={int(k): v for k, v in rules.netsuite_package_sublists.items()},
        cash_sale_fields=cash_sale_fields(rules),
        billing_record=rules.billing_record,
    )
    fresh = {order.order_number: order for order in dcl.client.orders(config.order_numbers)}

    def handle(order_number: str):
        if order_number not in fresh:
            raise NotFoundError("DCL does not know this order", system="dcl", record=order_number)
        return sync.sync(fresh[order_number])

    report = run_batch(
        flow=FLOW,
        entity=ENTITY,
        keys=config.order_numbers,
        handle=handle,
        ledger=ledger.ledger,
        workers=rules.parallel_records,
    )
    return finish(context, report)


@dg.job(tags=flow_tags(FLOW), executor_def=flow_executor())
def dcl_shipment_sync_job():
    sync_dcl_shipments()


SHIPMENT_RUNS = BatchRuns(
    sync_dcl_shipments, lambda batch: SyncShipmentsConfig(order_numbers=batch), "shipments", FLOW
)


def orders_needing_sync(orders: list[DclOrder], ledger: Ledger) -> set[str]:
    """Orders shipped at DCL with at least one shipment not yet complete in the ledger (one query)."""
    shipments = {
        shipment_key(order.order_number, shipment): order.order_number
        for order in orders
        if order.shipped
        for shipment in order.shipments
    }
    synced = ledger.shipments_on_shopify(shipments)
    return {number for key, number in shipments.items() if key not in synced}


def retrying_orders_due(exceptions: ExceptionQueue, now: datetime, recheck: timedelta) -> set[str]:
    """Orders with a retrying exception: all of them, except those waiting on a held or scheduled
    Shopify fulfillment order that were last tried less than ``recheck`` ago."""
    return exceptions.retrying_paced(now, recheck, set(WAITING_FO_REASONS.values()))


class ShipmentsCursor(SensorCursor):
    """Where the next poll of DCL's modified orders starts (before the look-back)."""

    modified_from: datetime | None = None


@flow_sensor(
    job=dcl_shipment_sync_job,
    description="DCL GET /orders?modified_from=cursor -> flow C runs for new shipments",
    one_run_at_a_time="a shipment sync run",
)
def dcl_shipments_sensor(
    context: dg.SensorEvaluationContext,
    dcl: DclResource,
    ledger: LedgerResource,
    rules: BusinessRules,
) -> dg.SensorResult:
    window = PollWindow.after(
        ShipmentsCursor.parse(context.cursor).modified_from,
        first_poll=timedelta(days=7),
        overlap=timedelta(minutes=rules.shipment_lookback_minutes),
    )
    store = ledger.ledger
    exceptions = read_exceptions(store, FLOW, ENTITY)
    polled = [
        order
        for order in dcl.client.iter_parsed_orders(modified_from=window.since)
        if order.order_number not in exceptions.open
    ]
    recheck = timedelta(seconds=rules.waiting_fulfillment_recheck_seconds)
    due = exceptions.due(
        orders_needing_sync(polled, store), retrying=retrying_orders_due(exceptions, window.now, recheck)
    )
    requests = SHIPMENT_RUNS.requests(sorted(due), size=rules.orders_per_run, now=window.now)
    next_poll = ShipmentsCursor(modified_from=window.now)
    return sensor_result(requests, skip_reason="no new DCL shipments", cursor=next_poll)


#: Flow C's Dagster objects; `mienne_ops.definitions` merges every flow's and adds the resources.
defs = dg.Definitions(jobs=[dcl_shipment_sync_job], sensors=[dcl_shipments_sensor])
