"""The Dagster code location: every flow's jobs, sensors, schedules and assets, plus resources.

Resources come from `mienne_ops.resources.build_resources`, the one place that picks the live
service or the sandbox per system. Tests build the same definitions with their own resources.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from mienne_ops.flows import dispatch, fulfillment, inbound, inventory, operations, orders
from mienne_ops.resources import build_resources

JOBS: list[dg.JobDefinition | dg.UnresolvedAssetJobDefinition] = [
    orders.shopify_order_ingestion_job,
    dispatch.netsuite_dispatch_job,
    fulfillment.dcl_shipment_sync_job,
    operations.order_exceptions_job,
    inbound.inbound_announcement_job,
    inbound.inbound_receipt_job,
    inbound.inbound_reconciliation_job,
    *inventory.JOBS,
]
SENSORS = [
    orders.shopify_orders_sensor,
    dispatch.netsuite_dispatch_sensor,
    fulfillment.dcl_shipments_sensor,
    inbound.netsuite_inbound_orders_sensor,
    inbound.dcl_po_receipts_sensor,
    *inventory.SENSORS,
]
SCHEDULES = [
    operations.order_exceptions_schedule,
    inbound.inbound_reconciliation_schedule,
    *inventory.SCHEDULES,
]
ASSETS = [operations.order_exceptions, inbound.inbound_reconciliation, *inventory.ASSETS]


def build_definitions(resources: dict[str, Any] | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=ASSETS,
        jobs=JOBS,
        sensors=SENSORS,
        schedules=SCHEDULES,
        resources=resources if resources is not None else build_resources(),
    )


defs = build_definitions()
