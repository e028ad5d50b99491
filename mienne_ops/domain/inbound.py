"""Flow D, pure part: NetSuite POs / TOs become DCL PO notifications; DCL receipts become item receipts.

Inputs are what flow D reads from NetSuite by SuiteQL (lower-case keys, every value a string) and
what DCL returns from ``GET /po_receipts``. Outputs are the body of ``POST /po_notifications``
(dcl.md §8.1) and the body of ``purchaseOrder|transferOrder/{id}/!transform/itemReceipt``
(netsuite.md §9.3), plus what cannot be posted (over-receipts, unknown items) with a reason.

How an announcement is versioned (our design choice, see the DCL sandbox docstring):

- ``reference_order_number`` is the PO / TO ``tranId``: DCL's name for "this inbound order".
- ``reference_transaction_number`` is ``<tranId>-<version>``, unique per announcement version, as
  dcl.md §8.1 requires ("must be unique per transaction", e.g. ``PO123-1``).
- A notification whose ``reference_order_number`` DCL already holds is an UPDATE of that inbound
  order: DCL keeps its ``dcl_po_number`` and the quantities already received, and takes the new
  lines and dates. So an edited PO is announced again as ``<tranId>-2``, not as a second PO.
- What was announced is fingerprinted (`notification_digest`, the body without the reference):
  the same content is never announced twice, a changed content is announced as the next version.

The announced quantity of a line is its ordered quantity (not what is left), so receipts do not
change the fingerprint; closed lines are left out (DCL then expects nothing more on them).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from mienne_ops.domain.dcl_records import UNREADABLE_RECEIPT, Receipt, parse_receipt, raw_fingerprint
from mienne_ops.domain.suiteql_rows import InboundOrderHeader, InboundOrderLine, UnreadableRow, parse_row
from mienne_ops.errors import InvalidRecordError

SYSTEM = "netsuite"
PURCHASE_ORDER, TRANSFER_ORDER = "PurchOrd", "TrnfrOrd"
RECORD_TYPES = {PURCHASE_ORDER: "purchaseOrder", TRANSFER_ORDER: "transferOrder"}
#: Status letters (netsuite.md §9.3) in which goods are still expected at the warehouse.
PENDING_RECEIPT = {PURCHASE_ORDER: ("B", "D", "E"), TRANSFER_ORDER: ("D", "E", "F")}
RECEIVABLE_ITEM_TYPES = {"InvtPart", "Assembly"}
REFERENCE_MAX = 25
SUPPLIER_REFERENCE_MAX = 25
_NOT_REFERENCE_CHARS = re.compile(r"[^A-Za-z0-9-]+")

OVER_RECEIPT = "over_receipt"
UNKNOWN_ITEM = "unknown_item"


@dataclass(frozen=True)
class InboundLine:
    line: int  # NetSuite line id = DCL line_number = itemReceipt orderLine
    sku: str
    quantity: int  # ordered
    received: int  # quantityshiprecv (received in NetSuite)
    closed: bool = False

    @property
    def open_quantity(self) -> int:
        return 0 if self.closed else max(self.quantity - self.received, 0)


@dataclass(frozen=True)
class InboundOrder:
    """A NetSuite purchase order or transfer order as flow D sees it."""

    id: str
    type: str  # PurchOrd | TrnfrOrd
    tranid: str
    status: str
    receiving_location: int | None  # PO: location; TO: transferlocation (the DCL warehouse)
    trandate: str | None = None
    duedate: str | None = None
    vendor: str | None = None  # PO entity id
    source_location: int | None = None  # TO: the location it ships from
    dcl_po_number: str | None = None  # custbody_dcl_po_number
    sent_to_3pl: bool = False
    lines: tuple[InboundLine, ...] = ()

    @classmethod
    def from_suiteql(
        cls,
        header: Mapping[str, Any] | InboundOrderHeader | UnreadableRow,
        lines: Sequence[Mapping[str, Any] | InboundOrderLine | UnreadableRow],
    ) -> InboundOrder:
        """The order from its SuiteQL rows (raw or parsed); a row that cannot be read refuses it."""
        raw_header = (
            header.raw
            if isinstance(header, UnreadableRow)
            else header.model_dump()
            if isinstance(header, InboundOrderHeader)
            else header
        )
        record = f"{raw_header.get('type') or ''} {raw_header.get('id')}"
        parsed = parse_row(InboundOrderHeader, header)
        if isinstance(parsed, UnreadableRow):
            raise _invalid(record, parsed.reason, parsed.problem)
        kind = parsed.type
        receiving = parsed.transferlocation if kind == TRANSFER_ORDER else parsed.location
        return cls(
            id=parsed.id,
            type=kind,
            tranid=parsed.tranid,
            status=parsed.status,
            receiving_location=_int_or_none(receiving),
            trandate=_date(parsed.trandate),
            duedate=_date(parsed.duedate),
            vendor=parsed.entity if kind == PURCHASE_ORDER else None,
            source_location=_int_or_none(parsed.location) if kind == TRANSFER_ORDER else None,
            dcl_po_number=parsed.custbody_dcl_po_number,
            sent_to_3pl=parsed.custbody_sent_to_3pl,
            lines=tuple(_inbound_line(row, record) for row in lines if _receivable(row)),
        )

    @property
    def record_type(self) -> str:
        return RECORD_TYPES[self.type]

    @property
    def pending_receipt(self) -> bool:
        """Goods are still expected: not cancelled, closed, rejected or fully received."""
        return self.status in PENDING_RECEIPT.get(self.type, ()) and any(
            line.open_quantity > 0 for line in self.lines
        )

    @property
    def fully_received(self) -> bool:
        """Every line received in full (closed lines count as done); False for an empty order."""
        lines = [line for line in self.lines if not line.closed]
        return bool(lines) and all(line.received >= line.quantity for line in lines)

    @property
    def ordered_total(self) -> int:
        return sum(line.quantity for line in self.lines if not line.closed)

    @property
    def received_total(self) -> int:
        return sum(line.received for line in self.lines)


# -- ASN out ------------------------------------------------------------------------------------


def dcl_reference(tran_id: str) -> str:
    """The tranId in DCL's reference alphabet ``[A-Za-z0-9-]`` (refused, never truncated)."""
    cleaned = _NOT_REFERENCE_CHARS.sub("-", (tran_id or "").strip()).strip("-")
    if not cleaned or len(cleaned) > REFERENCE_MAX - 4:
        raise InvalidRecordError(
            "invalid_reference",
            f"tranId {tran_id!r} cannot become a DCL reference (1-{REFERENCE_MAX - 4} of A-Z a-z 0-9 -)",
            system=SYSTEM,
            operation="plan_po_notification",
        )
    return cleaned


def reference_transaction_number(order: InboundOrder, version: int) -> str:
    """``<tranId>-<version>``: unique per announcement version (dcl.md §8.1)."""
    reference = f"{dcl_reference(order.tranid)}-{version}"
    if len(reference) > REFERENCE_MAX:
        raise InvalidRecordError(
            "invalid_reference", f"{reference} is longer than {REFERENCE_MAX} characters", system=SYSTEM
        )
    return reference


def plan_po_notification(order: InboundOrder, warehouse_by_location: dict[int, str]) -> dict[str, Any]:
    """The ``po_notifications`` body, without ``reference_transaction_number`` (added per version)."""
    record = f"{order.record_type} {order.tranid or order.id}"
    if order.type not in RECORD_TYPES:
        raise _invalid(record, "not_inbound", f"transaction type {order.type!r} is not a PO or TO")
    warehouse = warehouse_by_location.get(order.receiving_location or -1)
    if warehouse is None:
        raise _invalid(
            record, "not_a_dcl_location", f"receiving location {order.receiving_location} is no DCL warehouse"
        )
    lines = [
        {"line_number": line.line, "item_number": line.sku, "quantity": line.quantity}
        for line in order.lines
        if not line.closed and line.quantity > 0
    ]
    if not lines:
        raise _invalid(record, "nothing_to_receive", "no open line to announce")
    for announced in order.lines:
        if not announced.closed and not 0 < len(announced.sku) <= 25:
            raise _invalid(record, "invalid_item_number", f"line {announced.line} has no usable SKU")
    order_date = order.trandate
    expected = order.duedate or order.trandate
    if not order_date or not expected:
        raise _invalid(record, "missing_date", "the order has no date")
    notification: dict[str, Any] = {
        "location": warehouse,
        "reference_order_number": dcl_reference(order.tranid),
        "order_date": order_date,
        "expected_delivery_date": expected,
        "lines": lines,
    }
    supplier = _supplier_reference(order, warehouse_by_location)
    if supplier:
        notification["supplier_reference"] = supplier
    return notification


def replacement_notification(notification: dict[str, Any], order: InboundOrder) -> dict[str, Any]:
    """A replacement PO announces what is still open (ordered minus received), not the whole order."""
    open_by_line = {line.line: line.open_quantity for line in order.lines}
    lines = [
        {**line, "quantity": open_by_line.get(line["line_number"], 0)}
        for line in notification["lines"]
        if open_by_line.get(line["line_number"], 0) > 0
    ]
    if not lines:
        raise _invalid(
            f"{order.record_type} {order.tranid}", "nothing_to_receive", "no open line to announce"
        )
    return {**notification, "lines": lines}


def notification_digest(notification: dict[str, Any]) -> str:
    """A fingerprint of what is announced (the reference is left out: it names the version)."""
    content = {k: v for k, v in notification.items() if k != "reference_transaction_number"}
    content["lines"] = sorted(content.get("lines") or [], key=lambda line: line["line_number"])
    return hashlib.sha1(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def _supplier_reference(order: InboundOrder, warehouse_by_location: dict[int, str]) -> str | None:
    """Vendor (PO) or source location (TO), as DCL's optional supplier reference."""
    if order.type == PURCHASE_ORDER and order.vendor:
        return f"VENDOR-{order.vendor}"[:SUPPLIER_REFERENCE_MAX]
    if order.type == TRANSFER_ORDER and order.source_location is not None:
        code = warehouse_by_location.get(order.source_location)
        return (f"TO-FROM-{code}" if code else f"TO-FROM-LOC{order.source_location}")[:SUPPLIER_REFERENCE_MAX]
    return None


# -- receipts in --------------------------------------------------------------------------------


def receipt_key(receipt: dict[str, Any] | Receipt) -> str:
    """A stable identity of one DCL receipt.

    DCL's receipt field list is not confirmed (dcl.md §8.2); the sandbox gives ``receipt_id`` (other
    names are read too, see `domain.dcl_records`). Without one, the receipt's date, type and lines are
    fingerprinted, which is stable across polls; an unreadable receipt is fingerprinted whole.
    """
    receipt = parse_receipt(receipt)
    if receipt.receipt_id:
        return _NOT_REFERENCE_CHARS.sub("-", receipt.receipt_id)
    if receipt.unreadable:
        return "U" + raw_fingerprint(receipt.raw)
    content = {
        "date": receipt.receipt_date,
        "type": receipt.receipt_type,
        "lines": sorted(
            (str(line.line_number), line.item_number, str(line.quantity_received)) for line in receipt.lines
        ),
    }
    return "H" + hashlib.sha1(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]


def item_receipt_external_id(dcl_po_number: Any, key: str) -> str:
    return f"dcl-receipt-{dcl_po_number}-{key}"


@dataclass(frozen=True)
class Excess:
    """Part of a receipt that cannot post: more than ordered, or an item the order does not have."""

    reason: str  # over_receipt | unknown_item
    item_number: str
    quantity: int
    line_number: int | None = None

    def describe(self) -> str:
        where = f"line {self.line_number} " if self.line_number is not None else ""
        if self.reason == OVER_RECEIPT:
            return f"{where}{self.item_number}: {self.quantity} received beyond the open quantity"
        return f"{where}{self.item_number}: {self.quantity} received, item not on the order"


@dataclass
class ReceiptPlan:
    body: dict[str, Any] | None  # the itemReceipt transform body, None when nothing can post
    posted: dict[int, int] = field(default_factory=dict)  # NetSuite line -> quantity
    excess: list[Excess] = field(default_factory=list)

    @property
    def reason(self) -> str:
        reasons = sorted({e.reason for e in self.excess})
        return "+".join(reasons)

    def describe_excess(self) -> str:
        return "; ".join(e.describe() for e in self.excess)


def plan_item_receipt(
    receipt: dict[str, Any] | Receipt, order: InboundOrder, location_id: int, external_id: str
) -> ReceiptPlan:
    """Map a DCL receipt onto the order's open lines; what does not fit is reported as excess.

    A receipt line is matched by ``line_number`` (the ASN kept the NetSuite line id) when the SKU
    agrees, else by SKU among the open lines. Quantities beyond a line's open quantity are
    over-receipts; items not on the order are unknown items. Lines not received are sent with
    ``itemReceive: false`` (NetSuite would otherwise receive them with defaults).
    """
    receipt = parse_receipt(receipt)
    if receipt.unreadable:
        raise InvalidRecordError(
            UNREADABLE_RECEIPT,
            f"DCL receipt {receipt_key(receipt)} of PO {receipt.dcl_po_number}: {receipt.unreadable}",
            system="dcl",
            operation="plan_item_receipt",
            record=receipt_key(receipt),
        )
    by_line = {line.line: line for line in order.lines}
    remaining = {line.line: line.open_quantity for line in order.lines}
    posted: dict[int, int] = defaultdict(int)
    excess: list[Excess] = []
    for received in receipt.lines:
        item = received.item_number
        quantity = abs(received.quantity_received)  # a magnitude, as flow D has always read it
        if quantity <= 0:
            continue
        number = received.line_number
        candidates = [by_line[number]] if number in by_line and by_line[number].sku == item else []
        candidates += [line for line in order.lines if line.sku == item and line not in candidates]
        if not candidates:  # a closed line of the item stays a candidate: receiving on it is over-receipt
            excess.append(Excess(UNKNOWN_ITEM, item, quantity, number))
            continue
        for line in candidates:
            take = min(quantity, remaining[line.line])
            if take > 0:
                posted[line.line] += take
                remaining[line.line] -= take
                quantity -= take
            if quantity == 0:
                break
        if quantity > 0:
            excess.append(Excess(OVER_RECEIPT, item, quantity, candidates[0].line))
    if not posted:
        return ReceiptPlan(None, {}, excess)
    items = []
    for line in order.lines:
        if line.line in posted:
            items.append(
                {
                    "orderLine": line.line,
                    "itemReceive": True,
                    "quantity": posted[line.line],
                    "location": {"id": str(location_id)},
                }
            )
        else:
            items.append({"orderLine": line.line, "itemReceive": False})
    body: dict[str, Any] = {"externalId": external_id, "item": {"items": items}}
    if receipt.receipt_date:
        body["tranDate"] = receipt.receipt_date[:10]
    body["memo"] = f"DCL receipt {receipt_key(receipt)} (DCL PO {receipt.dcl_po_number})"
    return ReceiptPlan(body, dict(posted), excess)


def received_at_dcl(receipts: Iterable[dict[str, Any] | Receipt]) -> int:
    """Units DCL reports received over some receipts (unreadable ones count for nothing here)."""
    return sum(line.quantity_received for receipt in receipts for line in parse_receipt(receipt).lines)


def unreadable_receipts(receipts: Iterable[dict[str, Any] | Receipt]) -> list[Receipt]:
    return [r for r in map(parse_receipt, receipts) if r.unreadable]


# -- helpers ------------------------------------------------------------------------------------


def _receivable(row: Mapping[str, Any] | InboundOrderLine | UnreadableRow) -> bool:
    """Only inventory items are received (a line without an item type counts as one)."""
    raw = row.raw if isinstance(row, UnreadableRow) else row
    item_type = raw.itemtype if isinstance(raw, InboundOrderLine) else raw.get("itemtype")
    return (item_type or "InvtPart") in RECEIVABLE_ITEM_TYPES


def _inbound_line(row: Mapping[str, Any] | InboundOrderLine | UnreadableRow, record: str) -> InboundLine:
    line = parse_row(InboundOrderLine, row)
    if isinstance(line, UnreadableRow):
        raise _invalid(record, line.reason, line.problem)
    # Sizes: `transactionline.quantity` is signed (netsuite.md §10.3) and flow D selects it without
    # ABS(); a fractional quantity never got this far (`domain.quantities`).
    return InboundLine(
        line=line.line,
        sku=line.sku,
        quantity=abs(line.qty),
        received=abs(line.qty_received),
        closed=line.isclosed,
    )


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(str(value))
    except ValueError:
        return None


def _date(value: Any) -> str | None:
    """An ISO date (the queries select ``TO_CHAR(…, 'YYYY-MM-DD')``); anything else reads as none."""
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        return None  # e.g. a locale date (6/15/2024): plan_po_notification quarantines "missing_date"


def _invalid(record: str, reason: str, message: str) -> InvalidRecordError:
    return InvalidRecordError(reason, f"{record}: {message}", system=SYSTEM, record=record)
