"""DCL's receipts and shipments read into one shape, whatever field names the account answers with.

DCL documents the ``po_receipt`` model only partly (dcl.md §8.2: ``dcl_po_number``, ``receipt_date``
and the names its filters imply; the line fields are unconfirmed) and shows two shipment shapes
(dcl.md §5): carrier / service / weight per shipment with ``packages[].shipped_items`` (the model page
and the sandbox's default), or ``shipments[].shipped_lines`` with only the carrier requested on the
order (older third-party code). So every reader here accepts each plausible name, in a fixed order
of preference, and turns the record into the canonical shape the rest of the code reads:

- receipt: ``{receipt_id, dcl_po_number, receipt_date, receipt_type, location, lines: [{line_number,
  item_number, quantity_received}], unreadable, raw}``
- shipment: ``{ship_date, shipping_carrier, shipping_service, packages: [{carton_id, tracking_number,
  weight, shipped_items: [{item_number, quantity, serial_numbers}]}], unreadable, raw}``

A record whose lines cannot be read under any of the names is never guessed at: it comes back with
``unreadable`` set to why (and its raw payload), and the sync quarantines it (``unreadable_receipt``,
``unreadable_shipment``) instead of recording "nothing to post". Reading is idempotent: a canonical
record reads as itself.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from mienne_ops.domain.quantities import UnreadableQuantity, whole_number

UNREADABLE_RECEIPT = "unreadable_receipt"
UNREADABLE_SHIPMENT = "unreadable_shipment"

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


def first(record: dict[str, Any], names: tuple[str, ...]) -> Any:
    """The value of the first of ``names`` the record carries (None, "" and [] count as absent)."""
    for name in names:
        value = record.get(name)
        if value not in (None, "", []):
            return value
    return None


# -- receipts -------------------------------------------------------------------------------------


def read_receipt(raw: dict[str, Any]) -> dict[str, Any]:
    """A ``po_receipts`` record in the canonical shape (``unreadable`` says why when it is not)."""
    lines, problem = _read_lines(raw, RECEIPT_LINE_LISTS, RECEIVED_QUANTITY_FIELDS, "quantity_received")
    receipt_id = first(raw, RECEIPT_ID_FIELDS)
    return {
        "receipt_id": str(receipt_id) if receipt_id is not None else None,
        "dcl_po_number": raw.get("dcl_po_number"),
        "receipt_date": first(raw, RECEIPT_DATE_FIELDS),
        "receipt_type": raw.get("receipt_type"),
        "location": raw.get("location"),
        "lines": lines,
        "unreadable": problem,
        "raw": raw.get("raw", raw) if "unreadable" in raw else raw,
    }


# -- shipments ------------------------------------------------------------------------------------


def read_shipment(raw: dict[str, Any], order: dict[str, Any] | None = None) -> dict[str, Any]:
    """A shipment of ``GET /orders`` in the canonical shape; the order's carrier is the fallback.

    Items come from ``packages[].shipped_items`` or, failing that, from the shipment's own
    ``shipped_lines`` (then attached to its first package, or to one package made of the shipment's
    tracking numbers).
    """
    order = order or {}
    packages = [_package(p) for p in raw.get("packages") or [] if isinstance(p, dict)]
    problem = None
    in_packages = [p for p in raw.get("packages") or [] if isinstance(p, dict) and p.get("shipped_items")]
    if in_packages:
        sources = [p for p in raw.get("packages") or [] if isinstance(p, dict)]
        for package, source in zip(packages, sources, strict=True):
            if not source.get("shipped_items"):
                continue  # an empty carton among filled ones
            items, problem = _read_lines(source, ("shipped_items",), SHIPPED_QUANTITY_FIELDS, "quantity")
            package["shipped_items"] = items
            if problem:
                break
    else:
        items, problem = _read_lines(raw, SHIPMENT_LINE_LISTS, SHIPPED_QUANTITY_FIELDS, "quantity")
        if not packages:
            packages = [
                {"carton_id": None, "tracking_number": number, "weight": None, "shipped_items": []}
                for number in _tracking_numbers(raw)
            ] or [{"carton_id": None, "tracking_number": None, "weight": None, "shipped_items": []}]
        packages[0]["shipped_items"] = items
    return {
        "ship_date": raw.get("ship_date"),
        "shipping_carrier": first(raw, CARRIER_FIELDS) or first(order, CARRIER_FIELDS),
        "shipping_service": first(raw, SERVICE_FIELDS) or first(order, SERVICE_FIELDS),
        "packages": packages,
        "unreadable": problem,
        "raw": raw.get("raw", raw) if "unreadable" in raw else raw,
    }


def read_order_shipments(order: dict[str, Any]) -> list[dict[str, Any]]:
    return [read_shipment(s, order) for s in order.get("shipments") or [] if isinstance(s, dict)]


def _package(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "carton_id": raw.get("carton_id"),
        "tracking_number": first(raw, ("tracking_number",)),
        "weight": raw.get("weight"),
        "shipped_items": [],
    }


def _tracking_numbers(raw: dict[str, Any]) -> list[str]:
    value = first(raw, TRACKING_FIELDS)
    values = value if isinstance(value, list) else [value] if value else []
    return [str(v) for v in values if str(v).strip()]


# -- lines ----------------------------------------------------------------------------------------


def _read_lines(
    record: dict[str, Any], list_names: tuple[str, ...], quantity_names: tuple[str, ...], quantity_key: str
) -> tuple[list[dict[str, Any]], str | None]:
    """Lines as ``{line_number?, item_number, <quantity_key>, serial_numbers?}``, or why not."""
    raw_lines = first(record, list_names)
    if not isinstance(raw_lines, list) or not raw_lines:
        return [], f"no line list under any of {', '.join(list_names)}"
    lines = []
    for index, raw in enumerate(raw_lines, start=1):
        if not isinstance(raw, dict):
            return [], f"line {index} is not an object"
        item = first(raw, ITEM_FIELDS)
        quantity = _whole_number(first(raw, quantity_names))
        if item is None or quantity is None:
            return [], f"line {index} has no readable item number or quantity"
        line: dict[str, Any] = {"item_number": str(item), quantity_key: quantity}
        number = _whole_number(first(raw, LINE_NUMBER_FIELDS))
        if number is not None:
            line["line_number"] = number
        if raw.get("serial_numbers"):
            line["serial_numbers"] = list(raw["serial_numbers"])
        if raw.get("lot_number"):
            line["lot_number"] = raw["lot_number"]
        lines.append(line)
    return lines, None


def _whole_number(value: Any) -> int | None:
    try:
        return whole_number(value)
    except UnreadableQuantity:
        return None


def raw_fingerprint(raw: dict[str, Any]) -> str:
    """A stable short hash of a raw record (identity of a record that has no readable id)."""
    return hashlib.sha1(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:12]
