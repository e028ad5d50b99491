"""The DCL fake's inbound docks: PO notifications (ASNs) in, PO receipts out.

A mixin of the DCL `Sandbox` (it uses the sandbox's world and inventory); the behaviour it follows
is documented in `dcl.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from mienne_ops.sandbox.dcl_dialect import Dialect, render_receipt
from mienne_ops.sandbox.dcl_rules import (
    PACIFIC,
    REFERENCE,
    SYSTEM,
    DclError,
    day_end,
    optional_text,
    paging,
    parse_instant,
    positive_int,
    require_text,
)


class InboundDocks:
    """`POST /po_notifications`, `GET /po_receipts` and the receiving control route."""

    # Provided by the DCL `Sandbox` this is mixed into.
    world: Any
    items: dict[str, Any]
    location_codes: Any
    adjust_inventory: Callable[[str, str, int], None]
    dialect: Dialect

    # -- ASNs and receipts ----------------------------------------------------------------------
    def create_po_notification(self, params, body: Any) -> tuple[int, dict[str, Any]]:
        body = body if isinstance(body, dict) else {}
        require_text(body, "account_number", 10)
        location = require_text(body, "location", 3).upper()
        if location not in self.location_codes:
            raise DclError(400, 13, "Invalid characters in location")
        reference = require_text(body, "reference_transaction_number", 25)
        if not REFERENCE.match(reference):
            raise DclError(400, 13, "Invalid characters in reference_transaction_number")
        order_number = require_text(body, "reference_order_number", 25)
        order_date = require_text(body, "order_date", 10)
        expected = require_text(body, "expected_delivery_date", 10)
        lines = self._validate_po_lines(body.get("lines"))
        supplier = optional_text(body, "supplier_reference", 25)
        with self.world.tx():
            if self.world.get(SYSTEM, "po", reference) is not None or self._po_by_reference(reference):
                raise DclError(400, 21, "Reference transaction number already exists")
            # Whether a new reference updates the known PO or makes a second one is undocumented.
            update = (
                self._po_by_order_number(order_number)
                if self.dialect.asn_updates == "update_in_place"
                else None
            )
            if update is not None:
                return 201, self._update_po(update, reference, order_date, expected, supplier, lines)
            dcl_po_number = self.world.next_id("dcl:po_number", 182_000)
            self.world.put(
                SYSTEM,
                "po",
                reference,
                {
                    "dcl_po_number": dcl_po_number,
                    "reference_transaction_number": reference,
                    "reference_order_number": order_number,
                    "location": location,
                    "order_date": order_date,
                    "expected_delivery_date": expected,
                    "lines": lines,
                    "supplier_reference": supplier,
                    "references": [reference],
                },
            )
        return 201, {"dcl_po_number": dcl_po_number}

    def _po_by_reference(self, reference: str) -> dict[str, Any] | None:
        return next(
            (po for po in self.world.list(SYSTEM, "po") if reference in po.get("references", [])), None
        )

    def _po_by_order_number(self, order_number: str) -> dict[str, Any] | None:
        """The live (not cancelled) PO DCL holds for this order number."""
        return next(
            (
                po
                for po in self.world.list(SYSTEM, "po")
                if po["reference_order_number"] == order_number and not po.get("cancelled")
            ),
            None,
        )

    def cancel_po_number(self, dcl_po_number: int) -> dict[str, Any]:
        """What an operator does in eFactory (DCL's API has no cancel for PO notifications)."""
        with self.world.tx():
            po = self._po_by_number(int(dcl_po_number))
            if po is None:
                raise DclError(404, 31, f"PO not found: {dcl_po_number}")
            po["cancelled"] = True
            self.world.put(SYSTEM, "po", po.get("references", [po["reference_transaction_number"]])[0], po)
        return {"dcl_po_number": po["dcl_po_number"], "cancelled": True}

    def _po_by_number(self, dcl_po_number: int) -> dict[str, Any] | None:
        return next(
            (po for po in self.world.list(SYSTEM, "po") if int(po["dcl_po_number"]) == dcl_po_number), None
        )

    def _update_po(
        self,
        po: dict[str, Any],
        reference: str,
        order_date: str,
        expected: str,
        supplier: str,
        lines: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """A new version of an announced PO: new lines and dates, received quantities kept."""
        received = {line["line_number"]: line["quantity_received"] for line in po["lines"]}
        items = {line["line_number"]: line["item_number"] for line in po["lines"]}
        merged = []
        for line in lines:
            line["quantity_received"] = received.pop(line["line_number"], 0)
            merged.append(line)
        for number, quantity in received.items():
            if quantity > 0:  # left out of the update: nothing more expected on it
                merged.append(
                    {
                        "line_number": number,
                        "item_number": items[number],
                        "quantity": quantity,
                        "quantity_received": quantity,
                    }
                )
        po.update(
            lines=sorted(merged, key=lambda line: line["line_number"]),
            order_date=order_date,
            expected_delivery_date=expected,
            supplier_reference=supplier or po.get("supplier_reference", ""),
            reference_transaction_number=reference,
            references=[*po.get("references", [po["reference_transaction_number"]]), reference],
        )
        self.world.put(SYSTEM, "po", po["references"][0], po)
        return {"dcl_po_number": po["dcl_po_number"]}

    def receive_po_number(
        self, dcl_po_number: int, lines: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """A receipt as counted at the dock: any quantity, announced or not (control plane, traffic)."""
        with self.world.tx():
            po = self._po_by_number(int(dcl_po_number))
            if po is None:
                raise DclError(404, 31, f"PO not found: {dcl_po_number}")
            if po.get("cancelled"):
                raise DclError(409, 30, f"PO {dcl_po_number} is cancelled")
            by_number = {line["line_number"]: line for line in po["lines"]}
            if not lines:
                lines = [
                    {"line_number": n, "quantity": line["quantity"] - line["quantity_received"]}
                    for n, line in by_number.items()
                ]
            received = []
            for raw in lines:
                quantity = int(raw.get("quantity") or 0)
                number = raw.get("line_number")
                line = by_number.get(int(number)) if number is not None else None
                item = str(raw.get("item_number") or (line["item_number"] if line else ""))
                if quantity <= 0 or not item:
                    continue
                if line is not None and line["item_number"] == item:
                    line["quantity_received"] += quantity
                    row = {"line_number": line["line_number"], "item_number": item}
                else:
                    row = {"item_number": item}  # not announced: DCL has no line for it
                if item in self.items:
                    self.adjust_inventory(item, po["location"], quantity)
                received.append({**row, "quantity_received": quantity})
            if not received:
                raise DclError(409, 30, "Nothing to receive")
            # Stored under its first reference, the key `receive_po` and older docs use.
            self.world.put(SYSTEM, "po", po.get("references", [po["reference_transaction_number"]])[0], po)
            now = self.world.now()
            receipt = {
                "seq": self.world.next_id("dcl:receipt_seq"),
                "receipt_id": f"R{self.world.next_id('dcl:receipt', 500_000)}",
                "dcl_po_number": po["dcl_po_number"],
                "reference_transaction_number": po["reference_transaction_number"],
                "customer_po_number": po["reference_order_number"],
                "supplier_reference": po.get("supplier_reference", ""),
                "receipt_date": now.astimezone(PACIFIC).date().isoformat(),
                "receipt_type": "PO",
                "location": po["location"],
                "received_at": now.isoformat(),
                "lines": received,
            }
            self.world.put(SYSTEM, "receipt", receipt["receipt_id"], receipt)
        return {k: v for k, v in receipt.items() if k not in ("seq", "received_at")}

    def _validate_po_lines(self, raw_lines: Any) -> list[dict[str, Any]]:
        if not isinstance(raw_lines, list) or not raw_lines:
            raise DclError(400, 10, "Missing required field: lines")
        lines = []
        for raw in raw_lines:
            raw = raw if isinstance(raw, dict) else {}
            item = require_text(raw, "item_number", 25, "lines.")
            if item not in self.items:
                raise DclError(400, 12, f"Item number not found: {item}")
            lines.append(
                {
                    "line_number": positive_int(raw, "line_number", "lines."),
                    "item_number": item,
                    "quantity": positive_int(raw, "quantity", "lines."),
                    "quantity_received": 0,
                }
            )
        return lines

    def get_po_receipts(self, params, body: Any = None) -> tuple[int, dict[str, Any]]:
        page, page_size = paging(params, "po_receipts")
        receipts = sorted(self.world.list(SYSTEM, "receipt"), key=lambda r: r["seq"])
        if params.get("reference_transaction_number"):
            receipts = [
                r
                for r in receipts
                if r["reference_transaction_number"] == params["reference_transaction_number"]
            ]
        if params.get("dcl_po_number", "0") not in ("", "0"):
            receipts = [r for r in receipts if str(r["dcl_po_number"]) == params["dcl_po_number"]]
        if params.get("received_from"):
            since = parse_instant(params["received_from"], "received_from")
            receipts = [r for r in receipts if datetime.fromisoformat(r["received_at"]) >= since]
        if params.get("received_to"):
            until = day_end(params["received_to"], "received_to")
            receipts = [r for r in receipts if datetime.fromisoformat(r["received_at"]) < until]
        start = (page - 1) * page_size
        shown = [
            render_receipt(
                {k: v for k, v in r.items() if k not in ("seq", "received_at")}, self.dialect.receipt_shape
            )
            for r in receipts
        ]
        return 200, {"po_receipts": shown[start : start + page_size]}

    def receive_po(self, reference: str, lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Record a receipt against a notified PO and raise on-hand stock (traffic simulator, tests)."""
        with self.world.tx():
            po = self.world.get(SYSTEM, "po", reference)
            if po is None:
                raise DclError(404, 31, f"PO notification not found: {reference}")
            wanted = {int(x["line_number"]): int(x["quantity"]) for x in lines} if lines else None
            received = []
            for line in po["lines"]:
                open_quantity = line["quantity"] - line["quantity_received"]
                quantity = min(open_quantity, wanted.get(line["line_number"], 0)) if wanted else open_quantity
                if quantity <= 0:
                    continue
                line["quantity_received"] += quantity
                self.adjust_inventory(line["item_number"], po["location"], quantity)
                received.append(
                    {
                        "line_number": line["line_number"],
                        "item_number": line["item_number"],
                        "quantity_received": quantity,
                    }
                )
            if not received:
                raise DclError(409, 30, "Nothing left to receive")
            self.world.put(SYSTEM, "po", reference, po)
            now = self.world.now()
            receipt = {
                "seq": self.world.next_id("dcl:receipt_seq"),
                "receipt_id": f"R{self.world.next_id('dcl:receipt', 500_000)}",
                "dcl_po_number": po["dcl_po_number"],
                "reference_transaction_number": reference,
                "customer_po_number": po["reference_order_number"],
                "receipt_date": now.astimezone(PACIFIC).date().isoformat(),
                "receipt_type": "PO",
                "location": po["location"],
                "received_at": now.isoformat(),
                "lines": received,
            }
            self.world.put(SYSTEM, "receipt", receipt["receipt_id"], receipt)
        return {k: v for k, v in receipt.items() if k not in ("seq", "received_at")}
