"""The order-to-cash SLOs as an asset: how fast orders moved through the spine, checked against targets.

`slo` materializes every 15 minutes (`slo_schedule`) from ledger timestamps (`ledger.timings`): for
each leg — webhook → sales order, sales order → DCL, DCL shipment → tracking on Shopify — the
count, p50, p95, p99 and max over the last ``slo_window_hours`` (numbers the UI plots over time),
and a table an operator reads at a glance. One check per leg fails when its p95 is over the
target in `BusinessRules` (``slo_*_p95_seconds``); a window with no orders passes and says so.

Like the returns report it only reads, so its job carries no ``mienne-ops/flow`` tag.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from mienne_ops.business_rules import BusinessRules
from mienne_ops.domain.reports import markdown_table
from mienne_ops.domain.slo import Leg, SloResult, evaluate
from mienne_ops.ledger import Ledger, timings
from mienne_ops.ledger.resource import LedgerResource

TABLE_COLUMNS = ["leg", "orders", "p50_s", "p95_s", "p99_s", "max_s", "target_p95_s", "met"]


def check_name(leg: Leg) -> str:
    return f"{leg}_p95"


def slo_results(ledger: Ledger, rules: BusinessRules, now: datetime | None = None) -> list[SloResult]:
    """Each leg's summary over the window ending ``now`` (the asset's; tests call it directly)."""
    since = (now or datetime.now(UTC)) - timedelta(hours=rules.slo_window_hours)
    engine = ledger.engine
    return [
        evaluate(
            Leg.WEBHOOK_TO_SALES_ORDER,
            timings.webhook_to_sales_order(engine, since),
            rules.slo_webhook_to_sales_order_p95_seconds,
        ),
        evaluate(
            Leg.SALES_ORDER_TO_DCL,
            timings.sales_order_to_dcl(engine, since),
            rules.slo_sales_order_to_dcl_p95_seconds,
        ),
        evaluate(
            Leg.SHIPMENT_TO_TRACKING,
            timings.shipment_to_tracking(engine, since),
            rules.slo_shipment_to_tracking_p95_seconds,
        ),
    ]


@dg.asset(
    group_name="operations",
    description="Order-to-cash latency SLOs (p50/p95/p99 per leg) from ledger timestamps",
    check_specs=[
        dg.AssetCheckSpec(check_name(leg), asset="slo", description=f"p95 of {leg} within its target")
        for leg in Leg
    ],
)
def slo(ledger: LedgerResource, rules: BusinessRules) -> dg.MaterializeResult:
    results = slo_results(ledger.ledger, rules)
    metadata: dict[str, dg.MetadataValue] = {
        "window_hours": dg.MetadataValue.int(rules.slo_window_hours),
        "summary": dg.MetadataValue.md(markdown_table([_row(r) for r in results], TABLE_COLUMNS)),
    }
    for result in results:
        metadata.update(_leg_metadata(result))
    return dg.MaterializeResult(metadata=metadata, check_results=[_check(r) for r in results])


def _leg_metadata(result: SloResult) -> dict[str, dg.MetadataValue]:
    """Numbers per leg, so the asset's plots show each percentile over time (absent: no samples)."""
    s = result.summary
    numbers = {"p50_seconds": s.p50, "p95_seconds": s.p95, "p99_seconds": s.p99}
    metadata: dict[str, dg.MetadataValue] = {f"{result.leg}_orders": dg.MetadataValue.int(s.count)}
    metadata.update(
        {f"{result.leg}_{k}": dg.MetadataValue.float(float(v)) for k, v in numbers.items() if v is not None}
    )
    return metadata


def _row(result: SloResult) -> dict[str, object]:
    s = result.summary

    def shown(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    return {
        "leg": str(result.leg),
        "orders": s.count,
        "p50_s": shown(s.p50),
        "p95_s": shown(s.p95),
        "p99_s": shown(s.p99),
        "max_s": shown(s.max),
        "target_p95_s": f"{result.target_p95_seconds:.0f}",
        "met": "yes" if result.passed else "NO",
    }


def _check(result: SloResult) -> dg.AssetCheckResult:
    s = result.summary
    return dg.AssetCheckResult(
        check_name=check_name(result.leg),
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=result.describe(),
        metadata={
            "orders": dg.MetadataValue.int(s.count),
            "p95_seconds": dg.MetadataValue.float(float(s.p95 or 0.0)),
            "target_p95_seconds": dg.MetadataValue.float(float(result.target_p95_seconds)),
        },
    )


slo_job = dg.define_asset_job("slo_job", selection=[slo])
slo_schedule = dg.ScheduleDefinition(
    job=slo_job, cron_schedule="*/15 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING
)

#: The SLO asset's Dagster objects; `mienne_ops.definitions` merges them with the flows'.
defs = dg.Definitions(assets=[slo], jobs=[slo_job], schedules=[slo_schedule])
