"""What an operator watches in the UI: the exceptions queue as an asset, fresh within a sensor tick.

`order_exceptions` materializes the ledger's open and retrying exceptions with counts per flow and
reason (numbers plotted over time) and a table of the oldest ones, each with its order's Shopify name,
so a quarantined order is visible in the Dagster UI, not only in the CLI. `order_exceptions_sensor`
materializes it as soon as the queue changes (an exception opened, resolved or its reason changed);
the 5-minute schedule stays as a backstop should the sensor be stopped.
"""

import hashlib
from collections import Counter
from collections.abc import Sequence

import dagster as dg

from mienne_ops.flows.common import metadata_table
from mienne_ops.flows.sensor_kit import run_in_flight, tick_stamp
from mienne_ops.ledger.resource import LedgerResource
from mienne_ops.ledger.store import ExceptionRow, ExceptionStatus

QUEUE_STATUSES = [ExceptionStatus.OPEN, ExceptionStatus.RETRYING]


@dg.asset(group_name="operations", description="Open and retrying exceptions across all flows")
def order_exceptions(ledger: LedgerResource) -> dg.MaterializeResult:
    rows = ledger.ledger.exceptions(statuses=QUEUE_STATUSES)
    names = ledger.ledger.order_names((row.entity, row.key) for row in rows[:200])
    by_flow = Counter(row.flow for row in rows)
    by_reason = Counter(row.reason for row in rows)
    table = metadata_table(
        [
            {
                "id": row.id,
                "flow": row.flow,
                "order": names.get((row.entity, row.key), ""),
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
            ("order", "string"),
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


def queue_digest(rows: Sequence[ExceptionRow]) -> str:
    """A fingerprint of what the exceptions view shows: which records are queued, with what status
    and reason. Attempts and timestamps are left out, so a record retried every tick without
    changing does not re-materialize the view every tick."""
    marks = sorted(f"{row.id}:{row.status}:{row.reason}" for row in rows)
    return hashlib.sha1("|".join(marks).encode()).hexdigest()[:16]


@dg.sensor(
    job=order_exceptions_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Materializes order_exceptions when the ledger's exceptions queue changes",
)
def order_exceptions_sensor(context: dg.SensorEvaluationContext, ledger: LedgerResource) -> dg.SensorResult:
    """The view within a tick of a change, instead of up to 5 minutes later; the cursor is the
    queue's digest, so an unchanged queue asks for nothing. The run key carries the tick's time, as
    a queue can return to an earlier state (an exception reopened) and must be shown again."""
    if run_in_flight(context, order_exceptions_job.name):
        # The cursor stays: a change made meanwhile is picked up by the next tick.
        return dg.SensorResult(skip_reason="order_exceptions is already being materialized")
    digest = queue_digest(ledger.ledger.exceptions(statuses=QUEUE_STATUSES))
    if digest == context.cursor:
        return dg.SensorResult(skip_reason="the exceptions queue has not changed")
    run = dg.RunRequest(run_key=f"order_exceptions:{digest}:{tick_stamp()}")
    return dg.SensorResult(run_requests=[run], cursor=digest)


order_exceptions_schedule = dg.ScheduleDefinition(
    job=order_exceptions_job,
    cron_schedule="*/5 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

#: The operator's exceptions view; `mienne_ops.definitions` merges it with the flows'.
defs = dg.Definitions(
    assets=[order_exceptions],
    jobs=[order_exceptions_job],
    schedules=[order_exceptions_schedule],
    sensors=[order_exceptions_sensor],
)
