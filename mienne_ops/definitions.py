"""The Dagster code location: every flow's own `dg.Definitions`, merged, plus the resources.

Each module of `mienne_ops.flows` exports ``defs`` with its jobs, sensors, schedules and assets, so a
new flow is one module and one line here. Resources come from `mienne_ops.resources.build_resources`,
the one place that picks the live service or the sandbox per system. Tests build the same
definitions with their own resources.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from mienne_ops.flows import (
    alerts,
    dispatch,
    fulfillment,
    holds,
    inbound,
    inventory,
    operations,
    orders,
    repair,
    retention,
    returns,
    returns_report,
    service_requests,
    slo,
    stalled_launches,
)
from mienne_ops.resources import build_resources


def build_definitions(resources: dict[str, Any] | None = None) -> dg.Definitions:
    return dg.Definitions.merge(
        orders.defs,
        dispatch.defs,
        holds.defs,
        fulfillment.defs,
        inbound.defs,
        inventory.defs,
        operations.defs,
        service_requests.defs,
        returns.defs,
        returns_report.defs,
        alerts.defs,
        slo.defs,
        retention.defs,
        repair.defs,
        stalled_launches.defs,
        # Jobs that name no executor (the asset jobs: inventory, reports, exceptions) run their steps
        # in the run's own process. Dagster's default spawns a fresh interpreter per step, which on a
        # 2-core box doubled the cost of each of these small, frequent runs (~5 s of CPU to import).
        dg.Definitions(
            resources=resources if resources is not None else build_resources(),
            executor=dg.in_process_executor,
        ),
    )


defs = build_definitions()
