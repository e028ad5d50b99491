"""SQL building blocks the ledger's modules share (insert-or-ignore per dialect, the clock)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def now() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns; the ledger only stores UTC."""
    if moment is None or moment.tzinfo:
        return moment
    return moment.replace(tzinfo=UTC)


def insert_ignore(engine: sa.Engine, table: sa.Table, conflict_columns: list[str]) -> Any:
    """``INSERT … ON CONFLICT (columns) DO NOTHING``: the database decides who was first."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
    if engine.dialect.name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
    raise NotImplementedError(f"ledger does not support {engine.dialect.name}")


def insert_once(engine: sa.Engine, table: sa.Table, key_column: str, values: dict[str, Any]) -> bool:
    """Insert the row unless one with its key exists; True when this call inserted it."""
    with engine.begin() as conn:
        return bool(conn.execute(insert_ignore(engine, table, [key_column]), values).rowcount)


def rows_by_status(
    engine: sa.Engine,
    table: sa.Table,
    *,
    statuses: Iterable[str] | None,
    shopify_order_id: str | None,
    limit: int,
) -> list[Any]:
    """A flow's rows (requests, returns) oldest first, by status and/or order."""
    query = sa.select(table).order_by(table.c.id).limit(limit)
    if statuses is not None:
        query = query.where(table.c.status.in_([str(s) for s in statuses]))
    if shopify_order_id is not None:
        query = query.where(table.c.shopify_order_id == str(shopify_order_id))
    with engine.connect() as conn:
        return list(conn.execute(query).mappings())


def merge_json(engine: sa.Engine, column: sa.Column, row_id: int, facts: dict[str, Any]) -> None:
    """Merge ``facts`` into a row's JSON ``column`` (read-modify-write in one transaction): a step
    notes what it did without losing what the steps before it noted."""
    table = column.table
    with engine.begin() as conn:
        current = conn.execute(sa.select(column).where(table.c.id == row_id)).scalar()
        merged = {**(current or {}), **json.loads(json.dumps(facts, default=str))}
        conn.execute(
            sa.update(table).where(table.c.id == row_id).values({column.name: merged, "updated_at": now()})
        )


def chunked(values: list[str], size: int = 500) -> list[list[str]]:
    """Bounded ``IN (…)`` lists, well under SQLite's bound-parameter limit."""
    return [values[start : start + size] for start in range(0, len(values), size)]
