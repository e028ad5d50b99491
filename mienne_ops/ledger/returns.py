"""Flow F's returns in the ledger: one row per return, keyed by the request that opened it.

`record_return` is the only way in and is idempotent (the database's unique key decides: the same
request twice is one return). The row's status, deadline and reminder count are columns (the sensors
select on them); every id a step made goes into ``outcome`` the moment it exists, so a run that
stopped halfway — or a restart during a two-week wait — picks up at the step it reached.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from mienne_ops.domain.returns import OPEN_STATUSES, OrderReturn, ReturnLine, ReturnStatus
from mienne_ops.ledger import schema
from mienne_ops.ledger.audit import AuditRecords
from mienne_ops.ledger.sql import aware, insert_once, merge_json, now, rows_by_status


class ReturnRecords(AuditRecords):
    """The `Ledger`'s ``returns`` (mixed into `Ledger`, which owns the engine)."""

    engine: sa.Engine

    def record_return(
        self,
        return_key: str,
        *,
        request_id: int | None,
        shopify_order_id: str,
        order_name: str | None,
        lines: Iterable[ReturnLine],
        currency: str,
        value: Decimal,
        country: str | None,
        instant: bool = False,
        status: ReturnStatus = ReturnStatus.OPENING,
    ) -> tuple[OrderReturn, bool]:
        """The return under this key, recorded now if it is new; True when it is new."""
        at = now()
        values: dict[str, Any] = {
            "return_key": return_key,
            "request_id": request_id,
            "shopify_order_id": str(shopify_order_id),
            "order_name": order_name,
            "status": str(status),
            "lines": [json.loads(line.model_dump_json()) for line in lines],
            "currency": currency,
            "value": str(value),
            "refunded": "0",
            "country": country,
            "instant": instant,
            "reminders_sent": 0,
            "outcome": {},
            "created_at": at,
            "updated_at": at,
        }
        inserted = insert_once(self.engine, schema.returns, "return_key", values)
        ret = self.return_by_key(return_key)
        assert ret is not None  # inserted now or before
        if inserted:
            self.audit("ledger", "return.record", return_key, "ok", detail=f"{order_name} {status}")
        return ret, bool(inserted)

    def order_return(self, return_id: int) -> OrderReturn | None:
        return self._return_where(schema.returns.c.id == return_id)

    def return_by_key(self, return_key: str) -> OrderReturn | None:
        return self._return_where(schema.returns.c.return_key == return_key)

    def return_by_rma(self, rma_number: str) -> OrderReturn | None:
        return self._return_where(schema.returns.c.rma_number == rma_number)

    def returns(
        self,
        *,
        statuses: Iterable[ReturnStatus] | None = None,
        shopify_order_id: str | None = None,
        limit: int = 1000,
    ) -> list[OrderReturn]:
        rows = rows_by_status(
            self.engine, schema.returns, statuses=statuses, shopify_order_id=shopify_order_id, limit=limit
        )
        return [_return(row) for row in rows]

    def open_returns(self, limit: int = 1000) -> list[OrderReturn]:
        """Returns a run still has work for, oldest first."""
        return self.returns(statuses=OPEN_STATUSES, limit=limit)

    def note_return(self, return_id: int, **facts: Any) -> OrderReturn:
        """Merge what a step did into the return's outcome (read-modify-write in one transaction)."""
        merge_json(self.engine, schema.returns.c.outcome, return_id, facts)
        return self._fresh(return_id)

    def append_return_fact(self, return_id: int, key: str, item: Any) -> OrderReturn:
        """Add ``item`` to the outcome's list under ``key`` (a receipt booked, a refund made) once."""
        table = schema.returns
        item = json.loads(json.dumps(item, default=str))
        with self.engine.begin() as conn:
            current = conn.execute(sa.select(table.c.outcome).where(table.c.id == return_id)).scalar() or {}
            items = list(current.get(key, []))
            if item not in items:
                items.append(item)
            conn.execute(
                sa.update(table)
                .where(table.c.id == return_id)
                .values(outcome={**current, key: items}, updated_at=now())
            )
        return self._fresh(return_id)

    def update_return(self, return_id: int, **columns: Any) -> OrderReturn:
        """Set columns (rma_number, label_sent_at, deadline_at, reminders_sent, received_at,
        refunded, refunded_at, instant, country, value)."""
        allowed = {
            "rma_number",
            "label_sent_at",
            "deadline_at",
            "reminders_sent",
            "received_at",
            "refunded",
            "refunded_at",
            "instant",
            "country",
            "value",
        }
        unknown = set(columns) - allowed
        if unknown:
            raise ValueError(f"not a return column to update: {sorted(unknown)}")
        values = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in columns.items()}
        table = schema.returns
        with self.engine.begin() as conn:
            conn.execute(sa.update(table).where(table.c.id == return_id).values(**values, updated_at=now()))
        return self._fresh(return_id)

    def set_return_status(
        self,
        return_id: int,
        status: ReturnStatus,
        *,
        expect: Iterable[ReturnStatus] | None = None,
        reason: str = "",
    ) -> bool:
        """Move a return to ``status`` (only from one of ``expect`` when given); False when it was not
        in an expected status (another run or an operator moved it first)."""
        table = schema.returns
        query = sa.update(table).where(table.c.id == return_id)
        if expect is not None:
            query = query.where(table.c.status.in_([str(s) for s in expect]))
        with self.engine.begin() as conn:
            changed = conn.execute(query.values(status=str(status), updated_at=now())).rowcount
            key = conn.execute(sa.select(table.c.return_key).where(table.c.id == return_id)).scalar()
        if changed:
            detail = f"{status}" + (f": {reason}" if reason else "")
            self.audit("ledger", "return.status", str(key), "ok", detail=detail[:500])
        return bool(changed)

    def _fresh(self, return_id: int) -> OrderReturn:
        ret = self.order_return(return_id)
        assert ret is not None
        return ret

    def _return_where(self, where: Any) -> OrderReturn | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schema.returns).where(where)).mappings().first()
        return None if row is None else _return(row)


def _return(row: Any) -> OrderReturn:
    return OrderReturn(
        id=row["id"],
        return_key=row["return_key"],
        request_id=row["request_id"],
        shopify_order_id=row["shopify_order_id"],
        order_name=row["order_name"],
        status=ReturnStatus(row["status"]),
        lines=tuple(ReturnLine.model_validate(line) for line in row["lines"] or []),
        currency=row["currency"],
        value=Decimal(row["value"]),
        refunded=Decimal(row["refunded"]),
        country=row["country"],
        rma_number=row["rma_number"],
        instant=bool(row["instant"]),
        label_sent_at=aware(row["label_sent_at"]),
        deadline_at=aware(row["deadline_at"]),
        reminders_sent=int(row["reminders_sent"] or 0),
        received_at=aware(row["received_at"]),
        refunded_at=aware(row["refunded_at"]),
        outcome=dict(row["outcome"] or {}),
        created_at=aware(row["created_at"]),
        updated_at=aware(row["updated_at"]),
    )
