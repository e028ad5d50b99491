"""The ledger API: the one way flows, sensors, the webhook receiver and the CLI touch our own state.

SQLite by default (a file under the state dir), PostgreSQL in production (`MIENNE_LEDGER_URL`).
The schema is Alembic's (`ledger.migrate`): a `Ledger` refuses a database not at the newest revision.
Inserts that must happen once use the database's ``ON CONFLICT DO NOTHING`` and then read back, so
two concurrent runs cannot both bind a record (no check-then-insert).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from mienne_ops.domain.journey import Entity, System
from mienne_ops.ledger import schema
from mienne_ops.ledger.holds import HoldRecords
from mienne_ops.ledger.inbound import InboundRecords
from mienne_ops.ledger.journeys import BindingConflict, JourneyRecords
from mienne_ops.ledger.migrate import check_revision
from mienne_ops.ledger.requests import RequestRecords
from mienne_ops.ledger.returns import ReturnRecords
from mienne_ops.ledger.sql import insert_ignore, now


class ExceptionStatus(StrEnum):
    OPEN = "open"  # quarantined: waits for a person (`mienne-ops exceptions retry|resolve`)
    RETRYING = "retrying"  # picked up again by the flow's next run
    RESOLVED = "resolved"


@dataclass(frozen=True)
class InboxEvent:
    id: int
    source: str
    event_id: str
    topic: str
    resource_id: str | None
    triggered_at: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class ExceptionRow:
    id: int
    flow: str
    entity: str
    key: str
    reason: str
    message: str
    status: str
    attempts: int
    first_seen: datetime
    last_seen: datetime
    context: dict[str, Any] | None


class Ledger(JourneyRecords, InboundRecords, HoldRecords, RequestRecords, ReturnRecords):
    """Inbox, bindings and exceptions here; journeys and shipments (`ledger.journeys`), flow D's
    records (`ledger.inbound`), holds (`ledger.holds`), flow F's requests
    (`ledger.requests`) and returns (`ledger.returns`) and the audit log (`ledger.audit`) mixed in —
    one object, one engine, one API."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        check_revision(self.engine)  # tables come from `upgrade_ledger`, never from here

    def dispose(self) -> None:
        self.engine.dispose()

    # -- inbox ----------------------------------------------------------------------------------
    def store_event(
        self,
        source: str,
        event_id: str,
        topic: str,
        payload: dict[str, Any],
        *,
        resource_id: str | None = None,
        triggered_at: str | None = None,
    ) -> bool:
        """Store a verified webhook; False when this event id was already stored (a duplicate)."""
        values = {
            "source": source,
            "event_id": event_id,
            "topic": topic,
            "resource_id": resource_id,
            "triggered_at": triggered_at,
            "received_at": now(),
            "payload": payload,
        }
        with self.engine.begin() as conn:
            result = conn.execute(
                insert_ignore(self.engine, schema.inbox_events, ["source", "event_id"]), values
            )
            return result.rowcount == 1

    def events_after(self, source: str, after_id: int, limit: int = 500) -> list[InboxEvent]:
        table = schema.inbox_events
        query = (
            sa.select(table)
            .where(table.c.source == source, table.c.id > after_id)
            .order_by(table.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            InboxEvent(
                id=row["id"],
                source=row["source"],
                event_id=row["event_id"],
                topic=row["topic"],
                resource_id=row["resource_id"],
                triggered_at=row["triggered_at"],
                payload=row["payload"],
            )
            for row in rows
        ]

    def event_stamps(
        self, source: str, resource_ids: Iterable[str], up_to_id: int
    ) -> list[tuple[str | None, str | None]]:
        """``(resource_id, triggered_at)`` of the events stored up to ``up_to_id`` for these resources."""
        table = schema.inbox_events
        ids = sorted({str(r) for r in resource_ids})
        stamps: list[tuple[str | None, str | None]] = []
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):  # bounded IN lists
                query = sa.select(table.c.resource_id, table.c.triggered_at).where(
                    table.c.source == source,
                    table.c.id <= up_to_id,
                    table.c.resource_id.in_(ids[start : start + 500]),
                )
                stamps.extend((row.resource_id, row.triggered_at) for row in conn.execute(query))
        return stamps

    def last_event_id(self, source: str) -> int:
        table = schema.inbox_events
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0)).where(table.c.source == source)
            ).scalar_one()

    def count_events(self, source: str) -> int:
        table = schema.inbox_events
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.source == source)
            ).scalar_one()

    # -- bindings (remote-id maps with no journey of their own, e.g. customers) ------------------
    def bind(self, entity: Entity, key: str, system: System, remote_id: str) -> str:
        """Record that ``key`` is ``remote_id`` in ``system``; idempotent, conflict-checked."""
        values = {
            "entity": str(entity),
            "key": str(key),
            "system": str(system),
            "remote_id": str(remote_id),
            "created_at": now(),
        }
        with self.engine.begin() as conn:
            conn.execute(insert_ignore(self.engine, schema.bindings, ["entity", "key", "system"]), values)
            bound = self._remote_id(conn, entity, str(key), system)
        if bound != str(remote_id):
            raise BindingConflict(
                f"{entity} {key} is already bound to {system} {bound}, not {remote_id}",
                system="ledger",
                operation="bind",
                record=str(key),
            )
        return bound

    def remote_id(self, entity: Entity, key: str, system: System) -> str | None:
        """The id in ``system`` bound to our ``key`` (None: not bound)."""
        with self.engine.connect() as conn:
            return self._remote_id(conn, entity, str(key), system)

    def _remote_id(self, conn: sa.Connection, entity: Entity, key: str, system: System) -> str | None:
        table = schema.bindings
        query = sa.select(table.c.remote_id).where(
            table.c.entity == str(entity), table.c.key == key, table.c.system == str(system)
        )
        return conn.execute(query).scalar()

    # -- exceptions -----------------------------------------------------------------------------
    def quarantine(
        self,
        flow: str,
        entity: str,
        key: str,
        reason: str,
        message: str,
        *,
        retrying: bool = False,
        context: dict[str, Any] | None = None,
    ) -> None:
        """Open (or re-open and count) the exception of a record in a flow."""
        table = schema.exceptions
        at = now()
        status = ExceptionStatus.RETRYING if retrying else ExceptionStatus.OPEN
        values = {
            "flow": str(flow),
            "entity": str(entity),
            "key": str(key),
            "reason": reason,
            "message": message[:2000],
            "status": status,
            "attempts": 0,
            "context": context,
            "first_seen": at,
            "last_seen": at,
            "resolved_at": None,
        }
        where = (table.c.flow == str(flow)) & (table.c.entity == str(entity)) & (table.c.key == str(key))
        with self.engine.begin() as conn:
            conn.execute(insert_ignore(self.engine, table, ["flow", "entity", "key"]), values)
            conn.execute(
                sa.update(table)
                .where(where)
                .values(
                    reason=reason,
                    message=message[:2000],
                    status=status,
                    attempts=table.c.attempts + 1,
                    context=context,
                    last_seen=at,
                    resolved_at=None,
                )
            )

    def resolve(self, flow: str, entity: str, key: str) -> bool:
        """Close a record's exception after it went through (auto-resolve by trace key)."""
        table = schema.exceptions
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(table)
                .where(
                    table.c.flow == str(flow),
                    table.c.entity == str(entity),
                    table.c.key == str(key),
                    table.c.status != ExceptionStatus.RESOLVED,
                )
                .values(status=ExceptionStatus.RESOLVED, resolved_at=now())
            )
            return result.rowcount > 0

    def set_exception_status(self, exception_id: int, status: str) -> None:
        table = schema.exceptions
        values: dict[str, Any] = {"status": status, "last_seen": now()}
        if status == ExceptionStatus.RESOLVED:
            values["resolved_at"] = now()
        with self.engine.begin() as conn:
            conn.execute(sa.update(table).where(table.c.id == exception_id).values(values))

    def exceptions(
        self, *, statuses: Sequence[str] | None = None, flow: str | None = None, key: str | None = None
    ) -> list[ExceptionRow]:
        table = schema.exceptions
        query = sa.select(table).order_by(table.c.id)
        if statuses:
            query = query.where(table.c.status.in_([str(s) for s in statuses]))
        if flow:
            query = query.where(table.c.flow == str(flow))
        if key:
            query = query.where(table.c.key == str(key))
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            ExceptionRow(
                id=row["id"],
                flow=row["flow"],
                entity=row["entity"],
                key=row["key"],
                reason=row["reason"],
                message=row["message"],
                status=row["status"],
                attempts=row["attempts"],
                first_seen=row["first_seen"],
                last_seen=row["last_seen"],
                context=row["context"],
            )
            for row in rows
        ]

    def keys_with_exceptions(self, flow: str, entity: str, statuses: Sequence[str]) -> set[str]:
        table = schema.exceptions
        query = sa.select(table.c.key).where(
            table.c.flow == str(flow),
            table.c.entity == str(entity),
            table.c.status.in_([str(s) for s in statuses]),
        )
        with self.engine.connect() as conn:
            return {row.key for row in conn.execute(query)}

    def exception_by_id(self, exception_id: int) -> ExceptionRow | None:
        return next((e for e in self.exceptions() if e.id == exception_id), None)


def _make_engine(url: str) -> sa.Engine:
    """The ledger's engine. ``hide_parameters``: a database error's text (which reaches logs and
    Dagster's event log) names the statement but never its values — an inbox payload carries the
    customer's name, email, address and phone."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # WAL lets sensors read while runs write
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, hide_parameters=True)
