"""Flow B in Dagster: approved NetSuite sales orders with ``custbody_sent_to_3pl = F`` go to DCL.

`netsuite_dispatch_sensor` asks SuiteQL for waiting sales orders (and the ledger for orders DCL
cancelled for a hold, to send again once released) and requests one run per batch,
only when no dispatch run is already queued or running (one batch in flight at a time, like a
connector's single flow instance), and leaves out orders quarantined until someone retries them.
"""

import dagster as dg

from mienne_ops.business_rules import BusinessRules
from mienne_ops.domain.suiteql_rows import PendingSalesOrder, UnreadableRow
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
    flow_sensor,
    read_exceptions,
    sensor_result,
)
from mienne_ops.integrations.dcl import DclResource
from mienne_ops.integrations.netsuite import NetSuiteResource
from mienne_ops.ledger.resource import LedgerResource
from mienne_ops.sync.catalog import NetSuiteCatalog
from mienne_ops.sync.dispatch import (
    ENTITY,
    FLOW,
    PENDING_DISPATCH_QUERY,
    Dispatcher,
    dispatch_config,
    held_sales_order_ids,
    withdrawn_sales_order_ids,
)


class DispatchBatchConfig(dg.Config):
    sales_order_ids: list[str]


@dg.op(retry_policy=BATCH_RETRY_POLICY, tags={TAG_FLOW: FLOW, **on_queue("netsuite")})
@stop_on_rejected_credentials
def dispatch_sales_orders(
    context: dg.OpExecutionContext,
    config: DispatchBatchConfig,
    netsuite: NetSuiteResource,
    dcl: DclResource,
    ledger: LedgerResource,
    rules: BusinessRules,
) -> dg.Output:
    """Send one batch of sales orders to DCL and flag the accepted ones in NetSuite."""
    catalog = NetSuiteCatalog.load(netsuite.client)
    dispatcher = Dispatcher(
        netsuite=netsuite.client,
        dcl=dcl.client,
        ledger=ledger.ledger,
        config=dispatch_config(
            rules, catalog.exploded_kit_components(), dcl.account_number, dcl.freight_account
        ),
        workers=rules.parallel_records,
        resend_mode=rules.dcl_resend_cancelled_as,
    )
    return finish(context, dispatcher.dispatch(config.sales_order_ids))


@dg.job(tags=flow_tags(FLOW), executor_def=flow_executor())
def netsuite_dispatch_job():
    dispatch_sales_orders()


DISPATCH_RUNS = BatchRuns(
    dispatch_sales_orders, lambda batch: DispatchBatchConfig(sales_order_ids=batch), "dispatch", FLOW
)


def pending_sales_order_ids(
    context: dg.SensorEvaluationContext, netsuite: NetSuiteResource, limit: int, skip: set[str]
) -> list[str]:
    """Up to ``limit`` waiting sales orders, oldest first, leaving out ``skip`` (quarantined or held)
    before counting, so a pile of quarantined orders at the front never starves the rest. A row
    without a readable id cannot be handled or quarantined: it is logged for a person."""
    ids = []
    for row in netsuite.client.suiteql_rows(PendingSalesOrder, PENDING_DISPATCH_QUERY):
        if isinstance(row, UnreadableRow):
            context.log.error(f"a pending sales order row cannot be read ({row.problem}): {row.raw}")
            continue
        if row.id in skip:
            continue
        ids.append(row.id)
        if len(ids) >= limit:
            break
    return ids


@flow_sensor(
    job=netsuite_dispatch_job,
    description="SuiteQL: approved sales orders not yet sent to DCL -> flow B runs",
    one_run_at_a_time="a dispatch run",
)
def netsuite_dispatch_sensor(
    context: dg.SensorEvaluationContext,
    netsuite: NetSuiteResource,
    ledger: LedgerResource,
    rules: BusinessRules,
) -> dg.SensorResult:
    # Retrying orders need no adding: their flag is still F, so SuiteQL brings them back.
    quarantined = set(read_exceptions(ledger.ledger, FLOW, ENTITY).open)
    quarantined |= held_sales_order_ids(ledger.ledger)  # flow A's open problems hold their orders
    limit = rules.dispatch_batch_size * 5
    ids = pending_sales_order_ids(context, netsuite, limit=limit, skip=quarantined)
    # Orders DCL cancelled for a hold, released since: sent again even if NetSuite's flag is still T.
    withdrawn = sorted(withdrawn_sales_order_ids(ledger.ledger) - quarantined - set(ids))
    ids += withdrawn[: max(0, limit - len(ids))]
    requests = DISPATCH_RUNS.requests(ids, size=rules.dispatch_batch_size)
    return sensor_result(requests, skip_reason="no sales orders waiting for DCL")


#: Flow B's Dagster objects; `mienne_ops.definitions` merges every flow's and adds the resources.
defs = dg.Definitions(jobs=[netsuite_dispatch_job], sensors=[netsuite_dispatch_sensor])
