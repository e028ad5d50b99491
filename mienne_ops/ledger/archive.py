"""The ledger's archive policy: finished orders leave the tables the sensors read.

Every tick reads the live tables (`order_journeys`, `exceptions`, `inbox_events`, `order_holds`, …);
a year of orders there means a year of rows behind every query an index does not cover, and bigger
indexes for the rest. `archive_ledger` *moves* what is done and older than the cutoff into
`archived_<table>` (same columns, plus ``archived_at``) in the same database, one transaction per
batch (the insert into the archive and the delete from the live table commit together):

- journeys of finished orders (shipped with every shipment complete, cancelled, skipped test
  orders) last changed before the cutoff, with their shipments and released holds, unless anything
  about the order is still open (an open or retrying exception on any of its ids, an active hold, a
  return or request in progress);
- resolved exceptions resolved before the cutoff;
- audit rows and inbox events older than the cutoff (the newest event of each source stays, so a
  sensor's inbox cursor never finds the inbox behind it).

Moved, not deleted: an order's journey is what keeps it exactly-once (a late ``orders/updated``
webhook for an archived order must not import it again), so `Ledger.journeys` and its keyed lookups
fall back to the archive; ``mienne-ops order status`` still finds an old order. Export and drop the
archive tables on your own schedule (deploy/README.md, "Retention") if storage matters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from mienne_ops.domain import returns, service_requests
from mienne_ops.domain.journey import Stage
from mienne_ops.ledger import schema
from mienne_ops.ledger.sql import chunked, now

#: Each live table and the archive its rows move to.
ARCHIVE_OF: dict[str, sa.Table] = {
    "order_journeys": schema.archived_order_journeys,
    "shipments": schema.archived_shipments,
    "order_holds": schema.archived_order_holds,
    "exceptions": schema.archived_exceptions,
    "audit_log": schema.archived_audit_log,
    "inbox_events": schema.archived_inbox_events,
}

#: Stages an order never leaves (shipped counts only once every shipment is complete).
DONE_STAGES = [Stage.SHIPPED, Stage.CANCELLED, Stage.TEST_SKIPPED]

#: Returns and requests still being worked on (their order stays live), or waiting for a person.
_OPEN_STATUSES: dict[str, list[str]] = {
    "returns": sorted(str(s) for s in returns.OPEN_STATUSES),
    "service_requests": sorted(
        str(s) for s in {*service_requests.OPEN_STATUSES, service_requests.RequestStatus.AWAITING_APPROVAL}
    ),
}


@dataclass(frozen=True)
class ArchivePolicy:
    """What moves: rows older than ``older_than`` (from ``now``), ``batch_size`` journeys or rows a
    transaction, so the archive never holds a long lock on a busy ledger."""

    older_than: timedelta
    batch_size: int = 2000

    def cutoff(self, moment: datetime) -> datetime:
        return moment - self.older_than


def move_rows(conn: sa.Connection, table: sa.Table, where: Any, moved_at: datetime) -> int:
    """Copy the rows matching ``where`` into the table's archive and delete them (one transaction:
    the caller's)."""
    archive = ARCHIVE_OF[table.name]
    names = [column.name for column in table.columns]
    stamp = sa.literal(moved_at, sa.DateTime(timezone=True))
    conn.execute(
        sa.insert(archive).from_select([*names, "archived_at"], sa.select(*table.columns, stamp).where(where))
    )
    return conn.execute(sa.delete(table).where(where)).rowcount


def archive_ledger(engine: sa.Engine, policy: ArchivePolicy, moment: datetime | None = None) -> Counter[str]:
    """Apply the policy once; the rows moved, per live table."""
    moment = moment or now()
    cutoff = policy.cutoff(moment)
    moved: Counter[str] = Counter()
    moved += archive_journeys(engine, cutoff, policy.batch_size, moment)
    resolved = (schema.exceptions.c.status == "resolved") & (schema.exceptions.c.resolved_at < cutoff)
    moved += archive_by_id(engine, schema.exceptions, resolved, policy.batch_size, moment)
    moved += archive_by_id(
        engine, schema.audit_log, schema.audit_log.c.at < cutoff, policy.batch_size, moment
    )
    moved += archive_inbox(engine, cutoff, policy.batch_size, moment)
    return moved


# -- journeys -------------------------------------------------------------------------------------


def busy_keys(conn: sa.Connection) -> set[str]:
    """Ids of orders something is still open about: exceptions not resolved, active holds, returns
    and requests in progress. Their journeys stay live whatever their age."""
    exc, holds = schema.exceptions, schema.order_holds
    keys = set(conn.execute(sa.select(exc.c.key).where(exc.c.status.in_(["open", "retrying"]))).scalars())
    keys |= set(
        conn.execute(sa.select(holds.c.shopify_order_id).where(holds.c.released_at.is_(None))).scalars()
    )
    for table in (schema.returns, schema.service_requests):
        open_rows = sa.select(table.c.shopify_order_id).where(
            table.c.status.in_(_OPEN_STATUSES[table.name]),
            table.c.shopify_order_id.is_not(None),
        )
        keys |= set(conn.execute(open_rows).scalars())
    return {str(key) for key in keys}


def finished_journeys(conn: sa.Connection, after_id: int, cutoff: datetime, limit: int) -> list[Any]:
    """The next ``limit`` finished journeys last changed before ``cutoff``, by id after ``after_id``."""
    table = schema.order_journeys
    # Shipped counts once flow C completed every shipment and flow A finished its import.
    shipped_or_closed = sa.or_(
        table.c.stage != str(Stage.SHIPPED),
        table.c.shipments_completed.is_not(None) & table.c.imported_at.is_not(None),
    )
    query = (
        sa.select(
            table.c.id, table.c.shopify_order_id, table.c.netsuite_sales_order_id, table.c.dcl_order_number
        )
        .where(
            table.c.id > after_id,
            table.c.stage.in_([str(stage) for stage in DONE_STAGES]),
            shipped_or_closed,
            table.c.updated_at < cutoff,
        )
        .order_by(table.c.id)
        .limit(limit)
    )
    return list(conn.execute(query))


def _ids_of(row: Any) -> set[str]:
    return {str(v) for v in (row.shopify_order_id, row.netsuite_sales_order_id, row.dcl_order_number) if v}


def move_journeys(conn: sa.Connection, rows: Iterable[Any], moment: datetime) -> Counter[str]:
    """Move these journeys with their shipments and released holds."""
    rows = list(rows)
    moved: Counter[str] = Counter()
    journeys, shipments, holds = schema.order_journeys, schema.shipments, schema.order_holds
    ids = [row.id for row in rows]
    numbers = [str(row.dcl_order_number) for row in rows if row.dcl_order_number]
    orders = [str(row.shopify_order_id) for row in rows if row.shopify_order_id]
    for chunk in chunked(numbers):
        moved["shipments"] += move_rows(conn, shipments, shipments.c.dcl_order_number.in_(chunk), moment)
    for chunk in chunked(orders):
        released = holds.c.shopify_order_id.in_(chunk) & holds.c.released_at.is_not(None)
        moved["order_holds"] += move_rows(conn, holds, released, moment)
    if ids:  # one batch: `ArchivePolicy.batch_size` ids at most
        moved["order_journeys"] += move_rows(conn, journeys, journeys.c.id.in_(ids), moment)
    return moved


def archive_journeys(engine: sa.Engine, cutoff: datetime, batch_size: int, moment: datetime) -> Counter[str]:
    """Walk the finished journeys by id, a batch a transaction, leaving the busy ones live."""
    with engine.connect() as conn:
        busy = busy_keys(conn)
    moved: Counter[str] = Counter()
    after_id = 0
    while True:
        with engine.begin() as conn:
            rows = finished_journeys(conn, after_id, cutoff, batch_size)
            if not rows:
                return moved
            after_id = rows[-1].id
            moved += move_journeys(conn, [row for row in rows if not _ids_of(row) & busy], moment)


# -- tables walked by id --------------------------------------------------------------------------


def archive_by_id(
    engine: sa.Engine,
    table: sa.Table,
    condition: Any,
    batch_size: int,
    moment: datetime,
    *,
    below_id: int | None = None,
) -> Counter[str]:
    """Move the rows matching ``condition``, ``batch_size`` ids a transaction (ids below ``below_id``
    only, when given)."""
    moved: Counter[str] = Counter()
    after_id = 0
    while True:
        with engine.begin() as conn:
            query = sa.select(table.c.id).where(table.c.id > after_id, condition).order_by(table.c.id)
            if below_id is not None:
                query = query.where(table.c.id < below_id)
            ids = list(conn.execute(query.limit(batch_size)).scalars())
            if not ids:
                return moved
            after_id = ids[-1]
            moved[table.name] += move_rows(conn, table, table.c.id.in_(ids), moment)


def archive_inbox(engine: sa.Engine, cutoff: datetime, batch_size: int, moment: datetime) -> Counter[str]:
    """Move inbox events received before ``cutoff``, keeping each source's newest event: the
    sensors compare their cursor with it (`Ledger.last_event_id`) to notice a replaced ledger."""
    table = schema.inbox_events
    with engine.connect() as conn:
        newest = dict(
            conn.execute(sa.select(table.c.source, sa.func.max(table.c.id)).group_by(table.c.source)).all()
        )
    moved: Counter[str] = Counter()
    for source, newest_id in newest.items():
        condition = (table.c.source == source) & (table.c.received_at < cutoff)
        moved += archive_by_id(engine, table, condition, batch_size, moment, below_id=newest_id)
    return moved
