"""Alert incidents in the ledger: the durable memory that makes an alert one message per incident.

One row per incident key (unique). The database decides who opens an incident (insert-or-ignore,
then a conditional re-open of a resolved row) and who closes it (a conditional update), so two
sensor ticks racing cannot both announce it. What was sent to which destination is kept per row
(``sent``): a message is marked right after it went out, so Slack being down delays an alert to the
next tick instead of losing it, and a destination that already has it never gets it twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from mienne_ops.domain.alerts import AlertKind, Incident, NewException, StuckLeg, Waiting
from mienne_ops.ledger import schema
from mienne_ops.ledger.sql import aware, insert_ignore, now

#: How long a resolution message is retried when its destination is down.
RESOLUTION_RETRY = timedelta(days=2)


class IncidentStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Notice(StrEnum):
    OPENED = "opened"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class IncidentRow:
    key: str
    status: IncidentStatus
    incident: Incident
    occurrences: int
    sent: dict[str, str]
    opened_at: datetime
    resolved_at: datetime | None

    def due(self, destination: str) -> Notice | None:
        """The message ``destination`` still needs: the alert while open; the resolution once
        resolved, if the alert reached it (an incident that cleared before it was announced is
        not announced at all)."""
        if self.status == IncidentStatus.OPEN:
            return None if f"{destination}:{Notice.OPENED}" in self.sent else Notice.OPENED
        if (
            f"{destination}:{Notice.OPENED}" in self.sent
            and f"{destination}:{Notice.RESOLVED}" not in self.sent
        ):
            return Notice.RESOLVED
        return None


class AlertIncidents:
    """The `alert_incidents` table, on a ledger's engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def open(self, incident: Incident) -> bool:
        """Open ``incident`` (or re-open it after it was resolved); True when this call opened it."""
        table = schema.alert_incidents
        values = {
            "incident_key": incident.key,
            "kind": str(incident.kind),
            "status": IncidentStatus.OPEN,
            "title": incident.title,
            "facts": dict(incident.facts),
            "link": incident.link,
            "occurrences": 1,
            "sent": {},
            "opened_at": now(),
            "resolved_at": None,
        }
        with self.engine.begin() as conn:
            if conn.execute(insert_ignore(self.engine, table, ["incident_key"]), values).rowcount:
                return True
            reopened = conn.execute(
                sa.update(table)
                .where(table.c.incident_key == incident.key, table.c.status == IncidentStatus.RESOLVED)
                .values(
                    **{key: values[key] for key in ("status", "title", "facts", "link", "sent", "opened_at")},
                    occurrences=table.c.occurrences + 1,
                    resolved_at=None,
                )
            )
            return bool(reopened.rowcount)

    def resolve(self, key: str) -> bool:
        """Close the open incident ``key``; True when this call closed it."""
        table = schema.alert_incidents
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(table)
                .where(table.c.incident_key == key, table.c.status == IncidentStatus.OPEN)
                .values(status=IncidentStatus.RESOLVED, resolved_at=now())
            )
            return bool(result.rowcount)

    def open_keys(self, kinds: Iterable[AlertKind] | None = None) -> set[str]:
        table = schema.alert_incidents
        query = sa.select(table.c.incident_key).where(table.c.status == IncidentStatus.OPEN)
        if kinds is not None:
            query = query.where(table.c.kind.in_([str(kind) for kind in kinds]))
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def unsent(self, destinations: Iterable[str]) -> list[tuple[IncidentRow, str, Notice]]:
        """(incident, destination, message) still to send, oldest incident first. Read among the open
        incidents and those resolved in the last `RESOLUTION_RETRY` (a resolution that could not be
        sent for longer than that is not worth sending), so the read stays small as incidents pile up."""
        wanted = list(destinations)
        return [
            (row, destination, notice)
            for row in self._live_incidents()
            for destination in wanted
            if (notice := row.due(destination)) is not None
        ]

    def _live_incidents(self) -> list[IncidentRow]:
        table = schema.alert_incidents
        query = (
            sa.select(table)
            .where(
                sa.or_(table.c.status == IncidentStatus.OPEN, table.c.resolved_at >= now() - RESOLUTION_RETRY)
            )
            .order_by(table.c.id)
        )
        with self.engine.connect() as conn:
            return [_row(row) for row in conn.execute(query).mappings()]

    def mark_sent(self, key: str, destination: str, notice: Notice) -> None:
        """Note that ``destination`` has this message (read-modify-write of ``sent`` in one
        transaction; one sensor sends each kind, so writers of one row do not race)."""
        table = schema.alert_incidents
        with self.engine.begin() as conn:
            current = conn.execute(sa.select(table.c.sent).where(table.c.incident_key == key)).scalar()
            sent = {**(current or {}), f"{destination}:{notice}": now().isoformat()}
            conn.execute(sa.update(table).where(table.c.incident_key == key).values(sent=sent))

    def incidents(self, *, status: IncidentStatus | None = None, limit: int = 500) -> list[IncidentRow]:
        table = schema.alert_incidents
        query = sa.select(table).order_by(table.c.opened_at, table.c.id).limit(limit)
        if status is not None:
            query = query.where(table.c.status == status)
        with self.engine.connect() as conn:
            return [_row(row) for row in conn.execute(query).mappings()]


def _row(row: Any) -> IncidentRow:
    return IncidentRow(
        key=row["incident_key"],
        status=IncidentStatus(row["status"]),
        incident=Incident(
            key=row["incident_key"],
            kind=AlertKind(row["kind"]),
            title=row["title"],
            facts=row["facts"] or {},
            link=row["link"],
        ),
        occurrences=row["occurrences"],
        sent=row["sent"] or {},
        opened_at=aware(row["opened_at"]) or now(),
        resolved_at=aware(row["resolved_at"]),
    )


# -- what the alert checks read ------------------------------------------------------------------
#: Journey stages before DCL has the order (a withdrawn order waits on its hold, which is excluded).
BEFORE_DCL = ("received", "in_netsuite", "withdrawn")
#: Return statuses after which nothing is owed any more.
RETURN_DONE = ("completed", "expired", "cancelled", "failed")


def waiting_orders(engine: sa.Engine, cutoffs: dict[StuckLeg, datetime], limit: int = 200) -> list[Waiting]:
    """Orders waiting on each leg since before its cutoff (now minus its SLO), oldest first; only
    those rows are read, so the check stays cheap on a large ledger."""
    with engine.connect() as conn:
        rows = [
            *_not_at_dcl(conn, cutoffs[StuckLeg.PAID_TO_DCL], limit),
            *_no_tracking(conn, cutoffs[StuckLeg.SHIPPED_TO_TRACKING], limit),
            *_not_refunded(conn, cutoffs[StuckLeg.RECEIVED_TO_REFUNDED], limit),
        ]
    return rows


def _not_at_dcl(conn: sa.Connection, cutoff: datetime, limit: int) -> list[Waiting]:
    """Journeys first seen before the cutoff with no DCL order, not held on purpose."""
    journeys, holds = schema.order_journeys, schema.order_holds
    held = sa.select(holds.c.shopify_order_id).where(holds.c.released_at.is_(None))
    query = (
        sa.select(journeys.c.name, journeys.c.shopify_order_id, journeys.c.created_at)
        .where(
            journeys.c.stage.in_(BEFORE_DCL),
            journeys.c.dcl_order_number.is_(None),
            journeys.c.created_at < cutoff,
            sa.or_(journeys.c.shopify_order_id.is_(None), journeys.c.shopify_order_id.not_in(held)),
        )
        .order_by(journeys.c.created_at)
        .limit(limit)
    )
    return [
        Waiting(StuckLeg.PAID_TO_DCL, row.name or str(row.shopify_order_id), aware(row.created_at) or cutoff)
        for row in conn.execute(query)
    ]


def _no_tracking(conn: sa.Connection, cutoff: datetime, limit: int) -> list[Waiting]:
    """DCL shipments we recorded before the cutoff whose tracking is not on Shopify yet."""
    shipments, journeys = schema.shipments, schema.order_journeys
    query = (
        sa.select(shipments.c.shipment_key, shipments.c.created_at, journeys.c.name)
        .select_from(
            shipments.outerjoin(journeys, journeys.c.dcl_order_number == shipments.c.dcl_order_number)
        )
        .where(shipments.c.on_shopify_at.is_(None), shipments.c.created_at < cutoff)
        .order_by(shipments.c.created_at)
        .limit(limit)
    )
    return [
        Waiting(StuckLeg.SHIPPED_TO_TRACKING, row.name or row.shipment_key, aware(row.created_at) or cutoff)
        for row in conn.execute(query)
    ]


def _not_refunded(conn: sa.Connection, cutoff: datetime, limit: int) -> list[Waiting]:
    """Returns DCL received before the cutoff that are not refunded."""
    returns = schema.returns
    query = (
        sa.select(returns.c.order_name, returns.c.shopify_order_id, returns.c.received_at)
        .where(
            returns.c.received_at < cutoff,
            returns.c.refunded_at.is_(None),
            returns.c.status.not_in(RETURN_DONE),
        )
        .order_by(returns.c.received_at)
        .limit(limit)
    )
    return [
        Waiting(
            StuckLeg.RECEIVED_TO_REFUNDED,
            row.order_name or str(row.shopify_order_id),
            aware(row.received_at) or cutoff,
        )
        for row in conn.execute(query)
    ]


def new_exceptions(engine: sa.Engine, since: datetime, limit: int = 5000) -> list[NewException]:
    """Open and retrying exceptions first seen since ``since``."""
    table = schema.exceptions
    query = (
        sa.select(table.c.flow, table.c.reason, table.c.key, table.c.first_seen)
        .where(table.c.status.in_(["open", "retrying"]), table.c.first_seen >= since)
        .order_by(table.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [
            NewException(
                flow=row.flow, reason=row.reason, key=row.key, first_seen=aware(row.first_seen) or since
            )
            for row in conn.execute(query)
        ]
