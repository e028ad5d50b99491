"""How long each leg of the order-to-cash spine took, from the ledger's own timestamps (the `slo` asset).

- webhook → sales order: the first Shopify webhook the receiver stored for an order
  (``inbox_events.received_at``) to the sales order being bound (``order_journeys.sales_order_at``).
  An order whose sales order the reconciliation poll made before any webhook came is left out: no
  webhook started it.
- sales order → DCL: ``sales_order_at`` to ``dispatched_at`` (DCL first accepted the order).
- shipment → tracking: flow C first recording a DCL shipment (``shipments.created_at``) to its
  tracking on Shopify (``on_shopify_at``). The ledger does not know when DCL itself shipped (its
  ship date has no time of day), so the time until flow C's sensor sees the shipment is not in it.

Each leg counts the orders whose leg *ended* in the window, so a window is a fair sample of recent
work. Indexes on the end columns (revision 0009) keep this cheap with a year of orders.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from mienne_ops.ledger import schema
from mienne_ops.ledger.sql import aware

_journeys = schema.order_journeys
_inbox = schema.inbox_events
_shipments = schema.shipments


def webhook_to_sales_order(engine: sa.Engine, since: datetime) -> list[float]:
    first_webhook = sa.func.min(_inbox.c.received_at)
    query = (
        sa.select(_journeys.c.sales_order_at, first_webhook)
        .join(
            _inbox,
            sa.and_(
                _inbox.c.source == "shopify",
                _inbox.c.resource_id == _journeys.c.shopify_order_id,
                _inbox.c.received_at <= _journeys.c.sales_order_at,
            ),
        )
        .where(_journeys.c.sales_order_at >= since)
        .group_by(_journeys.c.id, _journeys.c.sales_order_at)
    )
    return _durations(engine, query)


def sales_order_to_dcl(engine: sa.Engine, since: datetime) -> list[float]:
    query = sa.select(_journeys.c.dispatched_at, _journeys.c.sales_order_at).where(
        _journeys.c.dispatched_at >= since, _journeys.c.sales_order_at.is_not(None)
    )
    return _durations(engine, query)


def shipment_to_tracking(engine: sa.Engine, since: datetime) -> list[float]:
    query = sa.select(_shipments.c.on_shopify_at, _shipments.c.created_at).where(
        _shipments.c.on_shopify_at >= since
    )
    return _durations(engine, query)


def _durations(engine: sa.Engine, query: sa.Select) -> list[float]:
    """Seconds from the second column to the first, per row (never negative)."""
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [max(0.0, (_moment(end) - _moment(start)).total_seconds()) for end, start in rows]


def _moment(value: datetime | str) -> datetime:
    """SQLite hands an aggregate's datetime back as text; PostgreSQL as a datetime."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return aware(moment)  # type: ignore[return-value]
