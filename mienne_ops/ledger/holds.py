"""Holds before dispatch in the ledger: placed, refreshed, released, each in the audit log.

One row per (order, reason): placing a hold that is already active refreshes its detail and release
time but keeps its *since* (a re-evaluation must not make an old hold look new); placing it again
after a release starts a new one. Every placement and release is written to the audit log with who
did it (``rules``, an operator's name, ``shopify`` when released in the Shopify admin).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from mienne_ops.domain.holds import HoldDecision, HoldReason, OrderHold, Release
from mienne_ops.ledger import schema
from mienne_ops.ledger.audit import AuditRecords
from mienne_ops.ledger.sql import aware, chunked, insert_ignore, now

# The too-late reports of holds placed after DCL started picking (`sync.hold_recall`'s exceptions).
HOLDS_FLOW, TOO_LATE_REASON = "holds", "hold_too_late"


class HoldRecords(AuditRecords):
    """The `Ledger`'s hold table (mixed into `Ledger`, which owns the engine); changes are audited."""

    engine: sa.Engine

    def place_hold(self, shopify_order_id: str, decision: HoldDecision, placed_by: str) -> bool:
        """Hold an order (idempotent); True when the hold is new (was not active before)."""
        table = schema.order_holds
        key, at = str(shopify_order_id), now()
        where = (table.c.shopify_order_id == key) & (table.c.reason == str(decision.reason))
        values = {
            "shopify_order_id": key,
            "reason": str(decision.reason),
            "detail": decision.detail,
            "release": str(decision.release),
            # UTC: SQLite keeps the wall time only, and `holds_due` compares times in the database.
            "until": decision.until.astimezone(UTC) if decision.until else None,
            "placed_at": at,
            "placed_by": placed_by,
        }
        with self.engine.begin() as conn:
            inserted = conn.execute(
                insert_ignore(self.engine, table, ["shopify_order_id", "reason"]), values
            ).rowcount
            refreshed = conn.execute(
                sa.update(table)
                .where(where, table.c.released_at.is_not(None))
                .values(values | {"released_at": None, "released_by": None, "shopify_hold_ids": None})
            ).rowcount
            if not (inserted or refreshed):  # active already: newer detail, same since
                conn.execute(
                    sa.update(table).where(where).values(detail=decision.detail, until=values["until"])
                )
        placed = bool(inserted or refreshed)
        if placed:
            detail = f"{decision.reason} by {placed_by}: {decision.detail}"
            self.audit("ledger", "hold.place", key, "ok", detail=detail)
        return placed

    def release_hold(self, shopify_order_id: str, reason: HoldReason, released_by: str) -> bool:
        """Release an active hold; False when there was none to release."""
        table = schema.order_holds
        key = str(shopify_order_id)
        with self.engine.begin() as conn:
            released = conn.execute(
                sa.update(table)
                .where(
                    table.c.shopify_order_id == key,
                    table.c.reason == str(reason),
                    table.c.released_at.is_(None),
                )
                .values(released_at=now(), released_by=released_by)
            ).rowcount
        if released:
            self.audit("ledger", "hold.release", key, "ok", detail=f"{reason} by {released_by}")
            self._settle_too_late_reports(key)
        return bool(released)

    def _settle_too_late_reports(self, shopify_order_id: str) -> None:
        """The order's last hold is gone: the holds' reports about it — too late at DCL
        (`sync.hold_recall`), not shown in Shopify (`sync.holds`) — have nothing left to warn about."""
        holds, journeys, exceptions = schema.order_holds, schema.order_journeys, schema.exceptions
        with self.engine.begin() as conn:
            still_held = conn.execute(
                sa.select(sa.func.count())
                .select_from(holds)
                .where(holds.c.shopify_order_id == shopify_order_id, holds.c.released_at.is_(None))
            ).scalar_one()
            if still_held:
                return
            numbers = sa.select(journeys.c.dcl_order_number).where(
                journeys.c.shopify_order_id == shopify_order_id, journeys.c.dcl_order_number.is_not(None)
            )
            about_it = sa.or_(
                (exceptions.c.reason == TOO_LATE_REASON) & exceptions.c.key.in_(numbers),
                (exceptions.c.entity == "order") & (exceptions.c.key == shopify_order_id),
            )
            conn.execute(
                sa.update(exceptions)
                .where(exceptions.c.flow == HOLDS_FLOW, about_it, exceptions.c.status != "resolved")
                .values(status="resolved", resolved_at=now())
            )

    def record_shopify_holds(
        self, shopify_order_id: str, reason: HoldReason, hold_ids: Iterable[str] | None
    ) -> None:
        """The Shopify holds mirroring a hold (None: none in Shopify — to mirror if the hold is active,
        nothing left to release if it is released)."""
        table = schema.order_holds
        value = sorted(set(hold_ids)) if hold_ids is not None else None
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(table)
                .where(table.c.shopify_order_id == str(shopify_order_id), table.c.reason == str(reason))
                .values(shopify_hold_ids=value)
            )

    def holds_with_mirror_pending(self) -> list[OrderHold]:
        """Active holds not yet mirrored to Shopify, and released ones whose Shopify holds remain."""
        table = schema.order_holds
        return self._holds(
            sa.select(table).where(
                sa.or_(
                    table.c.released_at.is_(None) & table.c.shopify_hold_ids.is_(None),
                    table.c.released_at.is_not(None) & table.c.shopify_hold_ids.is_not(None),
                )
            )
        )

    def holds_of(self, shopify_order_id: str) -> list[OrderHold]:
        """Every hold an order has had (active and released)."""
        table = schema.order_holds
        return self._holds(sa.select(table).where(table.c.shopify_order_id == str(shopify_order_id)))

    def active_holds(
        self, shopify_order_ids: Iterable[str] | None = None, *, release: Release | None = None
    ) -> list[OrderHold]:
        """Active holds, of these orders or of all (only those ``release`` ends, when given)."""
        table = schema.order_holds
        query = sa.select(table).where(table.c.released_at.is_(None)).order_by(table.c.placed_at)
        if release is not None:
            query = query.where(table.c.release == str(release))
        if shopify_order_ids is None:
            return self._holds(query)
        found: list[OrderHold] = []
        for chunk in chunked(sorted({str(i) for i in shopify_order_ids})):
            found += self._holds(query.where(table.c.shopify_order_id.in_(chunk)))
        return found

    def held_order_ids(self) -> set[str]:
        table = schema.order_holds
        query = sa.select(table.c.shopify_order_id).where(table.c.released_at.is_(None)).distinct()
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def holds_due(self, moment: datetime) -> list[OrderHold]:
        """Active holds released by time whose time has come."""
        table = schema.order_holds
        return self._holds(
            sa.select(table).where(
                table.c.released_at.is_(None),
                table.c.release == str(Release.AT_TIME),
                table.c.until <= moment.astimezone(UTC),
            )
        )

    def _holds(self, query: Any) -> list[OrderHold]:
        with self.engine.connect() as conn:
            return [_hold(row) for row in conn.execute(query).mappings()]


def _hold(row: Any) -> OrderHold:
    return OrderHold(
        shopify_order_id=row["shopify_order_id"],
        reason=HoldReason(row["reason"]),
        detail=row["detail"],
        release=Release(row["release"]),
        until=aware(row["until"]),
        placed_at=aware(row["placed_at"]) or now(),
        placed_by=row["placed_by"],
        released_at=aware(row["released_at"]),
        released_by=row["released_by"],
        shopify_hold_ids=tuple(row["shopify_hold_ids"]) if row["shopify_hold_ids"] is not None else None,
    )
