"""Small Dagster building blocks shared by the flows: report metadata, run tags, batching."""

import hashlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import dagster as dg

from mienne_ops.sync.batch import BatchReport, Outcome

TAG_FLOW = "mienne-ops/flow"

#: Transient failures that outlived the HTTP core's retries: retry the (idempotent) batch later.
BATCH_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

IN_FLIGHT_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def digest(parts: Sequence[str]) -> str:
    """A short stable fingerprint of a batch, for run keys."""
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def tick_stamp(moment: datetime | None = None) -> str:
    """A tick's time for run keys, to the microsecond: two ticks never share a key (the daemon
    never re-runs a key, even one whose run failed), and one-at-a-time flows check `run_in_flight`."""
    return (moment or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%f")


def batch_run_requests(
    *, prefix: str, op: str, field: str, keys: Sequence[str], size: int, flow: str, tick: str
) -> list[dg.RunRequest]:
    """One run per batch of ``keys``: config ``{op: {field: batch}}``, keyed by prefix, digest and tick."""
    return [
        dg.RunRequest(
            run_key=f"{prefix}:{digest(list(batch))}:{tick}",
            run_config={"ops": {op: {"config": {field: list(batch)}}}},
            tags={TAG_FLOW: flow},
        )
        for batch in chunks(keys, size)
    ]


def run_in_flight(context: dg.SensorEvaluationContext, job_name: str) -> bool:
    """True when a run of ``job_name`` is queued or running (one batch per flow at a time)."""
    runs = context.instance.get_runs(
        filters=dg.RunsFilter(job_name=job_name, statuses=IN_FLIGHT_STATUSES), limit=1
    )
    return bool(runs)


def report_metadata(report: BatchReport) -> dict[str, dg.MetadataValue]:
    """Counts as numbers (plotted over time) and the problems as a table the operator can read."""
    metadata: dict[str, dg.MetadataValue] = {
        outcome.value: dg.MetadataValue.int(report.counts[outcome]) for outcome in Outcome
    }
    metadata["summary"] = dg.MetadataValue.text(report.summary())
    if report.problems:
        rows = "\n".join(
            f"| {p.key} | {p.outcome.value} | {p.reason} | {p.message.replace('|', '/')[:200]} |"
            for p in report.problems[:100]
        )
        metadata["problems"] = dg.MetadataValue.md(
            "| record | outcome | reason | message |\n|---|---|---|---|\n" + rows
        )
    return metadata


def finish(context: dg.OpExecutionContext, report: BatchReport) -> dg.Output:
    """Log the report; fail the step (to be retried) only for transient leftovers."""
    context.log.info(report.summary())
    metadata = report_metadata(report)
    if report.retrying:
        raise dg.Failure(
            description=f"{len(report.retrying)} record(s) hit transient errors; the batch will be retried",
            metadata=metadata,
            allow_retries=True,
        )
    return dg.Output(report.counts[Outcome.DONE], metadata=metadata)
