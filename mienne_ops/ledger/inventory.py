"""Flow E's memory in the ledger: current levels, kit BOMs, available-to-sell, what was pushed, history.

Tables (in `ledger.schema`, created by the ledger's migrations like every other table):

- ``inventory_levels``: the latest quantity per (source, location, SKU); sources ``netsuite``,
  ``dcl``, ``shopify``, ``ats`` (what Shopify should show, with its components in ``detail``);
- ``inventory_items``: SKU -> Shopify inventory item and whether Shopify manages it as a bundle;
- ``inventory_boms``: the kit BOMs last read from NetSuite;
- ``inventory_pushes``: the last quantity successfully pushed per (location, SKU) and the age
  (``as_of``) of the data it came from;
- ``inventory_snapshots`` / ``inventory_history``: one row per snapshot taken, and one per value
  that changed, so history can be inspected without storing every unchanged number.

Every write of a level or a push is an upsert guarded by ``as_of`` in the database itself
(``ON CONFLICT … DO UPDATE … WHERE excluded.as_of >= current.as_of``): a delayed run or an old
backfill can never overwrite fresher data, even when two runs race.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mienne_ops.domain.inventory import BomLine, Pushed
from mienne_ops.domain.journey import Stage
from mienne_ops.ledger import schema
from mienne_ops.ledger.schema import boms, history, items, levels, pushes, snapshots
from mienne_ops.ledger.store import Ledger


def iso(moment: datetime) -> str:
    """Fixed-width UTC text, so the database compares ages as strings on every dialect."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class SaveResult:
    rows: int
    changed: int
    stale: int  # rows not written: fresher data was already there


class InventoryLedger:
    """Flow E's tables over the `Ledger`'s engine."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.engine = ledger.engine

    # -- levels (netsuite / dcl / shopify / ats) -------------------------------------------------
    def save_levels(
        self,
        source: str,
        location: str,
        quantities: Mapping[str, int],
        as_of: datetime,
        details: Mapping[str, dict[str, Any]] | None = None,
    ) -> SaveResult:
        """Upsert one snapshot; rows with older ``as_of`` than stored ones are left alone."""
        stamp = iso(as_of)
        before = self._levels_raw(source, location)
        rows = [
            {
                "source": source,
                "location": location,
                "sku": sku,
                "available": int(qty),
                "detail": (details or {}).get(sku),
                "as_of": stamp,
            }
            for sku, qty in quantities.items()
        ]
        stale = [r for r in rows if r["sku"] in before and before[r["sku"]][1] > stamp]
        changed = [
            r
            for r in rows
            if (r["sku"] not in before or before[r["sku"]][0] != r["available"])
            and not (r["sku"] in before and before[r["sku"]][1] > stamp)
        ]
        with self.engine.begin() as conn:
            if rows:
                conn.execute(self._guarded_upsert(levels, ["source", "location", "sku"]), rows)
            if changed:
                conn.execute(
                    sa.insert(history),
                    [
                        {"source": source, "location": location, "sku": r["sku"], "quantity": r["available"]}
                        | {"as_of": stamp}
                        for r in changed
                    ],
                )
            conn.execute(
                sa.insert(snapshots).values(
                    source=source,
                    location=location,
                    as_of=stamp,
                    rows=len(rows),
                    changed=len(changed),
                    stale=len(stale),
                    taken_at=iso(datetime.now(UTC)),
                )
            )
        return SaveResult(len(rows), len(changed), len(stale))

    def levels(self, source: str, location: str) -> dict[str, int]:
        return {sku: qty for sku, (qty, _) in self._levels_raw(source, location).items()}

    def level_details(self, source: str, location: str) -> dict[str, dict[str, Any]]:
        query = sa.select(levels.c.sku, levels.c.detail).where(
            levels.c.source == source, levels.c.location == location
        )
        with self.engine.connect() as conn:
            return {row.sku: row.detail or {} for row in conn.execute(query)}

    def _levels_raw(self, source: str, location: str) -> dict[str, tuple[int, str]]:
        query = sa.select(levels.c.sku, levels.c.available, levels.c.as_of).where(
            levels.c.source == source, levels.c.location == location
        )
        with self.engine.connect() as conn:
            return {row.sku: (row.available, row.as_of) for row in conn.execute(query)}

    def sku_levels(self, sku: str) -> list[dict[str, Any]]:
        query = sa.select(levels).where(levels.c.sku == sku).order_by(levels.c.location, levels.c.source)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def latest_snapshot(self, source: str, location: str) -> dict[str, Any] | None:
        query = (
            sa.select(snapshots)
            .where(snapshots.c.source == source, snapshots.c.location == location)
            .order_by(snapshots.c.as_of.desc(), snapshots.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    def history(self, sku: str, location: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        query = sa.select(history).where(history.c.sku == sku)
        if location:
            query = query.where(history.c.location == location)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(history.c.id.desc()).limit(limit)).mappings()
            return [dict(row) for row in rows]

    # -- Shopify item map and BOMs ----------------------------------------------------------------
    def save_items(self, found: Iterable[tuple[str, str, bool]]) -> int:
        rows = [{"sku": s, "shopify_item_id": i, "requires_components": b} for s, i, b in found]
        if rows:
            with self.engine.begin() as conn:
                stmt = _insert(self.engine, items)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["sku"],
                        set_={
                            "shopify_item_id": stmt.excluded.shopify_item_id,
                            "requires_components": stmt.excluded.requires_components,
                        },
                    ),
                    rows,
                )
        return len(rows)

    def items(self) -> dict[str, tuple[str, bool]]:
        with self.engine.connect() as conn:
            return {
                row.sku: (row.shopify_item_id, bool(row.requires_components))
                for row in conn.execute(sa.select(items))
            }

    def save_boms(self, kits: Mapping[str, list[BomLine]], inactive: set[str]) -> int:
        """Replace the BOMs (a kit that disappeared from NetSuite disappears here too)."""
        rows = [
            {
                "kit_sku": kit,
                "component_sku": line.component,
                "quantity": line.quantity,
                "component_active": line.component not in inactive,
            }
            for kit, lines in kits.items()
            for line in {line.component: line for line in lines}.values()
        ]
        with self.engine.begin() as conn:
            conn.execute(sa.delete(boms))
            if rows:
                conn.execute(sa.insert(boms), rows)
        return len(rows)

    def boms(self) -> tuple[dict[str, list[BomLine]], set[str]]:
        kits: dict[str, list[BomLine]] = {}
        inactive: set[str] = set()
        with self.engine.connect() as conn:
            for row in conn.execute(sa.select(boms).order_by(boms.c.kit_sku)):
                kits.setdefault(row.kit_sku, []).append(BomLine(row.component_sku, row.quantity))
                if not row.component_active:
                    inactive.add(row.component_sku)
        return kits, inactive

    # -- pushes -----------------------------------------------------------------------------------
    def pushed(self, location: str) -> dict[str, Pushed]:
        query = sa.select(pushes).where(pushes.c.location == location)
        with self.engine.connect() as conn:
            return {row.sku: Pushed(row.quantity, parse_iso(row.as_of)) for row in conn.execute(query)}

    def push_rows(self, sku: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(pushes).where(pushes.c.sku == sku)).mappings()]

    def record_pushes(
        self, location: str, quantities: Mapping[str, int], as_of: datetime, key: str | None
    ) -> None:
        """What Shopify now shows because of us (guarded: never replaces a fresher push)."""
        if not quantities:
            return
        stamp, now = iso(as_of), iso(datetime.now(UTC))
        rows = [
            {
                "location": location,
                "sku": sku,
                "quantity": int(qty),
                "as_of": stamp,
                "pushed_at": now,
                "idempotency_key": key,
            }
            for sku, qty in quantities.items()
        ]
        with self.engine.begin() as conn:
            conn.execute(self._guarded_upsert(pushes, ["location", "sku"]), rows)
            conn.execute(
                sa.insert(history),
                [
                    {"source": "push", "location": location, "sku": r["sku"], "quantity": r["quantity"]}
                    | {"as_of": stamp}
                    for r in rows
                ],
            )

    # -- orders the ledger learned about ---------------------------------------------------------
    def in_flight_orders(self, stages: Iterable[Stage]) -> list[list[dict[str, Any]]]:
        """The lines of the orders in these stages (what Shopify sold that NetSuite does not know)."""
        return [journey.lines for journey in self.ledger.journeys_in_stage(list(stages))]

    def orders_recorded_since(self, since: datetime) -> list[tuple[datetime, list[dict]]]:
        """(first seen, lines) of the orders the ledger first saw after ``since`` (kits as sold)."""
        table = schema.order_journeys
        query = sa.select(table.c.created_at, table.c.lines).where(
            table.c.created_at > since, table.c.shopify_order_id.is_not(None)
        )
        with self.engine.connect() as conn:
            return [
                (at if at.tzinfo else at.replace(tzinfo=UTC), list(lines or []))
                for at, lines in conn.execute(query)
            ]

    # -- helpers ----------------------------------------------------------------------------------
    def _guarded_upsert(self, table: sa.Table, keys: list[str]):
        stmt = _insert(self.engine, table)
        updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        return stmt.on_conflict_do_update(
            index_elements=keys, set_=updates, where=stmt.excluded.as_of >= table.c.as_of
        )


def _insert(engine: sa.Engine, table: sa.Table) -> Any:
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    if engine.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"ledger does not support {engine.dialect.name}")
