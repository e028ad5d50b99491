"""DCL's orders, shipments and receipts parsed once into typed models, whatever names the account uses.

DCL documents the ``po_receipt`` model only partly (dcl.md §8.2: ``dcl_po_number``, ``receipt_date``
and the names its filters imply; the line fields are unconfirmed) and shows two shipment shapes
(dcl.md §5): carrier / service / weight per shipment with ``packages[].shipped_items`` (the model page
and the sandbox's default), or ``shipments[].shipped_lines`` with only the carrier requested on the
order (older third-party code). So every parser here accepts each plausible name, in a fixed order
of preference, and builds the canonical model the rest of the code reads: `Receipt` (with
`ReceiptLine`s), `Shipment` (with `Package`s of `ShippedItem`s) and `DclOrder` (its lines, stage and
shipments). The DCL client hands these out (`iter_receipts`, `orders`, `iter_parsed_orders`).

A record whose lines cannot be read under any of the names is never guessed at: it comes back with
``unreadable`` set to why (and its ``raw`` payload), and the sync quarantines it
(``unreadable_receipt``, ``unreadable_shipment``, ``unreadable_dcl_order``) instead of recording
"nothing to post". Quantities are whole units read by `domain.quantities` ("2.5" is unreadable,
never truncated). A model parses as itself, so a record parsed where it arrives is never read twice.

RMAs (dcl.md §9, ReturnTrak): `DclRma` with its `DclRmaLine`s and `DclRmaReceipt`s, read from
``GET /rmas`` by pydantic directly (``DclRma.model_validate(raw)``). DCL documents neither the
field names of received quantities nor receipts nor the carrier's first scan: the names are the
sandbox's (our design choice, unverified; ``first_scan_date`` is None when DCL does not report it).
DCL's naive datetimes are US Pacific; they become aware UTC here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, field_validator

from mienne_ops.domain.quantities import UnreadableQuantity, whole_number

PACIFIC = ZoneInfo("America/Los_Angeles")
UNREADABLE_RECEIPT = "unreadable_receipt"
UNREADABLE_SHIPMENT = "unreadable_shipment"
UNREADABLE_ORDER = "unreadable_dcl_order"

# Receipts: the names in §8.2 first, then the names DCL uses for the same idea in its other models
# (order lines ``quantity``/``line_number``, RMA lines ``quantity_received``), then common variants.
RECEIPT_LINE_LISTS = ("lines", "receipt_lines", "po_receipt_lines", "line_items", "items", "details")
RECEIPT_ID_FIELDS = ("receipt_id", "receipt_number", "receipt_no", "receipt_key")
RECEIPT_DATE_FIELDS = ("receipt_date", "received_date", "date_received")
RECEIVED_QUANTITY_FIELDS = ("quantity_received", "received_quantity", "qty_received", "quantity")
ITEM_FIELDS = ("item_number", "item_no", "item", "sku")
LINE_NUMBER_FIELDS = ("line_number", "line_no", "po_line_number", "line")

# Shipments: per-shipment carrier/service (the sandbox's names, then the order model's names
# reused), else the carrier requested on the order (§5: "the originally requested ones").
CARRIER_FIELDS = ("shipping_carrier", "carrier", "ship_carrier")
SERVICE_FIELDS = ("shipping_service", "service", "ship_service", "ship_method")
SHIPPED_QUANTITY_FIELDS = ("quantity", "quantity_shipped", "shipped_quantity", "qty_shipped")
SHIPMENT_LINE_LISTS = ("shipped_lines", "shipped_items", "lines")
TRACKING_FIELDS = ("tracking_number", "tracking_numbers")


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class ReceiptLine(_Record):
    item_number: str
    quantity_received: int
    line_number: int | None = None
    serial_numbers: list[str] | None = None
    lot_number: str | None = None


class Receipt(_Record):
    """One ``po_receipts`` record; ``unreadable`` says why its lines could not be read (then none)."""

    receipt_id: str | None = None
    dcl_po_number: str | None = None
    receipt_date: str | None = None
    receipt_type: str | int | None = None  # as DCL sent it: `receipt_key` hashes it
    location: str | None = None
    lines: list[ReceiptLine] = []
    unreadable: str | None = None
    raw: dict[str, Any] = {}


class ShippedItem(_Record):
    item_number: str
    quantity: int
    line_number: int | None = None
    serial_numbers: list[str] | None = None
    lot_number: str | None = None


class Package(_Record):
    carton_id: str | None = None
    tracking_number: str | None = None
    weight: Decimal | None = None
    shipped_items: list[ShippedItem] = []


class Shipment(_Record):
    """One shipment of a DCL order; ``unreadable`` says why its items could not be read."""

    ship_date: str | None = None
    shipping_carrier: str | None = None
    shipping_service: str | None = None
    packages: list[Package] = []
    unreadable: str | None = None
    raw: dict[str, Any] = {}


class DclOrderLine(_Record):
    line_number: int  # the NetSuite sales order line id flow B sent
    item_number: str
    quantity: int  # ordered


class DclOrder(_Record):
    """One order of ``GET /orders`` (dcl.md §5) with its shipments parsed; ``unreadable`` says why
    its lines or stage could not be read."""

    order_number: str
    location: str | None = None
    order_stage: int = 0
    lines: list[DclOrderLine] = []
    shipments: list[Shipment] = []
    unreadable: str | None = None
    raw: dict[str, Any] = {}

    @property
    def shipped(self) -> bool:
        """Stage 50+ (partially or fully shipped) or any shipment present (dcl.md §5)."""
        return bool(self.shipments) or self.order_stage >= 50


# -- RMAs (ReturnTrak) ----------------------------------------------------------------------------


def dcl_instant(value: Any) -> datetime | None:
    """A DCL date or datetime as aware UTC: naive values (and bare dates) are US Pacific."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        moment = datetime.fromisoformat(str(value).strip().replace(" ", "T").replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=PACIFIC)
    return moment.astimezone(UTC)


class DclRmaLine(_Record):
    item_number: str
    quantity: int  # authorised (0 for an item DCL received although the RMA did not list it)
    quantity_received: int = 0
    description: str | None = None

    @field_validator("quantity", "quantity_received", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> int:
        return whole_number(value or 0)


class DclRmaReceiptLine(_Record):
    item_number: str
    quantity: int
    condition: str  # "good" | "damaged" (our design choice)

    @field_validator("quantity", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> int:
        return whole_number(value)


class DclRmaReceipt(_Record):
    receipt_id: str
    received_date: datetime  # aware UTC
    lines: tuple[DclRmaReceiptLine, ...] = ()

    @field_validator("received_date", mode="before")
    @classmethod
    def _instant(cls, value: Any) -> datetime | None:
        return dcl_instant(value)


class DclRma(_Record):
    """One RMA of ``GET /rmas`` (dcl.md §9) with its receipts; datetimes aware UTC."""

    rma_number: str
    original_order_number: str | None = None
    rma_date: date | None = None
    cancelled_date: datetime | None = None
    expired_date: datetime | None = None
    # The carrier's first scan of the return label (our design choice, unverified: None when DCL
    # does not report it).
    first_scan_date: datetime | None = None
    return_label_url: str | None = None
    return_label_tracking_number: str | None = None
    shipping_carrier: str | None = None
    shipping_service: str | None = None
    lines: tuple[DclRmaLine, ...] = ()
    receipts: tuple[DclRmaReceipt, ...] = ()

    @field_validator("cancelled_date", "expired_date", "first_scan_date", mode="before")
    @classmethod
    def _instant(cls, value: Any) -> datetime | None:
        return dcl_instant(value)

    @field_validator("rma_date", mode="before")
    @classmethod
    def _day(cls, value: Any) -> date | None:
        if value in (None, ""):
            return None
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        return date.fromisoformat(str(value).strip()[:10])

    @field_validator("lines", "receipts", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        return () if value is None else value

    def received_by_item(self) -> dict[str, int]:
        """Units received per item, summed over every receipt (any condition)."""
        received: dict[str, int] = {}
        for receipt in self.receipts:
            for line in receipt.lines:
                received[line.item_number] = received.get(line.item_number, 0) + line.quantity
        return received

    def expected_by_item(self) -> dict[str, int]:
        """Units the RMA authorises per item."""
        expected: dict[str, int] = {}
        for line in self.lines:
            expected[line.item_number] = expected.get(line.item_number, 0) + line.quantity
        return expected


def parse_rma(raw: Mapping[str, Any] | DclRma) -> DclRma:
    """An RMA of ``GET /rmas`` as a `DclRma` (a `DclRma` parses as itself)."""
    if isinstance(raw, DclRma):
        return raw
    return DclRma.model_validate(dict(raw))


def first(record: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    """The value of the first of ``names`` the record carries (None, "" and [] count as absent)."""
    for name in names:
        value = record.get(name)
        if value not in (None, "", []):
            return value
    return None


# -- receipts -------------------------------------------------------------------------------------


def parse_receipt(raw: Mapping[str, Any] | Receipt) -> Receipt:
    """A ``po_receipts`` record as a `Receipt` (``unreadable`` says why when its lines are not)."""
    if isinstance(raw, Receipt):
        return raw
    lines, problem = _read_lines(raw, RECEIPT_LINE_LISTS, RECEIVED_QUANTITY_FIELDS)
    return Receipt(
        receipt_id=_text(first(raw, RECEIPT_ID_FIELDS)),
        dcl_po_number=_text(raw.get("dcl_po_number")),
        receipt_date=_text(first(raw, RECEIPT_DATE_FIELDS)),
        receipt_type=_text_or_int(raw.get("receipt_type")),
        location=_text(raw.get("location")),
        lines=[ReceiptLine(quantity_received=quantity, **fields) for quantity, fields in lines],
        unreadable=problem,
        raw=dict(raw),
    )


# -- shipments ------------------------------------------------------------------------------------


def parse_shipment(raw: Mapping[str, Any] | Shipment, order: Mapping[str, Any] | None = None) -> Shipment:
    """A shipment of ``GET /orders`` as a `Shipment`; the order's carrier is the fallback.

    Items come from ``packages[].shipped_items`` or, failing that, from the shipment's own
    ``shipped_lines`` (then attached to its first package, or to one package made of the shipment's
    tracking numbers).
    """
    if isinstance(raw, Shipment):
        return raw
    order = order or {}
    sources = [p for p in raw.get("packages") or [] if isinstance(p, dict)]
    packages: list[dict[str, Any]] = []
    problem = None
    for index, source in enumerate(sources, start=1):
        package, why = _package(source)
        packages.append(package)
        problem = problem or (f"package {index} {why}" if why else None)
    if any(source.get("shipped_items") for source in sources):
        for package, source in zip(packages, sources, strict=True):
            if not source.get("shipped_items") or problem:
                continue  # an empty carton among filled ones
            items, problem = _read_lines(source, ("shipped_items",), SHIPPED_QUANTITY_FIELDS)
            package["shipped_items"] = _shipped_items(items)
    else:
        items, lines_problem = _read_lines(raw, SHIPMENT_LINE_LISTS, SHIPPED_QUANTITY_FIELDS)
        problem = problem or lines_problem
        if not packages:
            numbers = _tracking_numbers(raw)
            packages = [_empty_package(tracking_number=n) for n in numbers] or [_empty_package()]
        packages[0]["shipped_items"] = _shipped_items(items)
    return Shipment(
        ship_date=_text(raw.get("ship_date")),
        shipping_carrier=_text(first(raw, CARRIER_FIELDS) or first(order, CARRIER_FIELDS)),
        shipping_service=_text(first(raw, SERVICE_FIELDS) or first(order, SERVICE_FIELDS)),
        packages=[Package(**package) for package in packages],
        unreadable=problem,
        raw=dict(raw),
    )


def parse_order_shipments(order: Mapping[str, Any] | DclOrder) -> list[Shipment]:
    if isinstance(order, DclOrder):
        return order.shipments
    return [parse_shipment(s, order) for s in order.get("shipments") or [] if isinstance(s, dict)]


# -- orders ---------------------------------------------------------------------------------------


def parse_dcl_order(raw: Mapping[str, Any] | DclOrder) -> DclOrder:
    """An order of ``GET /orders`` as a `DclOrder`: its lines, stage and shipments read once.

    A line without a line number or item, or a quantity or stage that is not a whole number, makes
    the order unreadable (with why); an order line without a quantity ordered counts as 0.
    """
    if isinstance(raw, DclOrder):
        return raw
    lines, problem = [], None
    for index, line in enumerate(raw.get("lines") or [], start=1):
        try:
            number = whole_number(line.get("line_number")) if isinstance(line, dict) else None
            quantity = whole_number(line.get("quantity") or 0) if isinstance(line, dict) else 0
        except UnreadableQuantity as why:
            problem = problem or f"line {index}: line number or quantity {why}"
            continue
        if number is None or not isinstance(line, dict) or line.get("item_number") in (None, ""):
            problem = problem or f"line {index} has no line number or item number"
            continue
        lines.append(
            DclOrderLine(line_number=number, item_number=str(line["item_number"]), quantity=quantity)
        )
    try:
        stage = whole_number(raw.get("order_stage") or 0)
    except UnreadableQuantity as why:
        stage, problem = 0, problem or f"order_stage {why}"
    return DclOrder(
        order_number=str(raw.get("order_number") or ""),
        location=_text(raw.get("location")),
        order_stage=stage,
        lines=lines if problem is None else [],
        shipments=parse_order_shipments(raw),
        unreadable=problem,
        raw=dict(raw),
    )


def _package(raw: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A package's fields (no items yet), and why its weight cannot be read, if it cannot."""
    weight, problem = raw.get("weight"), None
    if weight in (None, ""):
        weight = None
    else:
        try:
            weight = Decimal(str(weight))
        except (InvalidOperation, ValueError):
            weight, problem = None, f"weight {raw.get('weight')!r} is not a number"
    package = _empty_package(tracking_number=_text(first(raw, ("tracking_number",))))
    package.update(carton_id=_text(raw.get("carton_id")), weight=weight)
    return package, problem


def _empty_package(tracking_number: str | None = None) -> dict[str, Any]:
    return {"carton_id": None, "tracking_number": tracking_number, "weight": None, "shipped_items": []}


def _shipped_items(lines: list[tuple[int, dict[str, Any]]]) -> list[ShippedItem]:
    return [ShippedItem(quantity=quantity, **fields) for quantity, fields in lines]


def _tracking_numbers(raw: Mapping[str, Any]) -> list[str]:
    value = first(raw, TRACKING_FIELDS)
    values = value if isinstance(value, list) else [value] if value else []
    return [str(v) for v in values if str(v).strip()]


# -- lines ----------------------------------------------------------------------------------------


def _read_lines(
    record: Mapping[str, Any], list_names: tuple[str, ...], quantity_names: tuple[str, ...]
) -> tuple[list[tuple[int, dict[str, Any]]], str | None]:
    """Lines as (quantity, {item_number, line_number?, serial_numbers?, lot_number?}), or why not."""
    raw_lines = first(record, list_names)
    if not isinstance(raw_lines, list) or not raw_lines:
        return [], f"no line list under any of {', '.join(list_names)}"
    lines = []
    for index, raw in enumerate(raw_lines, start=1):
        if not isinstance(raw, dict):
            return [], f"line {index} is not an object"
        item = first(raw, ITEM_FIELDS)
        try:
            quantity = whole_number(first(raw, quantity_names))
        except UnreadableQuantity as why:
            return [], f"line {index} has no readable item number or quantity (quantity {why})"
        if item is None:
            return [], f"line {index} has no readable item number or quantity (no item number)"
        fields: dict[str, Any] = {"item_number": str(item)}
        number = _whole_or_none(first(raw, LINE_NUMBER_FIELDS))
        if number is not None:
            fields["line_number"] = number
        serials = raw.get("serial_numbers")
        if serials:
            fields["serial_numbers"] = [str(s) for s in (serials if isinstance(serials, list) else [serials])]
        if raw.get("lot_number"):
            fields["lot_number"] = str(raw["lot_number"])
        lines.append((quantity, fields))
    return lines, None


def _whole_or_none(value: Any) -> int | None:
    try:
        return whole_number(value)
    except UnreadableQuantity:
        return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _text_or_int(value: Any) -> str | int | None:
    return value if value is None or (isinstance(value, int) and not isinstance(value, bool)) else str(value)


def raw_fingerprint(raw: dict[str, Any]) -> str:
    """A stable short hash of a raw record (identity of a record that has no readable id)."""
    return hashlib.sha1(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:12]
