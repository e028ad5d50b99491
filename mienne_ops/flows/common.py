"""Small Dagster building blocks shared by the flows' ops: retry policy, credential guard, report metadata.

`finish` also makes a run's orders findable by the names operators know (``#1014``): the op's output
metadata lists every record with its order's name and outcome, and the run gets one tag per order
(``mienne-ops/order-1014: done``) and, when it quarantined something, ``mienne-ops/quarantined: 2``
and ``mienne-ops/attention: quarantined`` — tags the Runs page filters on.

What the sensors share lives in `flows.sensor_kit`.
"""

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import dagster as dg

from mienne_ops.errors import AuthError
from mienne_ops.ledger.resource import LedgerResource
from mienne_ops.ledger.store import Ledger
from mienne_ops.sync.batch import BatchReport, Outcome

TAG_PREFIX = "mienne-ops"
TAG_FLOW = f"{TAG_PREFIX}/flow"
#: Dagster's per-run limit (`dagster._core.storage.tags.MAX_RUNTIME_SECONDS_TAG`): run monitoring
#: cancels a run still going after this long, and `run_retries` starts it again.
TAG_MAX_RUNTIME = "dagster/max_runtime"
#: A batch (at most `orders_per_run` / `dispatch_batch_size` records) takes about 2.5 minutes in
#: `make bench`, but a vendor's 429s back the same batch off for many minutes (the retry policy is
#: exponential) and a cancelled batch runs again whole. Half an hour bounds how long a run whose
#: worker nobody can see (its code server unreachable, a hung process) holds its flow's one slot,
#: instead of the instance's hour; a dead worker is found within a poll by the run launcher.
FLOW_MAX_RUNTIME_SECONDS = 1800
#: The reason in a run failure's metadata when a system refused our credentials.
CREDENTIALS_REFUSED = "credentials_refused"
#: On a run that quarantined records: how many (shown in the run's header) ...
TAG_QUARANTINED = f"{TAG_PREFIX}/quarantined"
#: ... and a fixed value, so the Runs page's filter (exact key=value) finds every such run at once.
TAG_ATTENTION = f"{TAG_PREFIX}/attention"
#: More order tags than this would bury a run's header; the records table lists every order.
MAX_ORDER_TAGS = 50
MAX_TABLE_ROWS = 500
F = TypeVar("F", bound=Callable[..., Any])

#: Transient failures that outlived the HTTP core's retries: retry the (idempotent) batch later.
BATCH_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def flow_tags(flow: str) -> dict[str, str]:
    """A flow job's tags: its flow (one run per flow at a time, dagster.yaml) and its max runtime."""
    return {TAG_FLOW: flow, TAG_MAX_RUNTIME: str(FLOW_MAX_RUNTIME_SECONDS)}


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


def report_metadata(
    report: BatchReport, names: Mapping[tuple[str, str], str] | None = None
) -> dict[str, dg.MetadataValue]:
    """Every record by the name an operator knows (``names``: Shopify order names by (entity, key),
    from `order_names`) as one line of text first — the run's log shows the first entries of an event
    as they are and folds the rest — then the counts (plotted over time) and a table of the records
    with each problem's reason."""
    lines = record_lines(report, names or {})
    metadata: dict[str, dg.MetadataValue] = {}
    if lines:
        metadata["orders"] = dg.MetadataValue.text(orders_text(lines))
    metadata.update({outcome.value: dg.MetadataValue.int(report.counts[outcome]) for outcome in Outcome})
    metadata["summary"] = dg.MetadataValue.text(report.summary())
    if lines:
        metadata["records"] = metadata_table(
            [vars(line) for line in lines[:MAX_TABLE_ROWS]], [(column, "string") for column in RECORD_COLUMNS]
        )
    return metadata


def finish(context: dg.OpExecutionContext, report: BatchReport) -> dg.Output:
    """Log the report, label the run with its orders; fail the step (to be retried) only for
    transient leftovers."""
    context.log.info(report.summary())
    names = order_names(_ledger_of(context), report)
    metadata = report_metadata(report, names)
    label_run(context, report, names)
    if report.retrying:
        raise dg.Failure(
            description=f"{len(report.retrying)} record(s) hit transient errors; the batch will be retried",
            metadata=metadata,
            allow_retries=True,
        )
    return dg.Output(report.counts[Outcome.DONE], metadata=metadata)


# -- one order findable everywhere by its name --------------------------------------------------
@dataclass(frozen=True)
class RecordLine:
    """One record of a run as an operator reads it: the Shopify order's name where it has one."""

    order: str
    record: str
    outcome: str
    reason: str = ""
    message: str = ""


RECORD_COLUMNS = ("order", "record", "outcome", "reason", "message")
#: The worst first: what went wrong is at the top of the table and never cut off by a cap.
_OUTCOME_ORDER = [Outcome.QUARANTINED, Outcome.RETRYING, Outcome.WAITING, Outcome.DONE, Outcome.SKIPPED]


def order_names(ledger: Ledger | None, report: BatchReport) -> dict[tuple[str, str], str]:
    """The Shopify names (``#1014``) of the records the run handled, by (entity, key): flows key
    orders by Shopify, NetSuite or DCL ids, none of which an operator knows an order by."""
    if ledger is None:
        return {}
    return ledger.order_names((handled.entity, handled.key) for handled in report.handled)


def record_lines(report: BatchReport, names: Mapping[tuple[str, str], str]) -> list[RecordLine]:
    """Every record the run handled, once (its last outcome), with its problem's reason."""
    problems = {(p.entity, p.key): p for p in report.problems}
    lines = []
    for (entity, key), outcome in report.last_outcomes().items():
        problem = problems.get((entity, key))
        cause = problem if problem is not None and problem.outcome is outcome else None
        lines.append(
            RecordLine(
                order=names.get((entity, key), ""),
                record=f"{entity} {key}".strip(),
                outcome=outcome.value,
                reason=cause.reason if cause else "",
                message=cause.message[:200] if cause else "",
            )
        )
    return sorted(
        lines, key=lambda line: (_OUTCOME_ORDER.index(Outcome(line.outcome)), line.order, line.record)
    )


def orders_text(lines: Sequence[RecordLine], limit: int = 100) -> str:
    """``#1014 done, #1015 quarantined (unknown_sku)``: plain text, which the run's log shows as it
    is (a table or markdown value hides behind a link)."""
    parts = [
        f"{line.order or line.record} {line.outcome}" + (f" ({line.reason})" if line.reason else "")
        for line in lines[:limit]
    ]
    more = f", and {len(lines) - limit} more in the records table" if len(lines) > limit else ""
    return ", ".join(parts) + more


def order_tag_key(name: str) -> str | None:
    """``#1014`` → ``mienne-ops/order-1014``: Dagster tag keys allow one ``/`` namespace and
    ``[A-Za-z0-9_.-]{1,63}`` on each side (`dagster._utils.tags.VALID_TAG_KEY_REGEX`), so the ``#`` goes
    and any other character becomes ``-``."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", name.strip().lstrip("#")).strip("-")
    suffix = f"order-{cleaned}"[:63]
    return f"{TAG_PREFIX}/{suffix}" if cleaned else None


def run_labels(report: BatchReport, lines: Sequence[RecordLine]) -> dict[str, str]:
    """The tags that make a run findable in the UI's run filter: one per named order (its outcome),
    and, when something was quarantined, the count and a fixed marker to filter every such run by."""
    tags: dict[str, str] = {}
    for line in lines:
        key = order_tag_key(line.order) if line.order else None
        if key and len(tags) < MAX_ORDER_TAGS:
            tags.setdefault(key, line.outcome)
    quarantined = report.counts[Outcome.QUARANTINED]
    if quarantined:
        tags[TAG_QUARANTINED] = str(quarantined)
        tags[TAG_ATTENTION] = "quarantined"
    return tags


def label_run(
    context: dg.OpExecutionContext, report: BatchReport, names: Mapping[tuple[str, str], str]
) -> None:
    """Add the run's order and quarantine tags to the run (after it started: the orders are only
    known once the batch is done), and warn in the log when something was quarantined."""
    lines = record_lines(report, names)
    tags = run_labels(report, lines)
    if tags and context.instance.has_run(context.run_id):
        context.instance.add_run_tags(context.run_id, tags)
    quarantined = [line for line in lines if line.outcome == Outcome.QUARANTINED.value]
    if quarantined:
        context.log.warning("quarantined: " + orders_text(quarantined))


def _ledger_of(context: dg.OpExecutionContext) -> Ledger | None:
    """The op's ledger resource, which every order flow's op declares (``ledger: LedgerResource``)."""
    resource = getattr(context.resources, "ledger", None)
    return resource.ledger if isinstance(resource, LedgerResource) else None


def metadata_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> dg.MetadataValue:
    """Rows as a Dagster table (``columns``: name and Dagster type, e.g. ``("age_hours", "float")``)."""
    return dg.MetadataValue.table(
        records=[dg.TableRecord({name: row.get(name) for name, _ in columns}) for row in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns]),
    )
