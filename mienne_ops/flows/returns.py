"""Flow F's returns in Dagster: the wait for the parcel, and a return started from the UI.

- A return *opens* inside flow F's request run (`service_requests_job`): a ticket tagged as a return,
  a customer's return request in Shopify (``returns/request``) or an operator's request;
- `returns_sensor` polls DCL's RMAs every `BusinessRules.returns_poll_seconds` for the open returns
  and launches `returns_job`, which moves each on: the carrier's first scan, DCL's receipts (item
  receipts, refunds, books), reminders and, after the deadline, the expiry; it also reports RMAs DCL
  received that no return of ours made;
- `start_return_job` is what an operator launches from the UI with typed config (the same as
  `mienne-ops returns start`).

`returns_job` takes an ``as_of`` time: a run dated later replays what the ticks of that day would do
(reminders, deadlines) — for drills and for tests of a two-week wait that must not sleep for two weeks.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from mienne_ops.business_rules import BusinessRules
from mienne_ops.domain.dcl_records import DclRma
from mienne_ops.domain.return_policy import ReturnPolicy, due_reminders
from mienne_ops.domain.returns import WAITING_STATUSES, OrderReturn, ReturnStatus
from mienne_ops.domain.service_requests import RequestDetails, RequestedLine, RequestKind, SubscriptionAction
from mienne_ops.flows.common import (
    BATCH_RETRY_POLICY,
    TAG_FLOW,
    flow_tags,
    label_run,
    report_metadata,
    stop_on_rejected_credentials,
)
from mienne_ops.flows.execution import flow_executor, on_queue
from mienne_ops.flows.sensor_kit import (
    SensorCursor,
    flow_sensor,
    poll_since,
    read_exceptions,
    run_request,
    sensor_result,
    tick_stamp,
)
from mienne_ops.flows.service_requests import operator_request, request_worker, return_worker
from mienne_ops.integrations.dcl import DclResource
from mienne_ops.ledger.resource import LedgerResource
from mienne_ops.resources import SupportSystems
from mienne_ops.sync.batch import run_batch
from mienne_ops.sync.returns import ENTITY, FLOW


# -- the wait: returns_job -------------------------------------------------------------------------
class ReturnsConfig(dg.Config):
    return_keys: list[str] = []  # the returns to move on (default: every open one)
    unknown_since: str | None = None  # ISO time: report RMAs DCL received since then that are not ours
    as_of: str | None = None  # ISO time the run acts at (default: now); later = a later day's ticks


@dg.op(retry_policy=BATCH_RETRY_POLICY, tags={TAG_FLOW: FLOW, **on_queue("netsuite")})
@stop_on_rejected_credentials
def advance_returns(
    context: dg.OpExecutionContext,
    config: ReturnsConfig,
    support: SupportSystems,
    rules: BusinessRules,
) -> dg.Output:
    """Move every return asked for on by DCL's RMAs, the carrier's scans and the calendar."""
    as_of = datetime.fromisoformat(config.as_of) if config.as_of else None
    store = support.ledger.ledger
    worker = return_worker(support, rules, as_of)
    returns = (
        [r for key in config.return_keys if (r := store.return_by_key(key)) is not None]
        if config.return_keys
        else store.open_returns()
    )
    worker.prefetch(r.rma_number for r in returns if r.rma_number)
    report = run_batch(
        flow=FLOW,
        entity=ENTITY,
        keys=[r.return_key for r in returns],
        handle=worker.advance,
        ledger=store,
    )
    unknown = (
        worker.unknown_receipts(datetime.fromisoformat(config.unknown_since)) if config.unknown_since else []
    )
    context.log.info(
        report.summary() + (f"; {len(unknown)} DCL receipt(s) without a return" if unknown else "")
    )
    label_run(context, report, {})  # the quarantine marker: requests and returns are keyed by request
    return dg.Output(report.total, metadata=report_metadata(report))


@dg.job(tags=flow_tags(FLOW), executor_def=flow_executor())
def returns_job():
    advance_returns()


class ReturnsCursor(SensorCursor):
    polled_at: datetime | None = None
    # What DCL showed of each waiting return's RMA at the last poll (receipts, first scan): a return
    # is run again when that changes, when its calendar says so, or when its exception is due.
    seen: dict[str, str] = {}


@flow_sensor(
    job=returns_job,
    description="Open returns -> DCL's RMAs (scans, receipts), reminders and deadlines",
    one_run_at_a_time="a returns run",
)
def returns_sensor(
    context: dg.SensorEvaluationContext, dcl: DclResource, ledger: LedgerResource, rules: BusinessRules
) -> dg.SensorResult:
    cursor = ReturnsCursor.parse(context.cursor)
    now = datetime.now(UTC)
    if cursor.polled_at is not None and now - cursor.polled_at < timedelta(
        seconds=rules.returns_poll_seconds
    ):
        return sensor_result([], skip_reason="not time to poll DCL's RMAs yet", cursor=cursor)
    since = poll_since(
        cursor.polled_at,
        now,
        overlap=timedelta(minutes=rules.reconcile_lookback_minutes),
        first_poll=timedelta(hours=rules.returns_lookback_hours),
    )
    store = ledger.ledger
    waiting = [r for r in store.open_returns() if r.status != ReturnStatus.OPENING]
    rmas = {rma.rma_number: rma for rma in dcl.client.rmas([r.rma_number for r in waiting if r.rma_number])}
    seen = {r.return_key: _fingerprint(rmas.get(r.rma_number or "")) for r in waiting}
    policy = rules.return_policy()
    keys = {r.return_key for r in waiting if cursor.seen.get(r.return_key) != seen[r.return_key]}
    keys |= {r.return_key for r in waiting if _calendar_due(r, policy, now)}
    keys |= read_exceptions(store, FLOW, ENTITY).due(set())
    unknown = _unmatched_receipts(dcl, store, since)
    cursor.polled_at, cursor.seen = now, seen
    if not keys and not unknown:
        return sensor_result([], skip_reason="nothing new at DCL and nothing due", cursor=cursor)
    config = ReturnsConfig(return_keys=sorted(keys), unknown_since=since.isoformat() if unknown else None)
    request = run_request(advance_returns, config, run_key=f"returns:{tick_stamp(now)}", flow=FLOW)
    return sensor_result([request], skip_reason="", cursor=cursor)


def _fingerprint(rma: DclRma | None) -> str:
    if rma is None:
        return "absent"
    return f"receipts:{len(rma.receipts)}|scanned:{rma.first_scan_date is not None}"


def _calendar_due(ret: OrderReturn, policy: ReturnPolicy, now: datetime) -> bool:
    """A reminder or the deadline is due (the run sends it, or expires / completes the return)."""
    if ret.deadline_at is not None and now >= ret.deadline_at:
        return True
    if ret.label_sent_at is None or ret.status not in WAITING_STATUSES:
        return False
    return due_reminders(ret.label_sent_at, ret.reminders_sent, policy, now) > 0


def _unmatched_receipts(dcl: DclResource, store, since: datetime) -> bool:
    """Whether DCL received an RMA since ``since`` that no open return of ours is waiting for and that
    is not reported yet (the run reports it); checked here so that a quiet day launches no runs."""
    for rma in dcl.client.iter_rmas(received_from=since):
        if not rma.receipts or store.exceptions(flow=FLOW, key=rma.rma_number):
            continue
        ret = store.return_by_rma(rma.rma_number)
        if ret is None or ret.status in (ReturnStatus.EXPIRED, ReturnStatus.CANCELLED):
            return True
    return False


# -- an operator's return: start_return_job ---------------------------------------------------------
class StartReturnConfig(dg.Config):
    order: str  # "#1001" or the Shopify order id
    lines: list[str] = []  # "SKU:QTY"; none: every unit that can still be returned
    reason: str = "other"  # size_fit_issue, changed_mind, defective, … (StateSet's ReturnReason)
    subscription: str = "none"  # none | cancel | skip
    key: str | None = None  # an idempotency key of your own (default: derived from the request)


@dg.op(tags={TAG_FLOW: FLOW, **on_queue("support")})
@stop_on_rejected_credentials
def start_return(
    config: StartReturnConfig,
    support: SupportSystems,
    rules: BusinessRules,
) -> dg.Output:
    """Open a return: policy, NetSuite RMA, DCL label, StateSet and Shopify returns, the reply."""
    details = RequestDetails(
        lines=tuple(RequestedLine.parse(line) for line in config.lines),
        reason=config.reason,
        subscription=SubscriptionAction(config.subscription),
    )
    with request_worker(support, rules) as (w, i):
        return operator_request(w, i, RequestKind.RETURN, config.order, details, config.key)


@dg.job(tags=flow_tags(FLOW), executor_def=flow_executor())
def start_return_job():
    start_return()


#: Flow F's return objects; `mienne_ops.definitions` merges every flow's and adds the resources.
defs = dg.Definitions(jobs=[returns_job, start_return_job], sensors=[returns_sensor])
