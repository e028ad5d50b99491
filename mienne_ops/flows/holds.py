"""Holds before dispatch in Dagster: releases on time, Shopify kept in step, and the held orders asset.

Holds are placed by flow A (`sync.holds.HoldKeeper`, at import and on updates of a held order) and by
people (`mienne-ops holds hold|release`); flow B sends only orders without an active hold. This
module does the rest:

- `order_holds_sensor` requests a `maintain_holds` run when a hold's time has come (edit window,
  pre-order date), when the ledger and Shopify disagree (a hold placed or released from the CLI),
  when a held order is already at DCL (`sync.hold_recall`: cancelled there while DCL allows it,
  else reported ``hold_too_late``), and every `hold_shopify_check_seconds` while holds are
  mirrored, to find holds released in the Shopify admin and release them here too;
- `held_orders` (asset, every 5 minutes) lists active holds by reason, age and where the order stands
  at DCL; its check fails when a hold is older than its reason's SLA (`BusinessRules.hold_sla_hours`),
  so no hold ages silently.
"""

from collections import Counter
from datetime import datetime, timedelta

import dagster as dg

from mienne_ops.business_rules import BusinessRules
from mienne_ops.domain.holds import overdue
from mienne_ops.flows.common import (
    BATCH_RETRY_POLICY,
    TAG_FLOW,
    flow_tags,
    metadata_table,
    stop_on_rejected_credentials,
)
from mienne_ops.flows.execution import flow_executor, on_queue
from mienne_ops.flows.sensor_kit import SensorCursor, flow_sensor, run_request, sensor_result, tick_stamp
from mienne_ops.integrations.dcl import DclResource
from mienne_ops.integrations.netsuite import NetSuiteResource
from mienne_ops.integrations.shopify import ShopifyResource
from mienne_ops.ledger.resource import LedgerResource
from mienne_ops.sync import holds as hold_sync
from mienne_ops.sync.batch import Outcome
from mienne_ops.sync.hold_recall import DclRecall, DclState, dcl_states, due_recalls
from mienne_ops.sync.holds import HoldKeeper

FLOW = "holds"
CHECK_SLA = "holds_within_sla"


class MaintainHoldsConfig(dg.Config):
    read_shopify: bool = False  # also look for holds released in the Shopify admin


@dg.op(retry_policy=BATCH_RETRY_POLICY, tags={TAG_FLOW: FLOW, **on_queue("shopify")})
@stop_on_rejected_credentials
def maintain_holds(
    context: dg.OpExecutionContext,
    config: MaintainHoldsConfig,
    shopify: ShopifyResource,
    dcl: DclResource,
    netsuite: NetSuiteResource,
    ledger: LedgerResource,
    rules: BusinessRules,
) -> dg.Output:
    """Release the holds whose time has come; bring Shopify's holds and the ledger's into agreement;
    take held orders back from DCL while it allows (else report them too late)."""
    keeper = HoldKeeper(shopify.client, ledger.ledger, rules.hold_policy())
    released = keeper.release_due()
    counts = keeper.sync_with_shopify(read_shopify=config.read_shopify)
    recall = DclRecall(dcl.client, netsuite.client, ledger.ledger).recall_all()
    counts["cancelled_at_dcl"] = recall.counts[Outcome.DONE]
    counts["too_late_or_failed_at_dcl"] = recall.counts[Outcome.QUARANTINED] + recall.counts[Outcome.RETRYING]
    summary = f"released {len(released)} by time; " + ", ".join(f"{k} {v}" for k, v in counts.items())
    context.log.info(summary)
    for problem in recall.problems:
        context.log.warning(f"DCL order {problem.key}: {problem.reason}: {problem.message}")
    metadata = {"released_by_time": dg.MetadataValue.int(len(released))}
    metadata.update({name: dg.MetadataValue.int(count) for name, count in counts.items()})
    return dg.Output(len(released) + sum(counts.values()), metadata=metadata)


@dg.job(tags=flow_tags(FLOW), executor_def=flow_executor())
def order_holds_job():
    maintain_holds()


class HoldsCursor(SensorCursor):
    shopify_read_at: datetime | None = None


@flow_sensor(
    job=order_holds_job,
    description="Holds due for release, ledger/Shopify differences, holds released in Shopify -> a holds run",
    one_run_at_a_time="a holds run",
)
def order_holds_sensor(
    context: dg.SensorEvaluationContext, ledger: LedgerResource, rules: BusinessRules
) -> dg.SensorResult:
    cursor = HoldsCursor.parse(context.cursor)
    store, now = ledger.ledger, hold_sync.utc_now()
    due = store.holds_due(now)
    pending = store.holds_with_mirror_pending() or due_recalls(store)
    mirrored = any(hold.shopify_hold_ids for hold in store.active_holds())
    read_shopify = mirrored and (
        cursor.shopify_read_at is None
        or now - cursor.shopify_read_at >= timedelta(seconds=rules.hold_shopify_check_seconds)
    )
    if read_shopify:
        cursor.shopify_read_at = now
    requests = []
    if due or pending or read_shopify:
        config = MaintainHoldsConfig(read_shopify=read_shopify)
        requests.append(run_request(maintain_holds, config, run_key=f"holds:{tick_stamp(now)}", flow=FLOW))
    return sensor_result(requests, skip_reason="no hold to release or mirror", cursor=cursor)


@dg.asset(
    group_name="operations",
    description="Orders held before dispatch: by reason and age; fails when a hold outlives its SLA",
    check_specs=[dg.AssetCheckSpec(CHECK_SLA, asset="held_orders")],
)
def held_orders(ledger: LedgerResource, rules: BusinessRules) -> dg.MaterializeResult:
    now = hold_sync.utc_now()
    holds = ledger.ledger.active_holds()
    late = overdue(holds, rules.hold_sla_hours, now)
    by_reason = Counter(str(hold.reason) for hold in holds)
    at_dcl = dcl_states(ledger.ledger, sorted({hold.shopify_order_id for hold in holds}))
    by_dcl_state = Counter(at_dcl[key][0] for key in at_dcl)
    table = metadata_table(
        [
            {
                "order": hold.shopify_order_id,
                "reason": str(hold.reason),
                "age_hours": round(hold.age(now).total_seconds() / 3600, 1),
                "release": str(hold.release),
                "until": hold.until.isoformat() if hold.until else "",
                "by": hold.placed_by,
                "detail": hold.detail[:200],
                "dcl": str(at_dcl[hold.shopify_order_id][0]),
                "dcl_detail": at_dcl[hold.shopify_order_id][1][:200],
            }
            for hold in holds[:200]
        ],
        [
            ("order", "string"),
            ("reason", "string"),
            ("age_hours", "float"),
            ("release", "string"),
            ("until", "string"),
            ("by", "string"),
            ("detail", "string"),
            ("dcl", "string"),
            ("dcl_detail", "string"),
        ],
    )
    return dg.MaterializeResult(
        metadata={
            "held": dg.MetadataValue.int(len(holds)),
            **{f"reason_{reason}": dg.MetadataValue.int(n) for reason, n in sorted(by_reason.items())},
            "over_sla": dg.MetadataValue.int(len(late)),
            # Held after DCL started picking: the order ships unless stopped at DCL by hand.
            "too_late_at_dcl": dg.MetadataValue.int(by_dcl_state[DclState.TOO_LATE]),
            "withdrawn_from_dcl": dg.MetadataValue.int(by_dcl_state[DclState.WITHDRAWN]),
            "holds": table,
            "dagster/row_count": dg.MetadataValue.int(len(holds)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK_SLA,
                passed=not late,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "over_sla": dg.MetadataValue.text(
                        ", ".join(f"{h.shopify_order_id} ({h.reason})" for h in late[:20]) or "none"
                    )
                },
            )
        ],
    )


held_orders_job = dg.define_asset_job("held_orders_job", selection=[held_orders])
held_orders_schedule = dg.ScheduleDefinition(
    job=held_orders_job, cron_schedule="*/5 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING
)

#: Holds' Dagster objects; `mienne_ops.definitions` merges every flow's and adds the resources.
defs = dg.Definitions(
    assets=[held_orders],
    jobs=[order_holds_job, held_orders_job],
    sensors=[order_holds_sensor],
    schedules=[held_orders_schedule],
)
