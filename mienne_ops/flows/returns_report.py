"""Flow F's returns as an asset: what is open, how old, how much money is pending, what is stuck.

`returns` materializes the ledger's returns every 15 minutes (`returns_report_schedule`): counts per
status (numbers plotted over time), a table of the open returns (order, status, age, deadline, money
pending, RMA number), the oldest parcel still awaited and the money pending per currency. Its checks
fail with the returns a person should look at (`mienne-ops returns show`):

- `returns_within_deadline`: a return still waiting for its parcel past its deadline (the returns
  sensor expires those; one left over means it stopped);
- `received_returns_refunded`: DCL received the goods more than ``return_refund_sla_hours`` ago and
  money is still pending (a refund failed or waits on a person);
- `dcl_receipts_matched`: DCL received an RMA the ledger has no return for, or one whose return had
  expired or been cancelled (open ``unknown_rma`` / ``receipt_after_close`` exceptions).

The report job carries no ``mienne-ops/flow`` tag: it only reads, so it never waits behind (or holds
up) flow F's one run at a time.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from mienne_ops.business_rules import BusinessRules
from mienne_ops.domain.journey import Flow
from mienne_ops.domain.reports import markdown_table
from mienne_ops.domain.returns_report import UNMATCHED_RECEIPT_REASONS, ReturnsReport, returns_report
from mienne_ops.ledger import Ledger
from mienne_ops.ledger.resource import LedgerResource
from mienne_ops.ledger.store import ExceptionStatus

CHECK_DEADLINE = "returns_within_deadline"
CHECK_REFUNDED = "received_returns_refunded"
CHECK_MATCHED = "dcl_receipts_matched"
TABLE_COLUMNS = ["order", "status", "age_hours", "deadline", "money_pending", "rma", "return_key"]


def refund_sla(rules: BusinessRules) -> timedelta:
    return timedelta(hours=rules.return_refund_sla_hours)


def unknown_rmas(ledger: Ledger) -> list[str]:
    """RMA numbers of flow F's open or retrying exceptions for DCL receipts no return handles."""
    rows = ledger.exceptions(statuses=[ExceptionStatus.OPEN, ExceptionStatus.RETRYING], flow=Flow.REQUESTS)
    return [row.key for row in rows if row.reason in UNMATCHED_RECEIPT_REASONS]


def current_report(ledger: Ledger, rules: BusinessRules, now: datetime | None = None) -> ReturnsReport:
    """The report of every return in the ledger now (the asset's and the CLI's)."""
    return returns_report(
        ledger.returns(limit=1_000_000),
        now or datetime.now(UTC),
        refund_sla=refund_sla(rules),
        unknown_rmas=unknown_rmas(ledger),
    )


@dg.asset(
    group_name="operations",
    description="Returns: counts per status, open returns by age, money pending; stuck ones fail checks",
    check_specs=[
        dg.AssetCheckSpec(CHECK_DEADLINE, asset="returns", description="no return waits past its deadline"),
        dg.AssetCheckSpec(
            CHECK_REFUNDED, asset="returns", description="received returns are refunded within the SLA"
        ),
        dg.AssetCheckSpec(CHECK_MATCHED, asset="returns", description="every DCL RMA receipt has a return"),
    ],
)
def returns(ledger: LedgerResource, rules: BusinessRules) -> dg.MaterializeResult:
    report = current_report(ledger.ledger, rules)
    rows = [row.row() for row in report.open[:200]]
    oldest = report.oldest_waiting
    metadata: dict[str, dg.MetadataValue] = {
        **{f"status_{status}": dg.MetadataValue.int(n) for status, n in report.counts.items()},
        "open": dg.MetadataValue.int(len(report.open)),
        "open_returns": dg.MetadataValue.md(markdown_table(rows, TABLE_COLUMNS)),
        "oldest_waiting": dg.MetadataValue.text(
            f"{oldest.order} ({oldest.ret.status}, {oldest.age_hours} h)" if oldest else "none"
        ),
        "oldest_waiting_hours": dg.MetadataValue.float(oldest.age_hours if oldest else 0.0),
        "money_pending": dg.MetadataValue.text(report.money_pending_text()),
        **{
            f"money_pending_{currency}": dg.MetadataValue.float(float(amount))
            for currency, amount in report.money_pending.items()
        },
        "dagster/row_count": dg.MetadataValue.int(len(report.open)),
    }
    return dg.MaterializeResult(metadata=metadata, check_results=check_results(report))


def check_results(report: ReturnsReport) -> list[dg.AssetCheckResult]:
    sla_hours = round(report.refund_sla.total_seconds() / 3600, 1)
    return [
        dg.AssetCheckResult(
            check_name=CHECK_DEADLINE,
            passed=not report.stuck,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "stuck": dg.MetadataValue.int(len(report.stuck)),
                "returns": dg.MetadataValue.text(report.stuck_text() or "none"),
            },
        ),
        dg.AssetCheckResult(
            check_name=CHECK_REFUNDED,
            passed=not report.unrefunded,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "sla_hours": dg.MetadataValue.float(sla_hours),
                "unrefunded": dg.MetadataValue.int(len(report.unrefunded)),
                "returns": dg.MetadataValue.text(report.unrefunded_text() or "none"),
            },
        ),
        dg.AssetCheckResult(
            check_name=CHECK_MATCHED,
            passed=not report.unknown_rmas,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "unknown_rmas": dg.MetadataValue.int(len(report.unknown_rmas)),
                "rma_numbers": dg.MetadataValue.text(", ".join(report.unknown_rmas[:50]) or "none"),
            },
        ),
    ]


returns_report_job = dg.define_asset_job("returns_report_job", selection=[returns])
returns_report_schedule = dg.ScheduleDefinition(
    job=returns_report_job, cron_schedule="*/15 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING
)

#: The returns report's Dagster objects; `mienne_ops.definitions` merges them with the flows'.
defs = dg.Definitions(assets=[returns], jobs=[returns_report_job], schedules=[returns_report_schedule])
