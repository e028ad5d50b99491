"""Flow A in Dagster: paid Shopify orders become NetSuite sales orders (+ StateSet, + tag).

`shopify_orders_sensor` has two sources, both feeding the same idempotent job:
- the webhook inbox (verified, de-duplicated events stored by the receiver), drained by its id
  cursor, so each stored event is looked at once;
- a reconciliation poll every few minutes over a look-back window of ``updated_at`` for paid,
  unfulfilled orders without the imported tag, so a dropped webhook never loses an order.
Orders already imported (the ledger says so) are filtered out before a run is requested, except
when an `orders/updated` webhook shows other line quantities than the ledger recorded: that order is
an edit after import and goes to `OrderIngestor.apply_edit`. So does every update of an order held
until its address is corrected (`domain.holds`), which re-evaluates its holds; while such holds exist
the poll also asks for imported orders changed since, so a lost `orders/updated` cannot leave one held.
An `orders/cancelled` delivery only names the order: `OrderCanceller` asks Shopify whether it is
cancelled (the HMAC does not cover the topic). One Shopify does not confirm is an exception of its
own entity (``cancellation``), so it neither blocks the order's import nor resolves its exceptions.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from mienne_ops.business_rules import BusinessRules
from mienne_ops.domain.holds import Release
from mienne_ops.domain.journey import Entity, Stage
from mienne_ops.flows.common import (
    BATCH_RETRY_POLICY,
    TAG_FLOW,
    finish,
    flow_tags,
    stop_on_rejected_credentials,
)
from mienne_ops.flows.execution import flow_executor, on_queue
from mienne_ops.flows.sensor_kit import (
    SensorCursor,
    chunks,
    digest,
    flow_sensor,
    poll_since,
    read_exceptions,
    run_request,
    sensor_result,
)
from mienne_ops.integrations.dcl import DclResource
from mienne_ops.integrations.netsuite import NetSuiteResource
from mienne_ops.integrations.shopify import ShopifyResource
from mienne_ops.integrations.stateset import StateSetResource
from mienne_ops.ledger.resource import LedgerResource
from mienne_ops.ledger.store import InboxEvent, Ledger
from mienne_ops.sync.batch import BatchReport, run_batch
from mienne_ops.sync.orders import (
    ENTITY,
    FLOW,
    OrderCanceller,
    OrderIngestor,
    OrderSystems,
    edit_pending,
)
from mienne_ops.webhooks.staleness import newest_by_resource, split_stale

ORDER_TOPICS = {"orders/create", "orders/paid", "orders/updated"}
EDIT_TOPICS = {"orders/updated"}
CANCEL_TOPICS = {"orders/cancelled"}


def fresh_events(
    context: dg.SensorEvaluationContext, store: Ledger, events: list[InboxEvent], seen_up_to: int
) -> list[InboxEvent]:
    """Drop stale deliveries: triggered before the newest event the inbox already held for the order.

    A retry carries the original payload hours late (shopify.md §7.4); it must not start work that
    newer state has made moot, so the decision is by ``X-Shopify-Triggered-At`` (`webhooks.staleness`).
    """
    if not events:
        return events
    resources = {e.resource_id for e in events if e.resource_id}
    known = newest_by_resource(store.event_stamps("shopify", resources, seen_up_to))
    fresh, stale = split_stale(events, known)
    if stale:
        context.log.info(f"ignored {len(stale)} stale webhook deliveries (older than the order's newest)")
    return fresh


class IngestOrdersConfig(dg.Config):
    order_ids: list[str] = []
    cancelled_order_ids: list[str] = []
    edited_order_ids: list[str] = []


@dg.op(retry_policy=BATCH_RETRY_POLICY, tags={TAG_FLOW: FLOW, **on_queue("netsuite")})
@stop_on_rejected_credentials
def ingest_shopify_orders(
    context: dg.OpExecutionContext,
    config: IngestOrdersConfig,
    shopify: ShopifyResource,
    netsuite: NetSuiteResource,
    stateset: StateSetResource,
    dcl: DclResource,
    ledger: LedgerResource,
    rules: BusinessRules,
) -> dg.Output:
    """Import each order (and apply cancellations), isolating every order's failure."""
    report = BatchReport(FLOW)
    if config.order_ids or config.edited_order_ids:
        ingestor = OrderIngestor.from_rules(
            rules, OrderSystems(shopify.client, netsuite.client, stateset.client, ledger.ledger)
        )
        ingestor.read_ahead(config.order_ids)
        for keys, handle in (
            (config.order_ids, ingestor.ingest),
            (config.edited_order_ids, ingestor.apply_edit),
        ):
            if keys:
                report.merge(
                    run_batch(
                        flow=FLOW,
                        entity=ENTITY,
                        keys=keys,
                        handle=handle,
                        ledger=ledger.ledger,
                        workers=rules.parallel_records,
                    )
                )
    if config.cancelled_order_ids:
        canceller = OrderCanceller(
            netsuite=netsuite.client,
            dcl=dcl.client,
            ledger=ledger.ledger,
            shopify=shopify.client,
            stateset=stateset.client,
        )
        cancelled = run_batch(
            flow=FLOW,
            entity=Entity.CANCELLATION,
            keys=config.cancelled_order_ids,
            handle=canceller.cancel,
            ledger=ledger.ledger,
        )
        report.merge(cancelled)
    return finish(context, report)


@dg.job(tags=flow_tags(FLOW), executor_def=flow_executor())
def shopify_order_ingestion_job():
    ingest_shopify_orders()


class OrdersCursor(SensorCursor):
    """Inbox high-water mark and the last reconciliation poll."""

    inbox_id: int = 0
    polled_at: datetime | None = None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reconciliation_search(tag: str, since: datetime) -> str:
    """Paid, unfulfilled orders not yet imported, changed since ``since``."""
    return f"financial_status:paid fulfillment_status:unfulfilled -tag:{tag} updated_at:>='{_stamp(since)}'"


def updated_search(tag: str, since: datetime) -> str:
    """Imported orders changed since ``since`` (for held orders whose update webhook was lost)."""
    return f"tag:{tag} updated_at:>='{_stamp(since)}'"


def cancellation_search(tag: str, since: datetime) -> str:
    """Imported orders cancelled since ``since`` (covers a dropped orders/cancelled webhook)."""
    return f"status:cancelled tag:{tag} updated_at:>='{_stamp(since)}'"


@flow_sensor(
    job=shopify_order_ingestion_job,
    description="Webhook inbox + reconciliation poll -> flow A runs (one per batch of orders)",
    # Imports may overlap a running batch (the next is queued behind it), but never pile up.
    one_run_waiting="a flow A run",
)
def shopify_orders_sensor(
    context: dg.SensorEvaluationContext,
    shopify: ShopifyResource,
    ledger: LedgerResource,
    rules: BusinessRules,
) -> dg.SensorResult:
    cursor = OrdersCursor.parse(context.cursor)
    store = ledger.ledger
    if cursor.inbox_id > store.last_event_id("shopify"):
        # The ledger was replaced (a fresh database): its inbox starts again from 1.
        cursor.inbox_id = 0
    events = store.events_after("shopify", cursor.inbox_id, limit=2000)
    first_event = cursor.inbox_id
    if events:
        cursor.inbox_id = events[-1].id
    events = fresh_events(context, store, events, first_event)
    wanted = {e.resource_id for e in events if e.topic in ORDER_TOPICS and e.resource_id}
    # Stale deliveries are gone: a retry's old payload never overwrites a newer edit here.
    updates = {e.resource_id: e.payload for e in events if e.topic in EDIT_TOPICS and e.resource_id}
    cancelled = {e.resource_id for e in events if e.topic in CANCEL_TOPICS and e.resource_id}

    now = datetime.now(UTC)
    polled: set[str] = set()
    poll_stamp = ""
    # Orders held until their address is corrected: re-read on every update, lines changed or not.
    correcting = {h.shopify_order_id for h in store.active_holds(release=Release.ON_CORRECTION)}
    if cursor.polled_at is None or now - cursor.polled_at >= timedelta(seconds=rules.reconcile_every_seconds):
        since = poll_since(cursor.polled_at, now, overlap=timedelta(minutes=rules.reconcile_lookback_minutes))
        polled = set(shopify.client.iter_order_ids(reconciliation_search(rules.imported_tag, since)))
        cancelled |= set(shopify.client.iter_order_ids(cancellation_search(rules.imported_tag, since)))
        if correcting:  # a correction whose orders/updated webhook was lost is found by the poll too
            changed = set(shopify.client.iter_order_ids(updated_search(rules.imported_tag, since)))
            updates.update({key: {} for key in changed & correcting if key not in updates})
        cursor.polled_at = now
        poll_stamp = now.isoformat()
    # A quarantined order comes back through the poll only once someone asked for a retry (then it
    # is retrying, and comes back with the others an operator sent back or that hit transient
    # errors); a webhook about it (the order changed) always brings it back.
    wanted |= read_exceptions(store, FLOW, ENTITY).due(polled)
    # A cancellation Shopify did not confirm is asked again (of Shopify) once an operator retries it.
    cancelled |= read_exceptions(store, FLOW, Entity.CANCELLATION).retrying_keys

    journeys = store.journeys(wanted | cancelled | set(updates))
    to_import = sorted(
        key for key in wanted - cancelled if key not in journeys or journeys[key].import_pending
    )
    to_cancel = sorted(
        key for key in cancelled if key not in journeys or journeys[key].stage != Stage.CANCELLED
    )
    to_edit = sorted(
        key
        for key, payload in updates.items()
        if key not in cancelled
        and key in journeys
        and journeys[key].imported_at is not None
        and (key in correcting or edit_pending(payload, journeys[key].lines))
    )

    requests = []
    batches = list(chunks(to_import, rules.orders_per_run)) or ([[]] if to_cancel or to_edit else [])
    for index, batch in enumerate(batches):
        config = IngestOrdersConfig(
            order_ids=batch,
            cancelled_order_ids=to_cancel if index == 0 else [],
            edited_order_ids=to_edit if index == 0 else [],
        )
        # The poll's time is part of the key: an order a crashed run never finished comes back with
        # the next poll under a new key (the daemon never re-runs a key, even a failed one).
        keys = digest([*batch, *config.cancelled_order_ids, *config.edited_order_ids])
        run_key = f"orders:{first_event}-{cursor.inbox_id}:{poll_stamp}:{keys}"
        requests.append(run_request(ingest_shopify_orders, config, run_key=run_key, flow=FLOW))
    return sensor_result(requests, skip_reason="no new Shopify orders", cursor=cursor)


#: Flow A's Dagster objects; `mienne_ops.definitions` merges every flow's and adds the resources.
defs = dg.Definitions(jobs=[shopify_order_ingestion_job], sensors=[shopify_orders_sensor])
