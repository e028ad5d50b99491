"""Small Dagster building blocks shared by the flows' ops: retry policy, credential guard, report metadata.

What the sensors share lives in `flows.sensor_kit`.
"""

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import dagster as dg

from mienne_ops.domain.reports import markdown_table
from mienne_ops.errors import AuthError
from mienne_ops.sync.batch import BatchReport, Outcome

TAG_FLOW = "mienne-ops/flow"
#: The reason in a run failure's metadata when a system refused our credentials.
CREDENTIALS_REFUSED = "credentials_refused"
F = TypeVar("F", bound=Callable[..., Any])

#: Transient failures that outlived the HTTP core's retries: retry the (idempotent) batch later.
BATCH_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def stop_on_rejected_credentials(op_function: F) -> F:
    """Under ``@dg.op``: a system refusing our credentials fails the run once, without retries.

    Every record would be refused the same way (a revoked NetSuite token answers 401 to everything),
    so Dagster's retry policy would only repeat the storm and quarantining records would hide the
    cause. The run fails with one message naming the system; fix the credentials, and the next
    sensor tick picks the records up again.
    """

    @functools.wraps(op_function)
    def guarded(*args, **kwargs):
        try:
            return op_function(*args, **kwargs)
        except AuthError as error:
            raise dg.Failure(
                description=(
                    f"{error.system or 'a system'} rejected our credentials ({error.status} {error.code}): "
                    "nothing was quarantined; fix the credentials, then the next tick resumes"
                ),
                # "reason" is what the alerts' run-failure sensor reads (flows/alerts.py).
                metadata={"system": str(error.system), "error": str(error), "reason": CREDENTIALS_REFUSED},
                allow_retries=False,
            ) from error

    return guarded  # type: ignore[return-value]


def report_metadata(report: BatchReport) -> dict[str, dg.MetadataValue]:
    """Counts as numbers (plotted over time) and the problems as a table the operator can read."""
    metadata: dict[str, dg.MetadataValue] = {
        outcome.value: dg.MetadataValue.int(report.counts[outcome]) for outcome in Outcome
    }
    metadata["summary"] = dg.MetadataValue.text(report.summary())
    if report.problems:
        rows = [
            {
                "record": p.key,
                "outcome": p.outcome.value,
                "reason": p.reason,
                "message": p.message.replace("|", "/")[:200],
            }
            for p in report.problems[:100]
        ]
        metadata["problems"] = dg.MetadataValue.md(
            markdown_table(rows, ["record", "outcome", "reason", "message"])
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


def metadata_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> dg.MetadataValue:
    """Rows as a Dagster table (``columns``: name and Dagster type, e.g. ``("age_hours", "float")``)."""
    return dg.MetadataValue.table(
        records=[dg.TableRecord({name: row.get(name) for name, _ in columns}) for row in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns]),
    )
