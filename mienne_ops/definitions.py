"""The Dagster code location: every flow's jobs, sensors, schedules and assets, plus resources.

Resources come from `mienne_ops.resources.build_resources`, the one place that picks the live
service or the sandbox per system. Tests build the same definitions with their own resources.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from mienne_ops.flows import dispatch, fulfillment, operations, orders
from mienne_ops.resources import build_resources

JOBS: list[dg.JobDefinition | dg.UnresolvedAssetJobDefinition] = [
    orders.shopify_order_ingestion_job,
    dispatch.netsuite_dispatch_job,
    fulfillment.dcl_shipment_sync_job,
    operations.order_exceptions_job,
]
SENSORS = [
    orders.shopify_orders_sensor,
    dispatch.netsuite_dispatch_sensor,
    fulfillment.dcl_shipments_sensor,
]
SCHEDULES = [operations.order_exceptions_schedule]
ASSETS = [operations.order_exceptions]


def build_definitions(resources: dict[str, Any] | None = None) -> dg.Definitions:
    return dg.Definitions(
        assets=ASSETS,
        jobs=JOBS,
        sensors=SENSORS,
        schedules=SCHEDULES,
        resources=resources if resources is not None else build_resources(),
    )


defs = build_definitions()
