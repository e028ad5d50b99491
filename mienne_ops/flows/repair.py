"""The repair sweep in Dagster: every 10 minutes, orders with a missing earlier step are finished.

`journey_repair_sensor` compares the ledger's recent journeys with Shopify (`sync.repair`: one
indexed ledger read, one id-only Shopify search from its cursor) and asks for
- a `journey_repair_job` run for the orders whose flow A steps, tag or StateSet status are missing —
  tagged as flow A, so it never runs beside an import of the same orders;
- a flow C run (`dcl_shipment_sync_job`) for the DCL orders with a shipment whose tracking is not
  on Shopify, or whose booking (cash sale or invoice) flow C never finished: flow C's own path
  finishes it.
The cursor keeps the last sweep's time, so Shopify is searched only since then; the ledger's window
(`BusinessRules.repair_window_days`) bounds the rest.
"""

import os
from datetime import UTC, datetime, timedelta

import dagster as dg

from mienne_ops.business_rules import BusinessRules
from mienne_ops.flows.common import (
    BATCH_RETRY_POLICY,
    TAG_FLOW,
    finish,
    flow_tags,
    stop_on_rejected_credentials,
)
from mienne_ops.flows.execution import flow_executor, on_queue
from mienne_ops.flows.fulfillment import SyncShipmentsConfig, dcl_shipment_sync_job, sync_dcl_shipments
from mienne_ops.flows.sensor_kit import SensorCursor, chunks, digest, run_request, tick_stamp
from mienne_ops.integrations.netsuite import NetSuiteResource
from mienne_ops.integrations.shopify import ShopifyResource
from mienne_ops.integrations.stateset import StateSetResource
from mienne_ops.ledger.resource import LedgerResource
from mienne_ops.sync.batch import run_batch
from mienne_ops.sync.fulfillment import FLOW as FULFILLMENT_FLOW
from mienne_ops.sync.orders import OrderSystems
from mienne_ops.sync.repair import ENTITY, FLOW, JourneyRepair, SweepWindow, describe_findings

#: How often the sweep runs; ``MIENNE_REPAIR_EVERY_SECONDS`` shortens it for a drill or the soak.
REPAIR_EVERY_SECONDS = int(os.environ.get("MIENNE_REPAIR_EVERY_SECONDS") or 600)


class RepairJourneysConfig(dg.Config):
    order_ids: list[str]


def journey_repair(
    rules: BusinessRules,
    *,
    shopify: ShopifyResource,
    netsuite: NetSuiteResource,
    stateset: StateSetResource,
    ledger: LedgerResource,
) -> JourneyRepair:
    return JourneyRepair.from_rules(
        rules, OrderSystems(shopify.client, netsuite.client, stateset.client, ledger.ledger)
    )


@dg.op(retry_policy=BATCH_RETRY_POLICY, tags={TAG_FLOW: FLOW, **on_queue("netsuite")})
@stop_on_rejected_credentials
def repair_journeys(
    context: dg.OpExecutionContext,
    config: RepairJourneysConfig,
    shopify: ShopifyResource,
    netsuite: NetSuiteResource,
    stateset: StateSetResource,
    ledger: LedgerResource,
    rules: BusinessRules,
) -> dg.Output:
    """Finish each order's missing steps, isolating every order's failure (flow A's queue)."""
    repair = journey_repair(rules, shopify=shopify, netsuite=netsuite, stateset=stateset, ledger=ledger)
    report = run_batch(
        flow=FLOW, entity=ENTITY, keys=config.order_ids, handle=repair.repair, ledger=ledger.ledger
    )
    return finish(context, report)


@dg.job(tags=flow_tags(FLOW), executor_def=flow_executor())
def journey_repair_job():
    repair_journeys()


class RepairCursor(SensorCursor):
    """When the last sweep ran (Shopify's untagged orders are searched from then)."""

    swept_at: datetime | None = None


@dg.sensor(
    jobs=[journey_repair_job, dcl_shipment_sync_job],
    minimum_interval_seconds=REPAIR_EVERY_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 10 min: orders whose later stage was reached with an earlier step missing "
    "(tag, StateSet order, StateSet shipped, Shopify fulfillment) -> repair / flow C runs",
)
def journey_repair_sensor(
    context: dg.SensorEvaluationContext,
    shopify: ShopifyResource,
    stateset: StateSetResource,
    netsuite: NetSuiteResource,
    ledger: LedgerResource,
    rules: BusinessRules,
) -> dg.SensorResult:
    cursor = RepairCursor.parse(context.cursor)
    now = datetime.now(UTC)
    window = SweepWindow.at(
        now,
        window=timedelta(days=rules.repair_window_days),
        grace=timedelta(minutes=rules.repair_grace_minutes),
        last_sweep=cursor.swept_at,
    )
    repair = journey_repair(rules, shopify=shopify, netsuite=netsuite, stateset=stateset, ledger=ledger)
    findings = repair.find(window)
    cursor.swept_at = now
    for line in describe_findings(findings.due):
        context.log.info(f"gap: {line}")
    tick = tick_stamp(now)
    requests = []
    for batch in chunks(findings.order_keys, rules.orders_per_run):
        config = RepairJourneysConfig(order_ids=batch)
        request = run_request(repair_journeys, config, run_key=f"repair:{digest(batch)}:{tick}", flow=FLOW)
        requests.append(_for_job(request, journey_repair_job))
    for batch in chunks(findings.dcl_order_numbers, rules.orders_per_run):
        shipments = SyncShipmentsConfig(order_numbers=batch)
        key = f"repair-shipments:{digest(batch)}:{tick}"
        request = run_request(sync_dcl_shipments, shipments, run_key=key, flow=FULFILLMENT_FLOW)
        requests.append(_for_job(request, dcl_shipment_sync_job))
    if not requests:
        waiting = f" ({len(findings.waiting)} left to their flow for now)" if findings.waiting else ""
        return dg.SensorResult(skip_reason=f"no gaps to repair{waiting}", cursor=cursor.dump())
    return dg.SensorResult(run_requests=requests, cursor=cursor.dump())


def _for_job(request: dg.RunRequest, job: dg.JobDefinition) -> dg.RunRequest:
    """The request aimed at ``job`` (a sensor of two jobs names the job of each run)."""
    return dg.RunRequest(
        run_key=request.run_key, run_config=request.run_config, tags=request.tags, job_name=job.name
    )


#: The repair sweep's Dagster objects; `mienne_ops.definitions` merges them with the flows'.
defs = dg.Definitions(jobs=[journey_repair_job], sensors=[journey_repair_sensor])
