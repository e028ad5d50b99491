"""Order backfill: orders Shopify took while flow A was not listening, imported the normal way.

After an outage (webhooks dropped, the sensor stopped longer than the poll's look-back) the orders
of the gap are found with one bulk operation, however many there are, and each goes through flow
A's own idempotent import (`OrderIngestor.ingest`): an order already imported costs no API call, a
NetSuite sales order is upserted by external id, the StateSet order looked up before it is created,
the tag is additive. Running the backfill twice therefore creates nothing the second time. Orders
with an open exception stay where they are (`mienne-ops exceptions retry` brings one back), as in
the reconciliation poll.
"""

from __future__ import annotations

from dataclasses import dataclass

from mienne_ops.integrations.shopify import ShopifyClient
from mienne_ops.ledger import Ledger
from mienne_ops.ledger.store import ExceptionStatus
from mienne_ops.sync.batch import BatchReport, run_batch
from mienne_ops.sync.orders import ENTITY, FLOW, OrderIngestor


@dataclass
class BackfillResult:
    found: list[str]  # every order the search matched
    held: list[str]  # left out: an open exception waits for a person
    report: BatchReport  # what the import did with the rest


def backfill_orders(
    shopify: ShopifyClient, ingestor: OrderIngestor, ledger: Ledger, search: str, workers: int = 1
) -> BackfillResult:
    """Import every order matching ``search`` (read by one bulk operation) through flow A."""
    found = shopify.bulk_order_ids(search)
    open_exceptions = ledger.keys_with_exceptions(FLOW, ENTITY, [ExceptionStatus.OPEN])
    held = [key for key in found if key in open_exceptions]
    report = run_batch(
        flow=FLOW,
        entity=ENTITY,
        keys=[key for key in found if key not in open_exceptions],
        handle=ingestor.ingest,
        ledger=ledger,
        workers=workers,
    )
    return BackfillResult(found, held, report)
