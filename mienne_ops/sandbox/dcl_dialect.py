"""The DCL account behaviours DCL does not document, each playable by the fake (its "dialect").

DCL's help pages leave several answers open (dcl.md §5, §4, §8). Real accounts may answer either
way, so the product must work with each, and the fake can play each one. The defaults are the
sandbox's historical choices; ``POST /_sandbox/dcl/account`` switches them (``GET`` shows them):

- ``shipment_shape``: ``per_shipment`` (default; ``shipping_carrier`` / ``shipping_service`` on each
  shipment, items in ``packages[].shipped_items``) or ``shipped_lines`` (items in
  ``shipments[].shipped_lines``, cartons carry only tracking and weight, the carrier only on the
  order, as older third-party code reads it).
- ``receipt_shape``: ``sandbox`` (default; ``receipt_id``, ``lines[].quantity_received``),
  ``alternate`` (``receipt_number``, ``receipt_lines[]`` with ``item`` / ``line_no`` /
  ``received_quantity``) or ``opaque`` (line fields no reader knows: the unreadable-receipt drill).
- ``partial_batch_error_code``: with ``allow_partial=true`` and a rejected order, also set a non-zero
  top-level ``error_code`` (undocumented; the per-order results stay authoritative).
- ``no_records_code``: a list GET with nothing to return answers ``error_code`` 1 "No records found"
  without the list, instead of an empty list.
- ``asn_updates``: ``update_in_place`` (default; a new ``reference_transaction_number`` for a known
  ``reference_order_number`` updates that PO) or ``new_po`` (it creates a second PO).
- ``cancelled_order_numbers``: ``refused`` (default; a new order under the number of a cancelled
  order is error 20 "Order number already exists", like any duplicate) or ``reusable`` (DCL takes
  it: the new order replaces the cancelled one under that number). dcl.md documents neither.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mienne_ops.sandbox.dcl_rules import DclError

NO_RECORDS_CODE = 1
CHOICES = {
    "shipment_shape": ("per_shipment", "shipped_lines"),
    "receipt_shape": ("sandbox", "alternate", "opaque"),
    "asn_updates": ("update_in_place", "new_po"),
    "cancelled_order_numbers": ("refused", "reusable"),
}
FLAGS = ("partial_batch_error_code", "no_records_code")


@dataclass
class Dialect:
    shipment_shape: str = "per_shipment"
    receipt_shape: str = "sandbox"
    partial_batch_error_code: bool = False
    no_records_code: bool = False
    asn_updates: str = "update_in_place"
    cancelled_order_numbers: str = "refused"

    def configure(self, body: Any) -> None:
        """Apply a control-plane body; anything unknown or mistyped is a 400 and changes nothing."""
        if not isinstance(body, dict):
            raise DclError(400, 13, "the body must be a JSON object")
        unknown = sorted(set(body) - set(CHOICES) - set(FLAGS))
        if unknown:
            raise DclError(400, 13, f"unknown setting(s): {', '.join(unknown)}")
        for name, value in body.items():
            if name in FLAGS and not isinstance(value, bool):
                raise DclError(400, 13, f"{name} must be true or false")
            if name in CHOICES and value not in CHOICES[name]:
                raise DclError(400, 13, f"{name} must be one of {', '.join(CHOICES[name])}")
        for name, value in body.items():
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def render_receipt(receipt: dict[str, Any], shape: str) -> dict[str, Any]:
    if shape == "sandbox":
        return receipt
    header = {k: v for k, v in receipt.items() if k not in ("receipt_id", "lines")}
    if shape == "alternate":
        lines = [
            {
                "line_no": line.get("line_number"),
                "item": line["item_number"],
                "received_quantity": line["quantity_received"],
            }
            for line in receipt["lines"]
        ]
        return {**header, "receipt_number": receipt["receipt_id"], "receipt_lines": lines}
    lines = [
        {"sku_cd": line["item_number"], "rcv_qty": line["quantity_received"]} for line in receipt["lines"]
    ]
    # Opaque: the identity survives, the line fields are named as no reader knows them.
    return {**header, "receipt_id": receipt["receipt_id"], "rcpt_dtl": lines}


def render_shipment_shape(shipment: dict[str, Any], shape: str) -> dict[str, Any]:
    """``shipped_lines``: items per shipment, no carrier on it, cartons with tracking and weight only."""
    if shape == "per_shipment":
        return shipment
    lines: dict[str, dict[str, Any]] = {}
    for package in shipment.get("packages") or []:
        for item in package.get("shipped_items") or []:
            line = lines.setdefault(
                item["item_number"],
                {"item_number": item["item_number"], "quantity": 0, "serial_numbers": []},
            )
            line["quantity"] += item["quantity"]
            line["serial_numbers"] += item.get("serial_numbers") or []
    rendered = {k: v for k, v in shipment.items() if k not in ("shipping_carrier", "shipping_service")}
    rendered["packages"] = [
        {k: v for k, v in package.items() if k != "shipped_items"} for package in shipment["packages"]
    ]
    rendered["shipped_lines"] = list(lines.values())
    return rendered
