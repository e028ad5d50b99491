"""Flow F in Dagster: cancellations and refunds from tickets, from Shopify and from operators.

- `service_requests_sensor` turns the webhook inbox (Gorgias and Zendesk tickets, Shopify
  ``refunds/create``), a reconciliation poll of both (lost deliveries) and the ledger's open requests
  (approved, waiting for billing, retrying) into `service_requests_job` runs;
- `cancel_order_job` and `refund_order_job` are what an operator launches from the UI, with typed
  config (the same as `mienne-ops orders cancel` and `mienne-ops refunds create`);
- `refund_approvals` (asset) is the approval queue: refunds waiting for a person
  (`mienne-ops approvals approve|deny`);
- `refund_reconciliation` (daily partitions, with a check) compares the money refunded in Shopify and
  Recharge with the refunds booked in NetSuite, per day, and opens an exception for any difference.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import dagster as dg

from mienne_ops.business_rules import BusinessRules
from mienne_ops.domain.journey import Entity, Stage
from mienne_ops.domain.money import cents, to_decimal
from mienne_ops.domain.refund_reconciliation import BookedRefund, CustomerRefund, reconcile_refunds
from mienne_ops.domain.service_requests import (
    FINAL_STATUSES,
    RequestDetails,
    RequestedLine,
    RequestKind,
    RequestStatus,
    ServiceRequest,
    SubscriptionAction,
    TicketRef,
)
from mienne_ops.flows.common import (
    BATCH_RETRY_POLICY,
    TAG_FLOW,
    flow_tags,
    label_run,
    metadata_table,
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
from mienne_ops.integrations.gorgias import GorgiasResource
from mienne_ops.integrations.netsuite import NetSuiteResource
from mienne_ops.integrations.recharge import RechargeResource
from mienne_ops.integrations.shopify import ShopifyResource
from mienne_ops.ledger import Ledger
from mienne_ops.ledger.resource import LedgerResource
from mienne_ops.resources import ApiClients, SupportSystems
from mienne_ops.sync.batch import BatchReport, Outcome, run_batch
from mienne_ops.sync.netsuite_refunds import RefundBooks
from mienne_ops.sync.request_intake import (
    RequestIntake,
    refund_to_follow,
    shopify_refund_request_key,
    shopify_return_request_key,
)
from mienne_ops.sync.returns import ReturnRules, ReturnWorker, return_refund_external_id
from mienne_ops.sync.service_requests import (
    ENTITY,
    FLOW,
    RequestRules,
    RequestWorker,
    netsuite_refund_external_id,
    shopify_booking_key,
)
from mienne_ops.sync.support_desk import SupportDesk

TICKET_SOURCES = ("gorgias", "zendesk")
REFUND_TOPIC = "refunds/create"
RETURN_REQUEST_TOPIC = "returns/request"
CHECK_RECONCILED = "refunds_reconciled"
REQUEST_LEASE = timedelta(minutes=15)


def request_rules(rules: BusinessRules) -> RequestRules:
    return RequestRules(
        policy=rules.refund_policy(),
        books=RefundBooks(
            tax_item_id=rules.tax_item_id,
            shipping_item_id=rules.refund_shipping_item_id,
            adjustment_item_id=rules.refund_adjustment_item_id,
            payment_method_id=(
                str(rules.customer_refund_payment_method_id)
                if rules.customer_refund_payment_method_id
                else None
            ),
            source=rules.netsuite_refund_source,
        ),
        refund_subscriptions_on_recharge=rules.refund_subscriptions_on_recharge,
        ticket_done_tag=rules.ticket_done_tag,
    )


def return_rules(rules: BusinessRules) -> ReturnRules:
    return ReturnRules(
        policy=rules.return_policy(),
        books=request_rules(rules).books,
        rma_type=rules.dcl_rma_type,
        rma_disposition=rules.dcl_rma_disposition,
        restock_location_id=str(rules.netsuite_location_id),
        writeoff_location_id=rules.return_writeoff_location_id,
        return_address_text=rules.return_address_text,
        tags=dict(rules.return_ticket_tags),
        refund_on_recharge=rules.refund_subscriptions_on_recharge,
    )


def build_return_worker(
    clients: ApiClients, ledger: Ledger, rules: BusinessRules, as_of: datetime | None = None
) -> ReturnWorker:
    """Flow F's return worker over every system's client (``as_of``: a simulated clock)."""
    worker = ReturnWorker(
        shopify=clients.shopify,
        netsuite=clients.netsuite,
        dcl=clients.dcl,
        stateset=clients.stateset,
        ledger=ledger,
        rules=return_rules(rules),
        desk=SupportDesk(gorgias=clients.gorgias, zendesk=clients.zendesk),
        recharge=clients.recharge,
    )
    if as_of is not None:
        worker.clock = lambda: as_of
    return worker


def build_request_worker(
    clients: ApiClients, ledger: Ledger, rules: BusinessRules
) -> tuple[RequestWorker, RequestIntake]:
    """Flow F's request worker (with its return worker) and intake: the jobs' and the CLI's."""
    returns = build_return_worker(clients, ledger, rules)
    worker = RequestWorker(
        shopify=clients.shopify,
        netsuite=clients.netsuite,
        dcl=clients.dcl,
        stateset=clients.stateset,
        ledger=ledger,
        rules=request_rules(rules),
        desk=returns.desk,
        recharge=clients.recharge,
        returns=returns,
    )
    intake = RequestIntake(
        ledger=ledger, shopify=clients.shopify, desk=returns.desk, rules=rules.ticket_rules()
    )
    return worker, intake


def return_worker(
    support: SupportSystems, rules: BusinessRules, as_of: datetime | None = None
) -> ReturnWorker:
    return build_return_worker(support.clients(), support.ledger.ledger, rules, as_of)


@contextmanager
def request_worker(
    support: SupportSystems, rules: BusinessRules
) -> Iterator[tuple[RequestWorker, RequestIntake]]:
    yield build_request_worker(support.clients(), support.ledger.ledger, rules)


def carry_out(worker: RequestWorker, keys: list[str]) -> BatchReport:
    return run_batch(
        flow=FLOW, entity=ENTITY, keys=sorted(set(keys)), handle=worker.carry_out, ledger=worker.ledger
    )


# -- the sensor-driven job ---------------------------------------------------------------------------
class ServiceRequestsConfig(dg.Config):
    tickets: list[str] = []  # "gorgias:123", "zendesk:45"
    refunded_order_ids: list[str] = []  # Shopify orders the poll found with an admin refund to follow
    # refunds/create deliveries, "<order id>:<refund id>": each checked against Shopify's refunds
    delivered_refunds: list[str] = []
    request_keys: list[str] = []  # requests to carry out (open, approved, retrying)
    return_requests: list[str] = []  # Shopify Return gids a customer requested (returns/request)


@dg.op(retry_policy=BATCH_RETRY_POLICY, tags={TAG_FLOW: FLOW, **on_queue("support")})
@stop_on_rejected_credentials
def handle_service_requests(
    context: dg.OpExecutionContext,
    config: ServiceRequestsConfig,
    support: SupportSystems,
    rules: BusinessRules,
) -> dg.Output:
    """Record the requests tickets and Shopify refunds make, then carry out every request asked for."""
    with request_worker(support, rules) as (worker, intake):
        keys = list(config.request_keys)
        intake_report = run_batch(
            flow=FLOW,
            entity=Entity.TICKET.value,
            keys=config.tickets,
            handle=lambda ticket: _take_in_ticket(intake, ticket, keys),
            ledger=worker.ledger,
        )
        delivered = _delivered_refund_keys(config.delivered_refunds)
        intake_report.merge(
            run_batch(
                flow=FLOW,
                entity=Entity.REQUEST.value,
                keys=sorted(delivered),
                handle=lambda key: _take_in_refund(intake, *delivered[key], keys),
                ledger=worker.ledger,
            )
        )
        for order_id in config.refunded_order_ids:
            order = worker.shopify.order_money(order_id)
            for refund in order.refunds:
                request = intake.from_shopify_refund(order, refund)
                if request is not None:
                    keys.append(request.request_key)
        intake_report.merge(
            run_batch(
                flow=FLOW,
                entity=Entity.REQUEST.value,
                keys=config.return_requests,
                handle=lambda gid: _take_in_return_request(intake, gid, keys),
                ledger=worker.ledger,
            )
        )
        report = carry_out(worker, keys)
        report.merge(intake_report)
    context.log.info(report.summary())
    label_run(context, report, {})  # the quarantine marker: requests and returns are keyed by request
    return dg.Output(report.total, metadata=report_metadata(report))


def _take_in_ticket(intake: RequestIntake, ticket: str, keys: list[str]) -> Outcome:
    """Record the requests a ticket makes, and add their keys to the run's work."""
    system, _, ticket_id = ticket.partition(":")
    requests = intake.from_ticket(TicketRef(system, ticket_id))
    keys.extend(_still_open(requests))
    return Outcome.DONE if requests else Outcome.SKIPPED


def _still_open(requests: list[ServiceRequest]) -> list[str]:
    """The keys of the requests still to carry out. One that ended is not carried out again because
    its ticket or refund was delivered again: a failed one's exception stays with the operator
    (carrying it out would skip it, and a skip resolves the exception)."""
    return [request.request_key for request in requests if request.status not in FINAL_STATUSES]


def _delivered_refund_keys(deliveries: list[str]) -> dict[str, tuple[str, str]]:
    """Each refunds/create delivery under its own key (``refunds/create:<order id>:<refund id>``, the
    exceptions queue's key when Shopify disagrees): (order id, refund id)."""
    pairs = (delivery.partition(":")[::2] for delivery in deliveries)
    return {f"{REFUND_TOPIC}:{order}:{refund}": (order, refund) for order, refund in pairs}


def _take_in_refund(intake: RequestIntake, order_id: str, refund_id: str, keys: list[str]) -> Outcome:
    """Record the requests of a refund Shopify confirms (`RequestIntake.from_refund_delivery`)."""
    requests = intake.from_refund_delivery(order_id, refund_id)
    keys.extend(_still_open(requests))
    return Outcome.DONE if requests else Outcome.SKIPPED


def _take_in_return_request(intake: RequestIntake, gid: str, keys: list[str]) -> Outcome:
    """Record the return a customer requested in Shopify, and add it to the run's work."""
    request = intake.from_return_delivery(gid)
    if request is None:
        return Outcome.SKIPPED  # answered already (approved, declined) or made by us
    keys.extend(_still_open([request]))
    return Outcome.DONE


@dg.job(tags=flow_tags(FLOW), executor_def=flow_executor())
def service_requests_job():
    handle_service_requests()


class RequestsCursor(SensorCursor):
    inbox: dict[str, int] = {}
    polled_at: datetime | None = None
    # Tickets the poll has handed over, by their last change (the poll's overlap sees them again).
    polled_tickets: dict[str, str] = {}


@flow_sensor(
    job=service_requests_job,
    description="Tickets, Shopify refunds and return requests, approved and waiting requests -> flow F",
)
def service_requests_sensor(
    context: dg.SensorEvaluationContext,
    shopify: ShopifyResource,
    gorgias: GorgiasResource,
    ledger: LedgerResource,
    rules: BusinessRules,
) -> dg.SensorResult:
    cursor = RequestsCursor.parse(context.cursor)
    store, now = ledger.ledger, datetime.now(UTC)
    tickets = _delivered_tickets(store, cursor)
    delivered_refunds = _delivered_refunds(store, cursor)
    refunded: set[str] = set()  # orders the poll finds with a refund to follow
    return_requests = _delivered_return_requests(store, cursor)
    keys = _open_request_keys(store, now)
    poll_stamp = ""
    if cursor.polled_at is None or now - cursor.polled_at >= timedelta(seconds=rules.requests_poll_seconds):
        # From the last poll (minus an overlap for the vendors' clocks); the first looks a day back.
        since = poll_since(
            cursor.polled_at,
            now,
            overlap=timedelta(minutes=rules.reconcile_lookback_minutes),
            first_poll=timedelta(hours=rules.requests_lookback_hours),
        )
        # Lost HTTP-integration calls and refunds/create webhooks are found by the poll.
        tickets |= _polled_tickets(gorgias, cursor, since)
        refunded |= {
            order.id
            for order, refund in shopify.client.iter_refunds(created_since=since)
            if store.request_by_key(shopify_refund_request_key(refund.gid)) is None
            and refund_to_follow(order, refund, store.journey(order.id))
        }
        return_requests |= {
            r.gid
            for r in shopify.client.iter_returns(updated_since=since)
            if r.status == "REQUESTED" and store.request_by_key(shopify_return_request_key(r.gid)) is None
        }
        keys |= _books_ready(store)
        cursor.polled_at = now
        poll_stamp = tick_stamp(now)
    requests = []
    # An order a delivery names is read once, for the delivery (which checks its refund).
    refunded -= {delivery.partition(":")[0] for delivery in delivered_refunds}
    if tickets or refunded or keys or return_requests or delivered_refunds:
        config = ServiceRequestsConfig(
            tickets=sorted(tickets),
            refunded_order_ids=sorted(refunded),
            delivered_refunds=sorted(delivered_refunds),
            request_keys=sorted(keys),
            return_requests=sorted(return_requests),
        )
        run_key = f"requests:{tick_stamp(now)}:{poll_stamp}"
        requests.append(run_request(handle_service_requests, config, run_key=run_key, flow=FLOW))
    return sensor_result(requests, skip_reason="no new tickets, refunds or open requests", cursor=cursor)


def _delivered_tickets(store, cursor: RequestsCursor) -> set[str]:
    """Tickets the helpdesks told the receiver about since the last tick (``<system>:<id>``)."""
    tickets: set[str] = set()
    for source in TICKET_SOURCES:
        events = _new_events(store, cursor, source, source)
        tickets |= {f"{source}:{e.resource_id}" for e in events if e.resource_id}
    return tickets


def _delivered_refunds(store, cursor: RequestsCursor) -> set[str]:
    """The refunds ``refunds/create`` webhooks named since the last tick (``<order id>:<refund id>``,
    either possibly empty in a forged body): each is checked against Shopify before anything follows."""
    events = events_of(_new_events(store, cursor, "shopify", "shopify-refunds"), REFUND_TOPIC)
    return {f"{e.payload.get('order_id') or ''}:{e.payload.get('id') or ''}" for e in events}


def events_of(events: list, topic: str) -> list:
    """The events of ``topic`` whose payload is a JSON object (a forged body may be anything)."""
    return [e for e in events if e.topic == topic and isinstance(e.payload, dict)]


def _delivered_return_requests(store, cursor: RequestsCursor) -> set[str]:
    """Shopify returns customers requested (``returns/request``) since the last tick."""
    events = _new_events(store, cursor, "shopify", "shopify-returns")
    return {
        str(e.payload.get("admin_graphql_api_id") or f"gid://shopify/Return/{e.payload.get('id')}")
        for e in events_of(events, RETURN_REQUEST_TOPIC)
        if e.payload.get("admin_graphql_api_id") or e.payload.get("id")
    }


def _new_events(store, cursor: RequestsCursor, source: str, mark: str) -> list:
    after = cursor.inbox.get(mark, 0)
    if after > store.last_event_id(source):
        after = 0  # a fresh ledger: its inbox starts again
    events = store.events_after(source, after, limit=2000)
    if events:
        cursor.inbox[mark] = events[-1].id
    return events


def _open_request_keys(store, now: datetime) -> set[str]:
    """Requests recorded or approved and not carried out yet, those a dead run left (its lease ran
    out), and those whose failure is due for a retry."""
    keys = {r.request_key for r in store.requests(statuses=[RequestStatus.RECEIVED, RequestStatus.APPROVED])}
    keys |= {
        r.request_key
        for r in store.requests(statuses=[RequestStatus.IN_PROGRESS])
        if r.updated_at is not None and now - r.updated_at > REQUEST_LEASE
    }
    return keys | read_exceptions(store, FLOW, ENTITY).due(set())


def _polled_tickets(gorgias: GorgiasResource, cursor: RequestsCursor, since: datetime) -> set[str]:
    """Gorgias tickets created since ``since`` that the poll has not handed over yet (or that
    changed since), and the cursor's memory of them kept to the window."""
    found: set[str] = set()
    seen: dict[str, str] = {}
    for ticket in gorgias.client.iter_tickets(created_since=since):
        key, changed = f"gorgias:{ticket.id}", str(ticket.updated_datetime or ticket.created_datetime)
        if cursor.polled_tickets.get(key) != changed:
            found.add(key)
        seen[key] = changed
    cursor.polled_tickets = seen
    return found


def _books_ready(store) -> set[str]:
    """Requests waiting for billing whose order has been billed (or cancelled) since."""
    ready = set()
    for request in store.requests(statuses=[RequestStatus.AWAITING_BOOKS]):
        journey = store.journey(request.shopify_order_id) if request.shopify_order_id else None
        if journey is None or journey.cash_sale_id or journey.invoice_id or journey.stage == Stage.CANCELLED:
            ready.add(request.request_key)
    return ready


# -- operator jobs (launched from the UI) -----------------------------------------------------------
class CancelOrderConfig(dg.Config):
    order: str  # "#1001" or the Shopify order id
    reason: str = "customer"
    subscription: str = "none"  # none | cancel | skip
    key: str | None = None  # an idempotency key of your own (default: derived from the request)


class RefundOrderConfig(dg.Config):
    order: str
    lines: list[str] = []  # "SKU:QTY"
    shipping: bool = False
    amount: str | None = None  # "5.00"; alone: an amount refund; with lines/shipping: at most their worth
    currency: str | None = None
    full: bool = False
    reason: str = "customer"
    subscription: str = "none"
    key: str | None = None


def operator_request(
    worker: RequestWorker,
    intake: RequestIntake,
    kind: RequestKind,
    order: str,
    details: RequestDetails,
    key: str | None,
) -> dg.Output:
    request, new = intake.from_operator(kind, order, details, key=key)
    report = carry_out(worker, [request.request_key])
    stored = worker.ledger.request_by_key(request.request_key) or request
    metadata = {
        "request": dg.MetadataValue.text(stored.request_key),
        "status": dg.MetadataValue.text(str(stored.status)),
        "new": dg.MetadataValue.bool(new),
        "decision": dg.MetadataValue.text("; ".join(stored.decision) or "-"),
        **report_metadata(report),
    }
    return dg.Output(str(stored.status), metadata=metadata)


@dg.op(tags={TAG_FLOW: FLOW, **on_queue("support")})
@stop_on_rejected_credentials
def cancel_order(
    config: CancelOrderConfig,
    support: SupportSystems,
    rules: BusinessRules,
) -> dg.Output:
    """Cancel an order everywhere (refused once DCL is picking it or it shipped)."""
    details = RequestDetails(reason=config.reason, subscription=SubscriptionAction(config.subscription))
    with request_worker(support, rules) as (w, i):
        return operator_request(w, i, RequestKind.CANCEL, config.order, details, config.key)


@dg.op(tags={TAG_FLOW: FLOW, **on_queue("support")})
@stop_on_rejected_credentials
def refund_order(
    config: RefundOrderConfig,
    support: SupportSystems,
    rules: BusinessRules,
) -> dg.Output:
    """Refund lines, shipping and/or an amount (priced by Shopify, booked in NetSuite to the cent)."""
    details = RequestDetails(
        lines=tuple(RequestedLine.parse(line) for line in config.lines),
        shipping=config.shipping,
        amount=Decimal(config.amount) if config.amount else None,
        currency=config.currency,
        full=config.full,
        reason=config.reason,
        subscription=SubscriptionAction(config.subscription),
    )
    with request_worker(support, rules) as (w, i):
        return operator_request(w, i, RequestKind.REFUND, config.order, details, config.key)


@dg.job(tags=flow_tags(FLOW), executor_def=flow_executor())
def cancel_order_job():
    cancel_order()


@dg.job(tags=flow_tags(FLOW), executor_def=flow_executor())
def refund_order_job():
    refund_order()


# -- the approval queue and the daily reconciliation -----------------------------------------------
@dg.asset(
    group_name="operations",
    description="Refunds waiting for a person (mienne-ops approvals approve|deny)",
)
def refund_approvals(ledger: LedgerResource) -> dg.MaterializeResult:
    waiting = ledger.ledger.requests(statuses=[RequestStatus.AWAITING_APPROVAL])
    now = datetime.now(UTC)
    rows = [
        {
            "request": r.request_key,
            "order": r.order_name or r.shopify_order_id or "",
            "kind": str(r.kind),
            "asked": r.details.model_dump_json(exclude_defaults=True)[:200],
            "why": "; ".join(r.decision)[:200],
            "age_hours": round((now - r.created_at).total_seconds() / 3600, 1) if r.created_at else 0.0,
        }
        for r in waiting[:200]
    ]
    columns = [
        ("request", "string"),
        ("order", "string"),
        ("kind", "string"),
        ("asked", "string"),
        ("why", "string"),
        ("age_hours", "float"),
    ]
    return dg.MaterializeResult(
        metadata={
            "waiting": dg.MetadataValue.int(len(waiting)),
            "approvals": metadata_table(rows, columns),
            "dagster/row_count": dg.MetadataValue.int(len(waiting)),
        }
    )


refund_days = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC", end_offset=1)


@dg.asset(
    group_name="operations",
    partitions_def=refund_days,
    description="Per day: money refunded in Shopify and Recharge vs refunds booked in NetSuite",
    check_specs=[dg.AssetCheckSpec(CHECK_RECONCILED, asset="refund_reconciliation")],
)
def refund_reconciliation(
    context: dg.AssetExecutionContext,
    shopify: ShopifyResource,
    netsuite: NetSuiteResource,
    recharge: RechargeResource,
    ledger: LedgerResource,
) -> dg.MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    store = ledger.ledger
    refunds = [
        CustomerRefund("shopify", order.name, (shopify_booking_key(refund.gid),), refund.total)
        for order, refund in shopify.client.iter_refunds(created_since=start)
        if start <= refund.created_at < end and refund.total > 0 and _booked_in_netsuite(store, order.id)
    ]
    requests = store.requests(limit=100_000)
    by_charge: dict[str, list[str]] = {}
    for request in requests:
        charge_id = request.outcome.get("recharge_charge_id")
        if charge_id is not None and request.outcome.get("recharge_refunded"):
            by_charge.setdefault(str(charge_id), []).append(netsuite_refund_external_id(request))
    for ret in store.returns(limit=100_000):
        for entry in ret.outcome.get("refunds", []):
            if str(entry.get("id", "")).startswith("recharge:"):
                charge_id = str(entry["id"]).split(":")[1]
                by_charge.setdefault(charge_id, []).append(return_refund_external_id(ret, entry))
    for charge in recharge.client.iter_charges(updated_since=start):
        books = charge.shopify_order_id is None or _booked_in_netsuite(store, charge.shopify_order_id)
        if charge.total_refunds > 0 and books and (charge.updated_at is None or charge.updated_at < end):
            keys = tuple(by_charge.get(str(charge.id), [f"recharge-charge-{charge.id}"]))
            refunds.append(CustomerRefund("recharge", str(charge.id), keys, charge.total_refunds))
    booked = [
        booked_refund(row)
        for row in netsuite.client.refunds_between(day - timedelta(days=1), day + timedelta(days=2))
    ]
    waiting = frozenset(
        netsuite_refund_external_id(r) for r in requests if r.status == RequestStatus.AWAITING_BOOKS
    )
    result = reconcile_refunds(day, refunds, booked, waiting)
    for problem in result.problems:
        store.quarantine(FLOW, "refund", f"{day}:{problem.key}", problem.reason, problem.message)
    return dg.MaterializeResult(
        metadata={
            "refunded": dg.MetadataValue.text(f"{result.refunded}"),
            "booked": dg.MetadataValue.text(f"{result.booked}"),
            "waiting_for_billing": dg.MetadataValue.int(result.waiting),
            "differences": dg.MetadataValue.int(len(result.problems)),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK_RECONCILED,
                passed=not result.problems,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={
                    "differences": dg.MetadataValue.text(
                        "; ".join(p.message for p in result.problems[:20]) or "none"
                    )
                },
            )
        ],
    )


def _booked_in_netsuite(store, order_id: str) -> bool:
    """Whether NetSuite books this order's refunds: it was billed, or may still be (an order never
    imported, or cancelled before billing, took no money in NetSuite: its refunds have nothing to match)."""
    journey = store.journey(order_id)
    if journey is None or not journey.netsuite_sales_order_id:
        return False
    return bool(journey.cash_sale_id or journey.invoice_id) or journey.stage != Stage.CANCELLED


def booked_refund(row: dict) -> BookedRefund:
    """A row of `NetSuiteClient.refunds_between` (``tranDate`` ISO, ``total`` positive)."""
    return BookedRefund(
        external_id=str(row.get("externalId") or ""),
        record_type=str(row.get("type") or ""),
        total=cents(abs(to_decimal(row.get("total")))),
        tran_date=date.fromisoformat(str(row.get("tranDate"))[:10]),
    )


refund_reconciliation_job = dg.define_asset_job(
    "refund_reconciliation_job", selection=[refund_reconciliation]
)
refund_reconciliation_schedule = dg.build_schedule_from_partitioned_job(
    refund_reconciliation_job, hour_of_day=2
)

#: Flow F's Dagster objects; `mienne_ops.definitions` merges every flow's and adds the resources.
defs = dg.Definitions(
    jobs=[service_requests_job, cancel_order_job, refund_order_job, refund_reconciliation_job],
    sensors=[service_requests_sensor],
    assets=[refund_approvals, refund_reconciliation],
    schedules=[refund_reconciliation_schedule],
)
