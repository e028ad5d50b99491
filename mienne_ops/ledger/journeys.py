"""Order journeys and DCL shipments in the ledger (flows A, B, C): typed rows, keyed reads, set-once ids.

Every remote id on a journey is written once: setting it again to the same value is a no-op, to
another value raises `BindingConflict` (a human must look), and the unique constraints stop two
journeys from claiming one sales order or DCL order even when two runs race. Reads are keyed
(`journey`, `journeys`, `journey_by_sales_order`, `journey_by_dcl_order`) and return `OrderJourney`
rows, so a flow reads an order's whole state in one query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mienne_ops.domain.journey import CLOSED_STAGES, Entity, OrderJourney, ShipmentProgress, Stage
from mienne_ops.errors import PermanentError
from mienne_ops.ledger import schema
from mienne_ops.ledger.audit import AuditRecords
from mienne_ops.ledger.sql import aware, chunked, insert_ignore, now

# Stages flow B may move on from when it dispatches (it never moves an order backwards).
_BEFORE_DISPATCH = (Stage.RECEIVED, Stage.IN_NETSUITE)


# The journey column holding each order-like entity's key (`order_names`).
_NAMED_BY = {
    Entity.ORDER.value: "shopify_order_id",
    Entity.SALES_ORDER.value: "netsuite_sales_order_id",
    Entity.DCL_ORDER.value: "dcl_order_number",
}


class BindingConflict(PermanentError):
    """A key is already bound to a different remote record: a human must look."""


class JourneyRecords(AuditRecords):
    """The `Ledger`'s journey and shipment tables (mixed into `Ledger`, which owns the engine)."""

    engine: sa.Engine

    # -- reads ----------------------------------------------------------------------------------
    def journey(self, shopify_order_id: str) -> OrderJourney | None:
        return self._one("shopify_order_id", str(shopify_order_id))

    def journeys(self, shopify_order_ids: Iterable[str]) -> dict[str, OrderJourney]:
        """The journeys of many Shopify orders in one keyed read (unknown ids are absent)."""
        table = schema.order_journeys
        found: dict[str, OrderJourney] = {}
        wanted = sorted({str(i) for i in shopify_order_ids})
        with self.engine.connect() as conn:
            for chunk in chunked(wanted):
                rows = conn.execute(sa.select(table).where(table.c.shopify_order_id.in_(chunk)))
                found.update({row.shopify_order_id: _journey(row) for row in rows.mappings()})
            # An archived order is still known (`ledger.archive`): a late webhook never imports it again.
            archived = schema.archived_order_journeys
            for chunk in chunked([i for i in wanted if i not in found]):
                rows = conn.execute(sa.select(archived).where(archived.c.shopify_order_id.in_(chunk)))
                found.update({row.shopify_order_id: _journey(row) for row in rows.mappings()})
        return found

    def find_journey(self, reference: str) -> OrderJourney | None:
        """An order by Shopify id or name (``#1001`` / ``1001``), DCL order number or sales order id."""
        names = [reference, f"#{reference.lstrip('#')}"]
        for column, values in (
            ("shopify_order_id", [reference]),
            ("name", names),
            ("dcl_order_number", [reference]),
            ("netsuite_sales_order_id", [reference]),
        ):
            if (journey := self._one(column, *values)) is not None:
                return journey
        return None

    def order_names(self, records: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Shopify order names (``#1014``) of records, by (entity, key), that flows handle by another
        system's id — a Shopify order id (A), a sales order id (B), a DCL order number (C) — so an
        operator sees the name they know instead of a numeric id. One keyed read per entity and
        chunk; records of other entities, or of orders the ledger has no name for, are absent."""
        keys_by_entity: dict[str, set[str]] = {}
        for entity, key in records:
            keys_by_entity.setdefault(str(entity), set()).add(str(key))
        table = schema.order_journeys
        found: dict[tuple[str, str], str] = {}
        with self.engine.connect() as conn:
            for entity, keys in keys_by_entity.items():
                column = _NAMED_BY.get(entity)
                if column is None:
                    continue
                key_column = table.c[column]
                for chunk in chunked(sorted(keys)):
                    query = sa.select(key_column, table.c.name).where(
                        key_column.in_(chunk), table.c.name.is_not(None)
                    )
                    found.update({(entity, str(key)): name for key, name in conn.execute(query)})
        return found

    def journey_by_sales_order(self, sales_order_id: str) -> OrderJourney | None:
        return self._one("netsuite_sales_order_id", str(sales_order_id))

    def journey_by_dcl_order(self, dcl_order_number: str) -> OrderJourney | None:
        return self._one("dcl_order_number", str(dcl_order_number))

    def journeys_in_stage(self, stages: Sequence[Stage]) -> list[OrderJourney]:
        table = schema.order_journeys
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).where(table.c.stage.in_([str(s) for s in stages])))
            return [_journey(row) for row in rows.mappings()]

    def journeys_with_gaps(self, since: datetime) -> list[OrderJourney]:
        """Shopify orders changed since ``since`` that the ledger shows a step missing for (the repair
        sweep's candidates, `domain.journey_gaps`): an import not finished, a shipped order whose
        StateSet order is not shipped or that flow C never completed, a shipment not on Shopify.
        Bounded by the window, and each read is on an index (stage and update time; a shipment's
        Shopify time)."""
        table = schema.order_journeys
        open_stages = [str(s) for s in Stage if s not in CLOSED_STAGES]
        unfinished = sa.or_(
            table.c.imported_at.is_(None),
            table.c.tagged_at.is_(None),  # a tag found missing in Shopify (`mark_tag_lost`)
            sa.and_(
                table.c.stage == str(Stage.SHIPPED),
                sa.or_(table.c.stateset_shipped_at.is_(None), table.c.shipments_completed.is_(None)),
            ),
        )
        shipments = schema.shipments
        unsent = sa.select(shipments.c.dcl_order_number).where(
            shipments.c.on_shopify_at.is_(None), shipments.c.updated_at >= since
        )
        query = sa.select(table).where(
            table.c.shopify_order_id.is_not(None),
            table.c.stage.in_(open_stages),
            table.c.updated_at >= since,
            unfinished,
        )
        with self.engine.connect() as conn:
            found = {row["id"]: _journey(row) for row in conn.execute(query).mappings()}
            numbers = sorted({str(n) for n in conn.execute(unsent).scalars() if n})
            for chunk in chunked(numbers):
                rows = conn.execute(
                    sa.select(table).where(
                        table.c.dcl_order_number.in_(chunk), table.c.shopify_order_id.is_not(None)
                    )
                )
                found.update({row["id"]: _journey(row) for row in rows.mappings()})
        return sorted(found.values(), key=lambda journey: journey.id)

    def _one(self, column: str, *values: str) -> OrderJourney | None:
        """The journey whose ``column`` is one of ``values``: the live one, else the archived one
        (`ledger.archive`), so an old order is still found by any of its ids."""
        with self.engine.connect() as conn:
            for table in (schema.order_journeys, schema.archived_order_journeys):
                query = sa.select(table).where(table.c[column].in_(values)).order_by(table.c.id)
                if (row := conn.execute(query).mappings().first()) is not None:
                    return _journey(row)
        return None

    # -- writes (flow A) ------------------------------------------------------------------------
    def record_order(
        self,
        shopify_order_id: str,
        name: str | None,
        stage: Stage | None,
        lines: list[dict[str, Any]] | None = None,
    ) -> None:
        """Create or advance an order's journey (stage, and name / lines when given); with no stage a
        new journey starts *received* and a known one keeps its stage."""
        table = schema.order_journeys
        key = str(shopify_order_id)
        at = now()
        values = {
            "shopify_order_id": key,
            "name": name,
            "stage": str(stage or Stage.RECEIVED),
            "lines": lines,
        }
        changes: dict[str, Any] = {"updated_at": at} | ({"stage": str(stage)} if stage else {})
        if name:
            changes["name"] = name
        if lines is not None:
            changes["lines"] = lines
        with self.engine.begin() as conn:
            conn.execute(
                insert_ignore(self.engine, table, ["shopify_order_id"]),
                values | {"created_at": at, "updated_at": at},
            )
            conn.execute(sa.update(table).where(table.c.shopify_order_id == key).values(changes))

    def bind_sales_order(self, shopify_order_id: str, sales_order_id: str, tranid: str | None = None) -> str:
        """The order's NetSuite sales order (and its tranId once known); returns the bound id."""
        where = schema.order_journeys.c.shopify_order_id == str(shopify_order_id)
        with self.engine.begin() as conn:
            bound = _set_once(conn, where, "netsuite_sales_order_id", sales_order_id, shopify_order_id)
            _stamp_first(conn, where, "sales_order_at")
            if tranid:
                _set_once(conn, where, "netsuite_tranid", tranid, shopify_order_id)
        return bound

    def bind_stateset_order(self, shopify_order_id: str, stateset_order_id: str) -> str:
        where = schema.order_journeys.c.shopify_order_id == str(shopify_order_id)
        with self.engine.begin() as conn:
            return _set_once(conn, where, "stateset_order_id", stateset_order_id, shopify_order_id)

    def mark_tagged(self, shopify_order_id: str) -> None:
        """Shopify confirmed flow A's tag on the order (noted once)."""
        table = schema.order_journeys
        at = now()
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(table)
                .where(table.c.shopify_order_id == str(shopify_order_id), table.c.tagged_at.is_(None))
                .values(tagged_at=at, updated_at=at)
            )

    def mark_tag_lost(self, shopify_order_ids: Iterable[str], at: datetime) -> list[str]:
        """Shopify showed no flow A tag at ``at`` on these orders although the ledger had them
        tagged (someone removed it): noted, and the journey counted as changed then (an old order is
        back in the repair window), so the gap stays found until the tag is back. Returns the ids
        that were marked."""
        table = schema.order_journeys
        ids = sorted({str(i) for i in shopify_order_ids})
        marked: list[str] = []
        with self.engine.begin() as conn:
            for chunk in chunked(ids):
                where = sa.and_(table.c.shopify_order_id.in_(chunk), table.c.tagged_at.is_not(None))
                found = conn.execute(sa.select(table.c.shopify_order_id).where(where)).scalars()
                marked += [str(key) for key in found]
                conn.execute(sa.update(table).where(where).values(tagged_at=None, updated_at=at))
        return marked

    def finish_import(self, shopify_order_id: str, name: str | None) -> None:
        """Flow A finished every step of the order: marked once, and the stage moves on from
        *received* (never back: flow B or C may have moved it already)."""
        table = schema.order_journeys
        at = now()
        key = str(shopify_order_id)
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(table)
                .where(table.c.shopify_order_id == key, table.c.tagged_at.is_(None))
                .values(tagged_at=at)
            )
            conn.execute(
                sa.update(table)
                .where(table.c.shopify_order_id == key, table.c.imported_at.is_(None))
                .values(imported_at=at, updated_at=at, **({"name": name} if name else {}))
            )
            conn.execute(
                sa.update(table)
                .where(table.c.shopify_order_id == key, table.c.stage == str(Stage.RECEIVED))
                .values(stage=str(Stage.IN_NETSUITE), updated_at=at)
            )

    # -- writes (flow B) ------------------------------------------------------------------------
    def record_dispatch(
        self,
        sales_order_id: str,
        dcl_order_number: str,
        *,
        shopify_order_id: str | None = None,
        tranid: str | None = None,
    ) -> OrderJourney:
        """DCL has the sales order as ``dcl_order_number``: one write on the order's journey.

        The journey is the Shopify order's when the sales order came from Shopify (its external id
        says which), else one of its own keyed by the sales order. Found again by `journey_by_dcl_order`.
        """
        table = schema.order_journeys
        at = now()
        stamps = {"created_at": at, "updated_at": at}
        with self.engine.begin() as conn:
            if shopify_order_id:
                where = table.c.shopify_order_id == str(shopify_order_id)
                values = {"shopify_order_id": str(shopify_order_id), "stage": str(Stage.DISPATCHED)}
                conn.execute(insert_ignore(self.engine, table, ["shopify_order_id"]), values | stamps)
            else:
                where = table.c.netsuite_sales_order_id == str(sales_order_id)
                values = {
                    "netsuite_sales_order_id": str(sales_order_id),
                    "name": tranid or str(dcl_order_number),
                    "stage": str(Stage.DISPATCHED),
                }
                conn.execute(insert_ignore(self.engine, table, ["netsuite_sales_order_id"]), values | stamps)
            record = shopify_order_id or sales_order_id
            _set_once(conn, where, "netsuite_sales_order_id", sales_order_id, record)
            _set_once(conn, where, "dcl_order_number", dcl_order_number, record)
            if tranid:
                _set_once(conn, where, "netsuite_tranid", tranid, record)
            _stamp_first(conn, where, "dispatched_at")
            conn.execute(
                sa.update(table)
                .where(where, table.c.stage.in_([str(s) for s in _BEFORE_DISPATCH]))
                .values(stage=str(Stage.DISPATCHED), updated_at=at)
            )
            row = conn.execute(sa.select(table).where(where)).mappings().one()
        return _journey(row)

    # -- writes (a hold placed after dispatch: `sync.hold_recall`, flow B's resend) ---------------
    def move_stage(self, journey_id: int, before: Sequence[Stage], after: Stage) -> bool:
        """Move a journey to ``after`` only from one of ``before`` (compare-and-set: two runs racing
        on one order cannot both move it); True when the journey is at ``after`` now."""
        table = schema.order_journeys
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(table)
                .where(table.c.id == journey_id, table.c.stage.in_([str(s) for s in before]))
                .values(stage=str(after), updated_at=now())
            )
            stage = conn.execute(sa.select(table.c.stage).where(table.c.id == journey_id)).scalar()
        return stage == str(after)

    def rebind_dcl_order(self, journey_id: int, old: str, new: str) -> OrderJourney:
        """A withdrawn order DCL accepted again as ``new``: the journey moves to that number and back
        to *dispatched* in one write (flow C finds the shipments of ``new``); ``old`` stays in the
        audit log. Idempotent (already moved: nothing happens); any other state is a conflict."""
        table = schema.order_journeys
        try:
            with self.engine.begin() as conn:
                moved = conn.execute(
                    sa.update(table)
                    .where(
                        table.c.id == journey_id,
                        table.c.dcl_order_number == str(old),
                        table.c.stage == str(Stage.WITHDRAWN),
                    )
                    .values(dcl_order_number=str(new), stage=str(Stage.DISPATCHED), updated_at=now())
                ).rowcount
        except sa.exc.IntegrityError as error:  # another journey holds ``new``
            raise BindingConflict(
                f"DCL order {new} already belongs to another journey than {journey_id}",
                system="ledger",
                operation="rebind_dcl_order",
                record=str(journey_id),
            ) from error
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.id == journey_id)).mappings().one()
        journey = _journey(row)
        if journey.dcl_order_number != str(new) or journey.stage in (Stage.WITHDRAWN, Stage.WITHDRAWING):
            raise BindingConflict(
                f"journey {journey_id} is at DCL order {journey.dcl_order_number} ({journey.stage}), "
                f"cannot move it from {old} to {new}",
                system="ledger",
                operation="rebind_dcl_order",
                record=str(journey.shopify_order_id or journey_id),
            )
        if moved:
            self.audit(
                "ledger",
                "journey.rebind_dcl_order",
                str(journey.shopify_order_id or journey.netsuite_sales_order_id),
                "ok",
                remote_id=str(new),
                detail=f"DCL order {old} (cancelled) sent again as {new}",
            )
        return journey

    # -- writes (flow C) ------------------------------------------------------------------------
    def set_stage(self, journey_id: int, stage: Stage) -> None:
        table = schema.order_journeys
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(table).where(table.c.id == journey_id).values(stage=str(stage), updated_at=now())
            )

    def mark_stateset_shipped(self, journey_id: int) -> None:
        self._stamp_once(journey_id, "stateset_shipped_at")

    def bind_cash_sale(self, journey_id: int, cash_sale_id: str) -> str:
        with self.engine.begin() as conn:
            where = schema.order_journeys.c.id == journey_id
            return _set_once(conn, where, "cash_sale_id", cash_sale_id, str(journey_id))

    def bind_invoice(self, journey_id: int, invoice_id: str) -> str:
        """The invoice flow C billed the order with (rules that bill by invoice, not cash sale)."""
        with self.engine.begin() as conn:
            where = schema.order_journeys.c.id == journey_id
            return _set_once(conn, where, "invoice_id", invoice_id, str(journey_id))

    def mark_shipments_complete(self, journey_id: int, shipment_count: int) -> None:
        """Flow C finished every step for this many shipments (a later shipment raises the count)."""
        table = schema.order_journeys
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(table)
                .where(
                    table.c.id == journey_id,
                    sa.or_(
                        table.c.shipments_completed.is_(None), table.c.shipments_completed < shipment_count
                    ),
                )
                .values(shipments_completed=shipment_count, updated_at=now())
            )

    def _stamp_once(self, journey_id: int, column: str) -> None:
        table = schema.order_journeys
        at = now()
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(table)
                .where(table.c.id == journey_id, table.c[column].is_(None))
                .values({column: at, "updated_at": at})
            )

    # -- shipments (flow C) ---------------------------------------------------------------------
    def shipment(self, shipment_key: str) -> ShipmentProgress | None:
        table = schema.shipments
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(table).where(table.c.shipment_key == shipment_key)).mappings().first()
            )
        return _shipment(row) if row else None

    def shipments_of(self, dcl_order_number: str) -> list[ShipmentProgress]:
        table = schema.shipments
        query = sa.select(table).where(table.c.dcl_order_number == str(dcl_order_number))
        with self.engine.connect() as conn:
            return [_shipment(row) for row in conn.execute(query.order_by(table.c.created_at)).mappings()]

    def shipments_of_orders(self, dcl_order_numbers: Iterable[str]) -> dict[str, list[ShipmentProgress]]:
        """Each DCL order's shipments, oldest first (one query per 500 orders; none is an empty list)."""
        table = schema.shipments
        numbers = sorted({str(n) for n in dcl_order_numbers})
        found: dict[str, list[ShipmentProgress]] = {n: [] for n in numbers}
        with self.engine.connect() as conn:
            for chunk in chunked(numbers):
                query = sa.select(table).where(table.c.dcl_order_number.in_(chunk))
                for row in conn.execute(query.order_by(table.c.created_at)).mappings():
                    found[row["dcl_order_number"]].append(_shipment(row))
        return found

    def shipments_on_shopify(self, shipment_keys: Iterable[str]) -> set[str]:
        """Which of these shipments are settled on Shopify (one query per 500 keys)."""
        table = schema.shipments
        settled: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in chunked(sorted(set(shipment_keys))):
                query = sa.select(table.c.shipment_key).where(
                    table.c.shipment_key.in_(chunk), table.c.on_shopify_at.is_not(None)
                )
                settled.update(conn.execute(query).scalars())
        return settled

    def bind_item_fulfillment(
        self, shipment_key: str, dcl_order_number: str, item_fulfillment_id: str
    ) -> str:
        with self.engine.begin() as conn:
            self._ensure_shipment(conn, shipment_key, dcl_order_number)
            where = schema.shipments.c.shipment_key == shipment_key
            return _set_once(
                conn, where, "item_fulfillment_id", item_fulfillment_id, shipment_key, table=schema.shipments
            )

    def record_tracking(
        self, shipment_key: str, dcl_order_number: str, carrier: str, tracking_numbers: Sequence[str]
    ) -> None:
        """What DCL shipped this shipment with, kept so `order status` needs no vendor call.

        Written once: DCL never changes a shipment's packages, so a later read adds nothing."""
        table = schema.shipments
        with self.engine.begin() as conn:
            self._ensure_shipment(conn, shipment_key, dcl_order_number)
            conn.execute(
                sa.update(table)
                .where(table.c.shipment_key == shipment_key, table.c.tracking_numbers.is_(None))
                .values(carrier=carrier, tracking_numbers=list(tracking_numbers), updated_at=now())
            )

    def record_on_shopify(
        self, shipment_key: str, dcl_order_number: str, shopify_fulfillment_id: str | None
    ) -> None:
        """The shipment's tracking is on Shopify (``None``: nothing was left to fulfil there)."""
        table = schema.shipments
        at = now()
        with self.engine.begin() as conn:
            self._ensure_shipment(conn, shipment_key, dcl_order_number)
            conn.execute(
                sa.update(table)
                .where(table.c.shipment_key == shipment_key, table.c.on_shopify_at.is_(None))
                .values(on_shopify_at=at, shopify_fulfillment_id=shopify_fulfillment_id, updated_at=at)
            )

    def _ensure_shipment(self, conn: sa.Connection, shipment_key: str, dcl_order_number: str) -> None:
        at = now()
        conn.execute(
            insert_ignore(self.engine, schema.shipments, ["shipment_key"]),
            {"shipment_key": shipment_key, "dcl_order_number": str(dcl_order_number)}
            | {"created_at": at, "updated_at": at},
        )


def _set_once(
    conn: sa.Connection,
    where: Any,
    column: str,
    value: str,
    record: str,
    *,
    table: sa.Table = schema.order_journeys,
) -> str:
    """Set ``column`` where it is still empty; the value it holds afterwards must be ``value``."""
    try:
        conn.execute(sa.update(table).where(where, table.c[column].is_(None)).values({column: str(value)}))
    except sa.exc.IntegrityError as error:  # another journey already holds this remote id
        raise BindingConflict(
            f"{column} {value} already belongs to another record than {record}",
            system="ledger",
            operation="bind",
            record=str(record),
        ) from error
    bound = conn.execute(sa.select(table.c[column]).where(where)).scalar()
    if bound is None:
        raise PermanentError(f"no ledger row for {record}", system="ledger", operation="bind", record=record)
    if bound != str(value):
        raise BindingConflict(
            f"{record} is already bound to {column} {bound}, not {value}",
            system="ledger",
            operation="bind",
            record=str(record),
        )
    return str(bound)


def _stamp_first(conn: sa.Connection, where: Any, column: str) -> None:
    """Note when a journey first reached a step (the SLOs' clock); a later pass keeps the first time."""
    table = schema.order_journeys
    conn.execute(sa.update(table).where(where, table.c[column].is_(None)).values({column: now()}))


def _journey(row: Any) -> OrderJourney:
    return OrderJourney(
        id=row["id"],
        shopify_order_id=row["shopify_order_id"],
        name=row["name"],
        stage=Stage(row["stage"]),
        lines=list(row["lines"] or []),
        netsuite_sales_order_id=row["netsuite_sales_order_id"],
        netsuite_tranid=row["netsuite_tranid"],
        dcl_order_number=row["dcl_order_number"],
        stateset_order_id=row["stateset_order_id"],
        stateset_shipped_at=aware(row["stateset_shipped_at"]),
        cash_sale_id=row["cash_sale_id"],
        invoice_id=row["invoice_id"],
        shipments_completed=row["shipments_completed"],
        imported_at=aware(row["imported_at"]),
        tagged_at=aware(row["tagged_at"]),
        created_at=aware(row["created_at"]),
        updated_at=aware(row["updated_at"]),
    )


def _shipment(row: Any) -> ShipmentProgress:
    return ShipmentProgress(
        shipment_key=row["shipment_key"],
        dcl_order_number=row["dcl_order_number"],
        item_fulfillment_id=row["item_fulfillment_id"],
        on_shopify_at=aware(row["on_shopify_at"]),
        shopify_fulfillment_id=row["shopify_fulfillment_id"],
        carrier=row["carrier"],
        tracking_numbers=None if row["tracking_numbers"] is None else tuple(row["tracking_numbers"]),
    )
