"""Flow D in the ledger: PO / TO ↔ DCL PO number, every announcement sent, replacements, receipts.

- ``inbound_orders``: the DCL PO number a NetSuite purchase / transfer order was announced as
  (unique: two orders never share one); re-pointed only by compare-and-swap (`replace_dcl_po`).
- ``asn_versions``: one row per announcement version, with its fingerprint — a re-run with the same
  content sends nothing.
- ``asn_replacements``: an operator confirmed an old DCL PO cancelled (``cancel_and_replace``), and
  which PO replaced it.
- ``receipts``: each DCL receipt handled in NetSuite and its item receipt (none: nothing could post).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from mienne_ops.domain.journey import AsnVersion, PostedReceipt
from mienne_ops.ledger import schema
from mienne_ops.ledger.journeys import BindingConflict
from mienne_ops.ledger.sql import aware, chunked, insert_ignore, now


class InboundRecords:
    """The `Ledger`'s flow-D tables (mixed into `Ledger`, which owns the engine)."""

    engine: sa.Engine

    # -- PO / TO ↔ DCL PO number ----------------------------------------------------------------
    def dcl_po_number(self, netsuite_order_id: str) -> str | None:
        table = schema.inbound_orders
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(table.c.dcl_po_number).where(table.c.netsuite_order_id == str(netsuite_order_id))
            ).scalar()

    def dcl_po_numbers(self, netsuite_order_ids: Iterable[str]) -> dict[str, str]:
        table = schema.inbound_orders
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for chunk in chunked(sorted({str(i) for i in netsuite_order_ids})):
                query = sa.select(table.c.netsuite_order_id, table.c.dcl_po_number).where(
                    table.c.netsuite_order_id.in_(chunk), table.c.dcl_po_number.is_not(None)
                )
                found.update({row.netsuite_order_id: row.dcl_po_number for row in conn.execute(query)})
        return found

    def inbound_order_of_po(self, dcl_po_number: str) -> str | None:
        """The NetSuite PO / TO announced as ``dcl_po_number``."""
        table = schema.inbound_orders
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(table.c.netsuite_order_id).where(table.c.dcl_po_number == str(dcl_po_number))
            ).scalar()

    def bind_dcl_po(self, netsuite_order_id: str, dcl_po_number: str) -> str:
        table = schema.inbound_orders
        at = now()
        key = str(netsuite_order_id)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert_ignore(self.engine, table, ["netsuite_order_id"]),
                    {"netsuite_order_id": key, "created_at": at, "updated_at": at},
                )
                conn.execute(
                    sa.update(table)
                    .where(table.c.netsuite_order_id == key, table.c.dcl_po_number.is_(None))
                    .values(dcl_po_number=str(dcl_po_number), updated_at=at)
                )
        except sa.exc.IntegrityError as error:
            raise _conflict(key, dcl_po_number, "another order") from error
        bound = self.dcl_po_number(key)
        if bound != str(dcl_po_number):
            raise _conflict(key, dcl_po_number, str(bound))
        return bound

    def replace_dcl_po(self, netsuite_order_id: str, old: str, new: str) -> bool:
        """Re-point an order from DCL PO ``old`` to ``new`` (compare-and-swap: False if it is neither)."""
        table = schema.inbound_orders
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(table)
                .where(table.c.netsuite_order_id == str(netsuite_order_id), table.c.dcl_po_number == str(old))
                .values(dcl_po_number=str(new), updated_at=now())
            )
        return self.dcl_po_number(netsuite_order_id) == str(new)

    # -- announcements --------------------------------------------------------------------------
    def asn_versions(self, netsuite_order_id: str) -> dict[int, AsnVersion]:
        table = schema.asn_versions
        query = sa.select(table).where(table.c.netsuite_order_id == str(netsuite_order_id))
        with self.engine.connect() as conn:
            return {
                row.version: AsnVersion(
                    version=row.version,
                    fingerprint=row.fingerprint,
                    reference=row.reference,
                    units=row.units,
                    dcl_po_number=row.dcl_po_number,
                )
                for row in conn.execute(query)
            }

    def record_asn_version(self, netsuite_order_id: str, version: AsnVersion) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert_ignore(self.engine, schema.asn_versions, ["netsuite_order_id", "version"]),
                {"netsuite_order_id": str(netsuite_order_id), **vars(version), "sent_at": now()},
            )

    def confirm_asn_cancel(self, netsuite_order_id: str, old_dcl_po_number: str) -> None:
        """An operator confirmed DCL PO ``old`` cancelled (kept: a retry after a transient error
        must not ask again)."""
        with self.engine.begin() as conn:
            conn.execute(
                insert_ignore(
                    self.engine, schema.asn_replacements, ["netsuite_order_id", "old_dcl_po_number"]
                ),
                {
                    "netsuite_order_id": str(netsuite_order_id),
                    "old_dcl_po_number": str(old_dcl_po_number),
                    "cancel_confirmed_at": now(),
                },
            )

    def asn_cancel_confirmed(self, netsuite_order_id: str, old_dcl_po_number: str) -> bool:
        return self._replacement(netsuite_order_id, old_dcl_po_number) is not None

    def record_asn_replacement(self, netsuite_order_id: str, old_dcl_po_number: str, new: str) -> None:
        self.confirm_asn_cancel(netsuite_order_id, old_dcl_po_number)
        table = schema.asn_replacements
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(table)
                .where(
                    table.c.netsuite_order_id == str(netsuite_order_id),
                    table.c.old_dcl_po_number == str(old_dcl_po_number),
                )
                .values(new_dcl_po_number=str(new))
            )

    def _replacement(self, netsuite_order_id: str, old_dcl_po_number: str) -> Any:
        table = schema.asn_replacements
        query = sa.select(table).where(
            table.c.netsuite_order_id == str(netsuite_order_id),
            table.c.old_dcl_po_number == str(old_dcl_po_number),
        )
        with self.engine.connect() as conn:
            return conn.execute(query).first()

    # -- receipts -------------------------------------------------------------------------------
    def posted_receipt(self, receipt_key: str) -> PostedReceipt | None:
        table = schema.receipts
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.receipt_key == receipt_key)).first()
        if row is None:
            return None
        return PostedReceipt(
            receipt_key=row.receipt_key,
            dcl_po_number=row.dcl_po_number,
            item_receipt_id=row.item_receipt_id,
            posted_at=aware(row.posted_at) or now(),
        )

    def posted_receipt_keys(self, receipt_keys: Iterable[str]) -> set[str]:
        table = schema.receipts
        posted: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in chunked(sorted(set(receipt_keys))):
                query = sa.select(table.c.receipt_key).where(table.c.receipt_key.in_(chunk))
                posted.update(conn.execute(query).scalars())
        return posted

    def record_receipt(self, receipt_key: str, dcl_po_number: str, item_receipt_id: str | None) -> None:
        """A receipt is handled: posted as ``item_receipt_id``, or None when nothing of it could post."""
        with self.engine.begin() as conn:
            conn.execute(
                insert_ignore(self.engine, schema.receipts, ["receipt_key"]),
                {
                    "receipt_key": receipt_key,
                    "dcl_po_number": str(dcl_po_number),
                    "item_receipt_id": item_receipt_id,
                    "posted_at": now(),
                },
            )
        recorded = self.posted_receipt(receipt_key)
        if recorded is not None and recorded.item_receipt_id != item_receipt_id:
            raise BindingConflict(
                f"receipt {receipt_key} is already recorded as item receipt {recorded.item_receipt_id}, "
                f"not {item_receipt_id}",
                system="ledger",
                operation="record_receipt",
                record=receipt_key,
            )


def _conflict(order_id: str, dcl_po_number: str, holder: str) -> BindingConflict:
    return BindingConflict(
        f"inbound order {order_id} cannot take DCL PO {dcl_po_number}: bound to {holder}",
        system="ledger",
        operation="bind_dcl_po",
        record=order_id,
    )
