"""Flow D in Dagster: POs / TOs announced to DCL, DCL receipts posted as item receipts, reconciliation.

- `netsuite_inbound_orders_sensor` asks SuiteQL for open POs / TOs at a DCL warehouse that are not
  yet announced (``custbody_sent_to_3pl = 'F'``) or were modified since the last tick after being
  announced (an edit may need an UPDATE announcement; the run compares fingerprints and sends
  nothing when the content is unchanged). One run per batch, one batch in flight at a time.
- `dcl_po_receipts_sensor` polls ``GET /po_receipts?received_from=`` from its cursor (an aware UTC
  instant; the client sends DCL's Pacific date, so the day boundary is DCL's, and a day's receipts
  are re-read until the next day — the ledger skips those already posted). It requests one run per
  batch of DCL POs that have receipts not yet in NetSuite; the run re-reads them from DCL.
- `inbound_reconciliation` (asset, every 30 minutes) compares, per open PO / TO: ordered, announced,
  received at DCL and received in NetSuite; its checks flag inbound that is stuck or mismatched.
"""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
from pydantic import field_serializer, field_validator

from mienne_ops.business_rules import BusinessRules
from mienne_ops.domain.dcl_records import Receipt
from mienne_ops.domain.inbound import InboundOrder, receipt_key
from mienne_ops.domain.inbound_reconciliation import (
    COLUMNS,
    InboundProblem,
    excess_by_po,
    reconcile,
    with_problems,
)
from mienne_ops.domain.reports import table_records
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
from mienne_ops.integrations.netsuite import NetSuiteResource, parse_suiteql_datetime
from mienne_ops.ledger.resource import LedgerResource
from mienne_ops.ledger.store import Ledger
from mienne_ops.sync.batch import run_batch
from mienne_ops.sync.inbound import (
    ENTITY_ORDER,
    ENTITY_PO,
    ENTITY_RECEIPT,
    FLOW,
    Announcer,
    ReceiptSync,
    load_orders,
    pending_orders_query,
)


def warehouse_by_location(rules: BusinessRules) -> dict[int, str]:
    return {location: code for code, location in rules.netsuite_location_by_warehouse.items()}


# -- ASN out --------------------------------------------------------------------------------------


class AnnounceConfig(dg.Config):
    order_ids: list[str]


@dg.op(retry_policy=BATCH_RETRY_POLICY, tags={TAG_FLOW: FLOW, **on_queue("dcl")})
@stop_on_rejected_credentials
def announce_inbound_orders(
    context: dg.OpExecutionContext,
    config: AnnounceConfig,
    netsuite: NetSuiteResource,
    dcl: DclResource,
    ledger: LedgerResource,
    rules: BusinessRules,
) -> dg.Output:
    """Announce (or update) each PO / TO at DCL and flag it in NetSuite."""
    announcer = Announcer(
        netsuite.client,
        dcl.client,
        ledger.ledger,
        warehouse_by_location(rules),
        asn_updates=rules.dcl_asn_updates,
    )
    # An order whose rows cannot be read is left out here and fails alone, quarantined with its reason.
    orders = load_orders(netsuite.client, config.order_ids, skip_unreadable=True)
    report = run_batch(
        flow=FLOW,
        entity=ENTITY_ORDER,
        keys=config.order_ids,
        handle=lambda order_id: announcer.announce(order_id, orders.get(order_id)),
        ledger=ledger.ledger,
        workers=rules.parallel_records,
    )
    return finish(context, report)


@dg.job(tags=flow_tags(FLOW), executor_def=flow_executor())
def inbound_announcement_job():
    announce_inbound_orders()


ASN_RUNS = BatchRuns(announce_inbound_orders, lambda batch: AnnounceConfig(order_ids=batch), "asn", FLOW)


def _modified_after(row: dict, since: datetime | None) -> bool:
    if since is None:
        return True
    stamp = parse_suiteql_datetime(row.get("lastmodifieddate"))
    # No stamp (the query selects it with TO_CHAR, so only a NULL): let the run decide (fingerprints).
    return stamp is None or stamp > since


class InboundOrdersCursor(SensorCursor):
    """The newest ``lastmodifieddate`` seen among announced orders (NetSuite's naive account time)."""

    modified_after: datetime | None = None

    @field_validator("modified_after", mode="before")
    @classmethod
    def _netsuite_stamp(cls, value: Any) -> datetime | None:
        # A cursor from before the query's TO_CHAR holds another format: it reads as none (one re-check).
        return value if isinstance(value, datetime) else parse_suiteql_datetime(value)

    @field_serializer("modified_after")
    def _as_netsuite_stamp(self, value: datetime | None) -> str | None:
        return value.strftime("%Y-%m-%d %H:%M:%S") if value else None


@flow_sensor(
    job=inbound_announcement_job,
    minimum_interval_seconds=30,
    description="SuiteQL: open POs / TOs at DCL not yet announced, or edited since -> flow D ASN runs",
    one_run_at_a_time="an announcement run",
)
def netsuite_inbound_orders_sensor(
    context: dg.SensorEvaluationContext,
    netsuite: NetSuiteResource,
    ledger: LedgerResource,
    rules: BusinessRules,
) -> dg.SensorResult:
    since = InboundOrdersCursor.parse(context.cursor).modified_after
    locations = list(rules.netsuite_location_by_warehouse.values())
    client = netsuite.client
    new = [str(row["id"]) for row in client.suiteql(pending_orders_query(locations, sent=False))]
    announced = list(client.suiteql(pending_orders_query(locations, sent=True)))
    edited = [str(row["id"]) for row in announced if _modified_after(row, since)]
    stamps = [s for row in announced if (s := parse_suiteql_datetime(row.get("lastmodifieddate")))]
    cursor = InboundOrdersCursor(modified_after=max([*stamps, *([since] if since else [])], default=None))
    ids = read_exceptions(ledger.ledger, FLOW, ENTITY_ORDER).due([*new, *edited])
    requests = ASN_RUNS.requests(sorted(ids, key=int), size=rules.inbound_orders_per_run)
    return sensor_result(requests, skip_reason="no purchase or transfer order to announce", cursor=cursor)


# -- receipts in ----------------------------------------------------------------------------------


class ReceiptsConfig(dg.Config):
    dcl_po_numbers: list[str]


@dg.op(retry_policy=BATCH_RETRY_POLICY, tags={TAG_FLOW: FLOW, **on_queue("netsuite")})
@stop_on_rejected_credentials
def post_dcl_receipts(
    context: dg.OpExecutionContext,
    config: ReceiptsConfig,
    netsuite: NetSuiteResource,
    dcl: DclResource,
    ledger: LedgerResource,
    rules: BusinessRules,
) -> dg.Output:
    """Each DCL PO's receipts become NetSuite item receipts; fully received orders are closed."""
    sync = ReceiptSync(netsuite.client, ledger.ledger, dict(rules.netsuite_location_by_warehouse))

    def handle(dcl_po_number: str):
        receipts = list(dcl.client.iter_receipts(dcl_po_number=dcl_po_number))
        if not receipts:
            raise NotFoundError("DCL reports no receipt for this PO", system="dcl", record=dcl_po_number)
        return sync.sync_po(dcl_po_number, receipts)

    report = run_batch(
        flow=FLOW,
        entity=ENTITY_PO,
        keys=config.dcl_po_numbers,
        handle=handle,
        ledger=ledger.ledger,
        workers=rules.parallel_records,  # one worker per DCL PO: receipts of one PO stay in order
    )
    return finish(context, report)


@dg.job(tags=flow_tags(FLOW), executor_def=flow_executor())
def inbound_receipt_job():
    post_dcl_receipts()


RECEIPT_RUNS = BatchRuns(
    post_dcl_receipts, lambda batch: ReceiptsConfig(dcl_po_numbers=batch), "receipts", FLOW
)


class ReceiptsCursor(SensorCursor):
    """Where the next poll of DCL's receipts starts (before the look-back)."""

    received_from: datetime | None = None


@flow_sensor(
    job=inbound_receipt_job,
    minimum_interval_seconds=30,
    description="DCL GET /po_receipts?received_from=cursor -> flow D item receipt runs",
    one_run_at_a_time="a receipt run",
)
def dcl_po_receipts_sensor(
    context: dg.SensorEvaluationContext,
    dcl: DclResource,
    ledger: LedgerResource,
    rules: BusinessRules,
) -> dg.SensorResult:
    window = PollWindow.after(
        ReceiptsCursor.parse(context.cursor).received_from,
        first_poll=timedelta(days=rules.inbound_receipts_lookback_days),
        overlap=timedelta(hours=1),  # clock skew between DCL and us
    )
    receipts = list(dcl.client.iter_receipts(received_from=window.since))
    keys = {f"{r.dcl_po_number}-{receipt_key(r)}": str(r.dcl_po_number) for r in receipts}
    store = ledger.ledger
    posted = store.posted_receipt_keys(keys)
    # Unreadable receipts wait in the exceptions queue (a retry re-reads them), not on every tick.
    unreadable = read_exceptions(store, FLOW, ENTITY_RECEIPT).open
    found = {po for key, po in keys.items() if key not in posted and key not in unreadable}
    due = read_exceptions(store, FLOW, ENTITY_PO).due(found)
    numbers = sorted(due, key=int)
    requests = RECEIPT_RUNS.requests(numbers, size=rules.inbound_orders_per_run, now=window.now)
    next_poll = ReceiptsCursor(received_from=window.now)
    return sensor_result(requests, skip_reason="no new DCL receipts", cursor=next_poll)


# -- reconciliation -------------------------------------------------------------------------------

CHECK_STUCK = "received_at_dcl_posted_in_netsuite"
#: Each check of `inbound_reconciliation`: its severity and the problem kinds that fail it.
CHECKS: dict[str, tuple[dg.AssetCheckSeverity, list[InboundProblem]]] = {
    CHECK_STUCK: (
        dg.AssetCheckSeverity.ERROR,
        [InboundProblem.UNREADABLE_RECEIPT, InboundProblem.RECEIVED_NOT_POSTED],
    ),
    "announced_matches_ordered": (
        dg.AssetCheckSeverity.WARN,
        [InboundProblem.ANNOUNCED_DIFFERS, InboundProblem.DCL_RECEIVED_MORE],
    ),
    "open_orders_announced": (dg.AssetCheckSeverity.WARN, [InboundProblem.NOT_ANNOUNCED]),
}


def announced_units(ledger: Ledger, orders: list[InboundOrder]) -> dict[str, int | None]:
    """Units in each order's newest announcement (None: never announced)."""
    announced: dict[str, int | None] = {}
    for order in orders:
        versions = ledger.asn_versions(order.id)
        announced[order.id] = versions[max(versions)].units if versions else None
    return announced


def receipts_by_dcl_po(dcl: DclResource, since: datetime) -> dict[str, list[Receipt]]:
    receipts: dict[str, list[Receipt]] = defaultdict(list)
    for receipt in dcl.client.iter_receipts(received_from=since):
        receipts[str(receipt.dcl_po_number)].append(receipt)
    return receipts


@dg.asset(
    group_name="inbound",
    description="Open POs / TOs: ordered vs announced vs received at DCL vs received in NetSuite",
    check_specs=[dg.AssetCheckSpec(name, asset="inbound_reconciliation") for name in CHECKS],
)
def inbound_reconciliation(
    netsuite: NetSuiteResource, dcl: DclResource, ledger: LedgerResource, rules: BusinessRules
) -> dg.MaterializeResult:
    client, store = netsuite.client, ledger.ledger
    locations = list(rules.netsuite_location_by_warehouse.values())
    ids = [
        str(row["id"])
        for sent in (False, True)
        for row in client.suiteql(pending_orders_query(locations, sent=sent))
    ]
    orders = list(load_orders(client, ids).values())
    now = datetime.now(UTC)
    receipts = receipts_by_dcl_po(dcl, now - timedelta(days=90))
    keys = [f"{po}-{receipt_key(r)}" for po, rs in receipts.items() for r in rs]
    rows = reconcile(
        orders,
        announced_units(store, orders),
        store.dcl_po_numbers(ids),
        receipts,
        excess_by_po(row.context for row in store.exceptions(flow=FLOW) if row.entity == ENTITY_RECEIPT),
        store.posted_receipt_keys(keys),
        now,
        timedelta(hours=rules.inbound_stuck_hours),
    )
    bad = with_problems(rows)
    failing = {name: with_problems(rows, kinds) for name, (_, kinds) in CHECKS.items()}
    table = dg.MetadataValue.table(
        records=[dg.TableRecord(record) for record in table_records(bad[COLUMNS].head(200))],
        schema=dg.TableSchema(
            columns=[dg.TableColumn(name, "string") for name in (COLUMNS if len(rows) else ["order"])]
        ),
    )
    return dg.MaterializeResult(
        metadata={
            "open_orders": dg.MetadataValue.int(len(rows)),
            "with_problems": dg.MetadataValue.int(len(bad)),
            "stuck": dg.MetadataValue.int(len(failing[CHECK_STUCK])),
            "problems": table,
            "summary": dg.MetadataValue.json({"open": len(rows), "problems": len(bad)}),
            "dagster/row_count": dg.MetadataValue.int(len(bad)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=name,
                passed=failing[name].empty,
                severity=severity,
                metadata={"orders": dg.MetadataValue.text(", ".join(failing[name]["order"].head(20)))},
            )
            for name, (severity, _) in CHECKS.items()
        ],
    )


inbound_reconciliation_job = dg.define_asset_job(
    "inbound_reconciliation_job", selection=[inbound_reconciliation]
)

inbound_reconciliation_schedule = dg.ScheduleDefinition(
    job=inbound_reconciliation_job,
    cron_schedule="*/30 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

#: Flow D's Dagster objects; `mienne_ops.definitions` merges every flow's and adds the resources.
defs = dg.Definitions(
    assets=[inbound_reconciliation],
    jobs=[inbound_announcement_job, inbound_receipt_job, inbound_reconciliation_job],
    sensors=[netsuite_inbound_orders_sensor, dcl_po_receipts_sensor],
    schedules=[inbound_reconciliation_schedule],
)
