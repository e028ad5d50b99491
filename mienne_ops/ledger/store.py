"""The ledger API: the one way flows, sensors, the webhook receiver and the CLI touch our own state.

SQLite by default (a file under the state dir), PostgreSQL in production (`MIENNE_LEDGER_URL`).
The schema is Alembic's (`ledger.migrate`): a `Ledger` refuses a database not at the newest revision.
Inserts that must happen once use the database's ``ON CONFLICT DO NOTHING`` and then read back, so
two concurrent runs cannot both bind a record (no check-then-insert).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mienne_ops.errors import PermanentError
from mienne_ops.ledger import schema
from mienne_ops.ledger.migrate import check_revision

EXCEPTION_OPEN = "open"
EXCEPTION_RETRYING = "retrying"
EXCEPTION_RESOLVED = "resolved"


def _now() -> datetime:
    return datetime.now(UTC)


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


class BindingConflict(PermanentError):
    """A key is already bound to a different remote record: a human must look."""


class Ledger:
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
            "received_at": _now(),
            "payload": payload,
        }
        with self.engine.begin() as conn:
            result = conn.execute(self._insert_ignore(schema.inbox_events, ["source", "event_id"]), values)
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

    # -- bindings -------------------------------------------------------------------------------
    def bind(self, entity: str, key: str, system: str, remote_id: str) -> str:
        """Record that ``key`` is ``remote_id`` in ``system``; idempotent, conflict-checked."""
        values = {
            "entity": entity,
            "key": str(key),
            "system": system,
            "remote_id": str(remote_id),
            "created_at": _now(),
        }
        with self.engine.begin() as conn:
            conn.execute(self._insert_ignore(schema.bindings, ["entity", "key", "system"]), values)
            bound = self._binding(conn, entity, str(key), system)
        if bound != str(remote_id):
            raise BindingConflict(
                f"{entity} {key} is already bound to {system} {bound}, not {remote_id}",
                system="ledger",
                operation="bind",
                record=str(key),
            )
        return bound

    def replace_binding(self, entity: str, key: str, system: str, old: str, new: str) -> bool:
        """Re-point a binding from ``old`` to ``new`` (compare-and-swap: False if it is neither)."""
        table = schema.bindings
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(table)
                .where(
                    table.c.entity == entity,
                    table.c.key == str(key),
                    table.c.system == system,
                    table.c.remote_id == str(old),
                )
                .values(remote_id=str(new))
            )
            return self._binding(conn, entity, str(key), system) == str(new)

    def binding(self, entity: str, key: str, system: str) -> str | None:
        with self.engine.connect() as conn:
            return self._binding(conn, entity, str(key), system)

    def bindings_for(self, entity: str, key: str) -> dict[str, str]:
        table = schema.bindings
        query = sa.select(table.c.system, table.c.remote_id).where(
            table.c.entity == entity, table.c.key == str(key)
        )
        with self.engine.connect() as conn:
            return {row.system: row.remote_id for row in conn.execute(query)}

    def bindings_of(self, entity: str, system: str, keys: Iterable[str]) -> dict[str, str]:
        """Remote ids for many keys at once (missing keys are absent from the result)."""
        keys = [str(k) for k in keys]
        table = schema.bindings
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            # Chunks keep each IN (...) well under SQLite's bound-parameter limit.
            for start in range(0, len(keys), 500):
                query = sa.select(table.c.key, table.c.remote_id).where(
                    table.c.entity == entity,
                    table.c.system == system,
                    table.c.key.in_(keys[start : start + 500]),
                )
                found.update({row.key: row.remote_id for row in conn.execute(query)})
        return found

    def key_for(self, entity: str, system: str, remote_id: str) -> str | None:
        table = schema.bindings
        query = sa.select(table.c.key).where(
            table.c.entity == entity, table.c.system == system, table.c.remote_id == str(remote_id)
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def _binding(self, conn: sa.Connection, entity: str, key: str, system: str) -> str | None:
        table = schema.bindings
        query = sa.select(table.c.remote_id).where(
            table.c.entity == entity, table.c.key == key, table.c.system == system
        )
        return conn.execute(query).scalar()

    # -- orders (the journey) -------------------------------------------------------------------
    def record_order(
        self, shopify_order_id: str, name: str | None, stage: str, lines: list[dict] | None = None
    ) -> None:
        """Create or advance an order's row (stage, and lines when given)."""
        table = schema.orders
        now = _now()
        values = {
            "shopify_order_id": str(shopify_order_id),
            "name": name,
            "stage": stage,
            "lines": lines,
            "created_at": now,
            "updated_at": now,
        }
        with self.engine.begin() as conn:
            conn.execute(self._insert_ignore(table, ["shopify_order_id"]), values)
            changes: dict[str, Any] = {"stage": stage, "updated_at": now}
            if name:
                changes["name"] = name
            if lines is not None:
                changes["lines"] = lines
            conn.execute(
                sa.update(table).where(table.c.shopify_order_id == str(shopify_order_id)).values(changes)
            )

    def find_order(self, id_or_name: str) -> dict[str, Any] | None:
        """An order by Shopify id, name (``#1001`` or ``1001``)."""
        table = schema.orders
        candidates = {id_or_name, f"#{id_or_name.lstrip('#')}"}
        query = sa.select(table).where(
            sa.or_(table.c.shopify_order_id == id_or_name, table.c.name.in_(candidates))
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def order_stages(self, shopify_order_ids: Iterable[str]) -> dict[str, str]:
        """Stage of each known order among ``shopify_order_ids`` (unknown ids are absent)."""
        ids = [str(i) for i in shopify_order_ids]
        if not ids:
            return {}
        table = schema.orders
        query = sa.select(table.c.shopify_order_id, table.c.stage).where(table.c.shopify_order_id.in_(ids))
        with self.engine.connect() as conn:
            return {row.shopify_order_id: row.stage for row in conn.execute(query)}

    def orders_in_stage(self, stages: Sequence[str]) -> list[dict[str, Any]]:
        table = schema.orders
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).where(table.c.stage.in_(list(stages)))).mappings()
            return [dict(row) for row in rows]

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
        now = _now()
        status = EXCEPTION_RETRYING if retrying else EXCEPTION_OPEN
        values = {
            "flow": flow,
            "entity": entity,
            "key": str(key),
            "reason": reason,
            "message": message[:2000],
            "status": status,
            "attempts": 0,
            "context": context,
            "first_seen": now,
            "last_seen": now,
            "resolved_at": None,
        }
        where = (table.c.flow == flow) & (table.c.entity == entity) & (table.c.key == str(key))
        with self.engine.begin() as conn:
            conn.execute(self._insert_ignore(table, ["flow", "entity", "key"]), values)
            conn.execute(
                sa.update(table)
                .where(where)
                .values(
                    reason=reason,
                    message=message[:2000],
                    status=status,
                    attempts=table.c.attempts + 1,
                    context=context,
                    last_seen=now,
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
                    table.c.flow == flow,
                    table.c.entity == entity,
                    table.c.key == str(key),
                    table.c.status != EXCEPTION_RESOLVED,
                )
                .values(status=EXCEPTION_RESOLVED, resolved_at=_now())
            )
            return result.rowcount > 0

    def set_exception_status(self, exception_id: int, status: str) -> None:
        table = schema.exceptions
        values: dict[str, Any] = {"status": status, "last_seen": _now()}
        if status == EXCEPTION_RESOLVED:
            values["resolved_at"] = _now()
        with self.engine.begin() as conn:
            conn.execute(sa.update(table).where(table.c.id == exception_id).values(values))

    def exceptions(
        self, *, statuses: Sequence[str] | None = None, flow: str | None = None, key: str | None = None
    ) -> list[ExceptionRow]:
        table = schema.exceptions
        query = sa.select(table).order_by(table.c.id)
        if statuses:
            query = query.where(table.c.status.in_(list(statuses)))
        if flow:
            query = query.where(table.c.flow == flow)
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
            table.c.flow == flow, table.c.entity == entity, table.c.status.in_(list(statuses))
        )
        with self.engine.connect() as conn:
            return {row.key for row in conn.execute(query)}

    def exception_by_id(self, exception_id: int) -> ExceptionRow | None:
        return next((e for e in self.exceptions() if e.id == exception_id), None)

    # -- audit ----------------------------------------------------------------------------------
    def audit(
        self,
        system: str,
        operation: str,
        record: str,
        outcome: str,
        *,
        remote_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(schema.audit_log).values(
                    at=_now(),
                    system=system,
                    operation=operation,
                    record=str(record),
                    outcome=outcome,
                    remote_id=remote_id,
                    detail=(detail or "")[:1000],
                )
            )

    def audit_trail(self, records: Iterable[str]) -> list[dict[str, Any]]:
        table = schema.audit_log
        query = sa.select(table).where(table.c.record.in_([str(r) for r in records])).order_by(table.c.id)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    # -- helpers --------------------------------------------------------------------------------
    def _insert_ignore(self, table: sa.Table, conflict_columns: list[str]):
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
        if self.engine.dialect.name == "sqlite":
            return sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
        raise NotImplementedError(f"ledger does not support {self.engine.dialect.name}")


def _make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # WAL lets sensors read while runs write
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)
