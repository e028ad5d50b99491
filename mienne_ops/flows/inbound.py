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
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
from pydantic import field_serializer, field_validator

from mienne_ops.business_rules import BusinessRules
from mienne_ops.domain.inbound import InboundOrder, receipt_key, received_at_dcl, unreadable_receipts
from mienne_ops.errors import NotFoundError
from mienne_ops.flows.common import BATCH_RETRY_POLICY, TAG_FLOW, finish, stop_on_rejected_credentials
from mienne_ops.flows.sensor_kit import (
    BatchRuns,
    SensorCursor,
    flow_sensor,
    poll_since,
    read_exceptions,
    sensor_result,
)
from mienne_ops.integrations.dcl import DclResource
from mienne_ops.integrations.netsuite import NetSuiteResource, parse_suiteql_datetime
from mienne_ops.ledger.resource import LedgerResource
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

PACIFIC = ZoneInfo("America/Los_Angeles")


def warehouse_by_location(rules: BusinessRules) -> dict[int, str]:
    return {location: code for code, location in rules.netsuite_location_by_warehouse.items()}


# -- ASN out --------------------------------------------------------------------------------------


class AnnounceConfig(dg.Config):
    order_ids: list[str]


@dg.op(retry_policy=BATCH_RETRY_POLICY, tags={TAG_FLOW: FLOW})
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
    orders = load_orders(netsuite.client, config.order_ids)
    report = run_batch(
        flow=FLOW,
        entity=ENTITY_ORDER,
        keys=config.order_ids,
        handle=lambda order_id: announcer.announce(order_id, orders.get(order_id)),
        ledger=ledger.ledger,
        workers=rules.parallel_records,
    )
    return finish(context, report)


@dg.job(tags={TAG_FLOW: FLOW}, executor_def=dg.in_process_executor)
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


@dg.op(retry_policy=BATCH_RETRY_POLICY, tags={TAG_FLOW: FLOW})
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
        receipts = list(dcl.client.iter_po_receipts(dcl_po_number=dcl_po_number))
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


@dg.job(tags={TAG_FLOW: FLOW}, executor_def=dg.in_process_executor)
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
    cursor = ReceiptsCursor.parse(context.cursor)
    now = datetime.now(UTC)
    since = poll_since(
        cursor.received_from,
        now,
        first_poll=timedelta(days=rules.inbound_receipts_lookback_days),
        overlap=timedelta(hours=1),  # clock skew between DCL and us
    )
    receipts = list(dcl.client.iter_po_receipts(received_from=since))
    keys = {f"{r['dcl_po_number']}-{receipt_key(r)}": str(r["dcl_po_number"]) for r in receipts}
    store = ledger.ledger
    posted = store.posted_receipt_keys(keys)
    # Unreadable receipts wait in the exceptions queue (a retry re-reads them), not on every tick.
    unreadable = read_exceptions(store, FLOW, ENTITY_RECEIPT).open
    found = {po for key, po in keys.items() if key not in posted and key not in unreadable}
    due = read_exceptions(store, FLOW, ENTITY_PO).due(found)
    numbers = sorted(due, key=int)
    requests = RECEIPT_RUNS.requests(numbers, size=rules.inbound_orders_per_run, now=now)
    return sensor_result(
        requests, skip_reason="no new DCL receipts", cursor=ReceiptsCursor(received_from=now)
    )


# -- reconciliation -------------------------------------------------------------------------------

CHECK_STUCK = "received_at_dcl_posted_in_netsuite"
CHECK_ANNOUNCED = "announced_matches_ordered"
CHECK_NOT_ANNOUNCED = "open_orders_announced"


def reconcile(
    orders: list[InboundOrder],
    announced: dict[str, int | None],
    dcl_numbers: dict[str, str],
    receipts_by_po: dict[str, list[dict[str, Any]]],
    excess_by_po: dict[str, int],
    posted_keys: set[str],
    now: datetime,
    stuck_after: timedelta,
) -> list[dict[str, Any]]:
    """One row per order: the four quantities and what is wrong with them (pure, for tests)."""
    rows = []
    for order in orders:
        number = dcl_numbers.get(order.id) or order.dcl_po_number
        receipts = receipts_by_po.get(str(number), []) if number else []
        unposted = [r for r in receipts if f"{number}-{receipt_key(r)}" not in posted_keys]
        oldest = min((_receipt_moment(r) for r in unposted), default=None)
        at_dcl = received_at_dcl(receipts)
        problems = []
        if unreadable_receipts(receipts):
            problems.append("unreadable receipt at DCL, not in NetSuite")
        if oldest is not None and now - oldest > stuck_after:
            problems.append("received at DCL, not in NetSuite")
        if announced.get(order.id) is not None and announced[order.id] != order.ordered_total:
            problems.append("announced differs from ordered")
        if number is None:
            problems.append("not announced")
        if at_dcl > order.received_total + excess_by_po.get(str(number), 0) and not unposted:
            problems.append("DCL received more than NetSuite shows")
        rows.append(
            {
                "order": f"{order.record_type} {order.tranid}",
                "netsuite_id": order.id,
                "dcl_po_number": str(number or ""),
                "ordered": order.ordered_total,
                "announced": announced.get(order.id),
                "received_dcl": at_dcl,
                "received_netsuite": order.received_total,
                "unposted_receipts": len(unposted),
                "problems": "; ".join(problems),
            }
        )
    return rows


def _receipt_moment(receipt: dict[str, Any]) -> datetime:
    """A receipt's date is DCL's Pacific calendar day; its start is the earliest it can have happened."""
    day = date.fromisoformat(str(receipt.get("receipt_date"))[:10])
    return datetime.combine(day, time(0, 0), tzinfo=PACIFIC).astimezone(UTC)


@dg.asset(
    group_name="inbound",
    description="Open POs / TOs: ordered vs announced vs received at DCL vs received in NetSuite",
    check_specs=[
        dg.AssetCheckSpec(CHECK_STUCK, asset="inbound_reconciliation"),
        dg.AssetCheckSpec(CHECK_ANNOUNCED, asset="inbound_reconciliation"),
        dg.AssetCheckSpec(CHECK_NOT_ANNOUNCED, asset="inbound_reconciliation"),
    ],
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
    dcl_numbers = store.dcl_po_numbers(ids)
    announced: dict[str, int | None] = {}
    for order in orders:
        versions = store.asn_versions(order.id)
        announced[order.id] = versions[max(versions)].units if versions else None
    now = datetime.now(UTC)
    receipts_by_po: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for receipt in dcl.client.iter_po_receipts(received_from=now - timedelta(days=90)):
        receipts_by_po[str(receipt["dcl_po_number"])].append(receipt)
    keys = [f"{po}-{receipt_key(r)}" for po, rs in receipts_by_po.items() for r in rs]
    posted = store.posted_receipt_keys(keys)
    excess: dict[str, int] = defaultdict(int)
    for row in store.exceptions(flow=FLOW):
        if row.entity == ENTITY_RECEIPT and row.context:
            excess[str(row.context.get("dcl_po_number"))] += sum(
                int(e["quantity"]) for e in row.context.get("excess") or []
            )
    rows = reconcile(
        orders,
        announced,
        dcl_numbers,
        receipts_by_po,
        excess,
        posted,
        now,
        timedelta(hours=rules.inbound_stuck_hours),
    )
    bad = [row for row in rows if row["problems"]]
    stuck = [row for row in rows if "not in NetSuite" in row["problems"]]
    mismatched = [
        row for row in rows if "announced differs" in row["problems"] or "more than" in row["problems"]
    ]
    unannounced = [row for row in rows if "not announced" in row["problems"]]
    columns = list(rows[0]) if rows else ["order"]
    table = dg.MetadataValue.table(
        records=[dg.TableRecord({k: ("" if v is None else v) for k, v in row.items()}) for row in bad[:200]],
        schema=dg.TableSchema(columns=[dg.TableColumn(name, "string") for name in columns]),
    )
    return dg.MaterializeResult(
        metadata={
            "open_orders": dg.MetadataValue.int(len(rows)),
            "with_problems": dg.MetadataValue.int(len(bad)),
            "stuck": dg.MetadataValue.int(len(stuck)),
            "problems": table,
            "summary": dg.MetadataValue.json({"open": len(rows), "problems": len(bad)}),
            "dagster/row_count": dg.MetadataValue.int(len(bad)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK_STUCK,
                passed=not stuck,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"orders": dg.MetadataValue.text(", ".join(r["order"] for r in stuck[:20]))},
            ),
            dg.AssetCheckResult(
                check_name=CHECK_ANNOUNCED,
                passed=not mismatched,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"orders": dg.MetadataValue.text(", ".join(r["order"] for r in mismatched[:20]))},
            ),
            dg.AssetCheckResult(
                check_name=CHECK_NOT_ANNOUNCED,
                passed=not unannounced,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"orders": dg.MetadataValue.text(", ".join(r["order"] for r in unannounced[:20]))},
            ),
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
