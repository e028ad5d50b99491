"""What an operator watches in the UI: the exceptions queue as an asset, refreshed every 5 minutes.

`order_exceptions` materializes the ledger's open and retrying exceptions with counts per flow and
reason (numbers plotted over time) and a table of the oldest ones, so a quarantined order is visible
in the Dagster UI, not only in the CLI.
"""

from collections import Counter

import dagster as dg

from mienne_ops.flows.common import metadata_table
from mienne_ops.ledger.resource import LedgerResource
from mienne_ops.ledger.store import ExceptionStatus


@dg.asset(group_name="operations", description="Open and retrying exceptions across all flows")
def order_exceptions(ledger: LedgerResource) -> dg.MaterializeResult:
    rows = ledger.ledger.exceptions(statuses=[ExceptionStatus.OPEN, ExceptionStatus.RETRYING])
    by_flow = Counter(row.flow for row in rows)
    by_reason = Counter(row.reason for row in rows)
    table = metadata_table(
        [
            {
                "id": row.id,
                "flow": row.flow,
                "record": f"{row.entity} {row.key}",
                "reason": row.reason,
                "status": row.status,
                "attempts": row.attempts,
                "message": row.message[:200],
            }
            for row in rows[:200]
        ],
        [
            ("id", "int"),
            ("flow", "string"),
            ("record", "string"),
            ("reason", "string"),
            ("status", "string"),
            ("attempts", "int"),
            ("message", "string"),
        ],
    )
    summary = "\n".join(f"- **{reason}**: {count}" for reason, count in by_reason.most_common()) or "none"
    return dg.MaterializeResult(
        metadata={
            "open": dg.MetadataValue.int(len(rows)),
            **{f"flow_{flow}": dg.MetadataValue.int(count) for flow, count in sorted(by_flow.items())},
            "by_reason": dg.MetadataValue.md(summary),
            "exceptions": table,
            "dagster/row_count": dg.MetadataValue.int(len(rows)),
        }
    )


order_exceptions_job = dg.define_asset_job("order_exceptions_job", selection=[order_exceptions])

order_exceptions_schedule = dg.ScheduleDefinition(
    job=order_exceptions_job,
    cron_schedule="*/5 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

#: The operator's exceptions view; `mienne_ops.definitions` merges it with the flows'.
defs = dg.Definitions(
    assets=[order_exceptions], jobs=[order_exceptions_job], schedules=[order_exceptions_schedule]
)
