"""The ledger's numbers an operator watches, read in a handful of grouped queries (``/metrics``).

Each query is one ``GROUP BY`` over an indexed status or stage column, so a scrape costs a few
milliseconds however many orders the ledger holds. An order's time at its stage starts at the most
precise stamp the ledger has for entering it (see `WAITING_SINCE`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from mienne_ops.domain.journey import Stage
from mienne_ops.domain.returns import ReturnStatus
from mienne_ops.domain.service_requests import RequestKind, RequestStatus
from mienne_ops.ledger import schema
from mienne_ops.ledger.sql import aware

_journeys = schema.order_journeys

#: When an order entered each stage it can wait at (the final stages wait for nothing).
WAITING_SINCE = {
    Stage.RECEIVED: _journeys.c.created_at,
    Stage.IN_NETSUITE: sa.func.coalesce(_journeys.c.imported_at, _journeys.c.updated_at),
    Stage.DISPATCHED: sa.func.coalesce(_journeys.c.dispatched_at, _journeys.c.updated_at),
    Stage.PARTIALLY_SHIPPED: _journeys.c.updated_at,
    Stage.WITHDRAWING: _journeys.c.updated_at,
    Stage.WITHDRAWN: _journeys.c.updated_at,
}
RETURNS_PENDING = (
    ReturnStatus.OPENING,
    ReturnStatus.AWAITING_PARCEL,
    ReturnStatus.IN_TRANSIT,
    ReturnStatus.RECEIVED,
)
REQUESTS_NOT_DONE = (
    RequestStatus.RECEIVED,
    RequestStatus.AWAITING_APPROVAL,
    RequestStatus.APPROVED,
    RequestStatus.IN_PROGRESS,
    RequestStatus.AWAITING_BOOKS,
)


@dataclass
class LedgerGauges:
    orders: dict[str, int] = field(default_factory=dict)  # stage -> count
    exceptions: dict[tuple[str, str, str], int] = field(default_factory=dict)  # flow, reason, status
    waiting_since: dict[str, datetime] = field(default_factory=dict)  # stage -> oldest entry
    returns_pending: dict[str, int] = field(default_factory=dict)  # status -> count
    refunds_pending: dict[str, int] = field(default_factory=dict)  # request | return -> count
    requests: dict[tuple[str, str, str], int] = field(default_factory=dict)  # source, kind, status
    inbox: dict[str, int] = field(default_factory=dict)  # source -> count


def read_gauges(engine: sa.Engine) -> LedgerGauges:
    """Every gauge in one connection (a consistent-enough snapshot for a dashboard)."""
    with engine.connect() as conn:
        return LedgerGauges(
            # Known stages and statuses are reported at 0 too: a series that appears only with its
            # first order makes an empty panel and an alert on "absent" instead of on a number.
            orders={str(stage): 0 for stage in Stage} | _counts(conn, _journeys, "stage"),
            exceptions=_counts(
                conn,
                schema.exceptions,
                "flow",
                "reason",
                "status",
                where=schema.exceptions.c.status != "resolved",
            ),
            waiting_since=_waiting_since(conn),
            returns_pending={str(status): 0 for status in RETURNS_PENDING}
            | _counts(
                conn,
                schema.returns,
                "status",
                where=schema.returns.c.status.in_([str(s) for s in RETURNS_PENDING]),
            ),
            refunds_pending=_refunds_pending(conn),
            requests=_counts(conn, schema.service_requests, "source", "kind", "status"),
            inbox=_counts(conn, schema.inbox_events, "source"),
        )


def _counts(conn: sa.Connection, table: sa.Table, *names: str, where=None) -> dict:
    """``{group: count}`` over ``table``'s columns ``names``; a one-column group is keyed by its
    value, a wider one by a tuple."""
    columns = [table.c[name] for name in names]
    query = sa.select(*columns, sa.func.count()).select_from(table).group_by(*columns)
    if where is not None:
        query = query.where(where)
    rows = conn.execute(query).all()
    return {(row[0] if len(columns) == 1 else tuple(row[:-1])): row[-1] for row in rows}


def _waiting_since(conn: sa.Connection) -> dict[str, datetime]:
    oldest: dict[str, datetime] = {}
    for stage, since in WAITING_SINCE.items():
        query = sa.select(sa.func.min(since)).where(_journeys.c.stage == str(stage))
        value = conn.execute(query).scalar()
        if value is not None:
            oldest[str(stage)] = _as_datetime(value)
    return oldest


def _as_datetime(value: datetime | str) -> datetime:
    """SQLite hands ``MIN(COALESCE(...))`` back as text; PostgreSQL as a datetime."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return aware(moment)  # type: ignore[return-value]


def _refunds_pending(conn: sa.Connection) -> dict[str, int]:
    requests = schema.service_requests
    owed_requests = (
        sa.select(sa.func.count())
        .select_from(requests)
        .where(
            requests.c.kind == str(RequestKind.REFUND),
            requests.c.status.in_([str(s) for s in REQUESTS_NOT_DONE]),
        )
    )
    owed_returns = (
        sa.select(sa.func.count())
        .select_from(schema.returns)
        .where(schema.returns.c.status == str(ReturnStatus.RECEIVED))
    )
    return {
        "request": conn.execute(owed_requests).scalar_one(),
        "return": conn.execute(owed_returns).scalar_one(),
    }
