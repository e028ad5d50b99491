"""Validation of the DCL fake's control-plane bodies: bad input is a 400 with a message, never a 500.

The control plane is the sandbox's own (not DCL's API), so its errors use DCL's body shape with code
13 and a message that names the field and what it must be.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from mienne_ops.sandbox.dcl_rules import DclError


def bad(message: str) -> DclError:
    return DclError(400, 13, message)


def body_object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise bad("the body must be a JSON object")
    return body


def whole(value: Any, field: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise bad(f"{field} must be an integer of at least {minimum}")
    return value


def number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise bad(f"{field} must be a number of at least 0")
    return float(value)


def flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise bad(f"{field} must be true or false")
    return value


def text(value: Any, field: str, *, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise bad(f"{field} must be a non-empty string")
    return value.strip()


def day(value: Any, field: str) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise bad(f"{field} must be a date YYYY-MM-DD") from None


def objects(value: Any, field: str) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise bad(f"{field} must be a list of objects")
    return value


def ship_lines(value: Any) -> list[dict[str, int]] | None:
    """``[{"line_number", "quantity"}]``: both positive integers, nothing else."""
    entries = objects(value, "lines")
    if entries is None:
        return None
    lines = []
    for index, entry in enumerate(entries, start=1):
        unknown = sorted(set(entry) - {"line_number", "quantity"})
        if unknown or "line_number" not in entry or "quantity" not in entry:
            got = ", ".join(sorted(entry)) or "nothing"
            raise bad(f"lines[{index}] must be {{line_number, quantity}} (got {got})")
        lines.append(
            {
                "line_number": whole(entry["line_number"], f"lines[{index}].line_number"),
                "quantity": whole(entry["quantity"], f"lines[{index}].quantity"),
            }
        )
    return lines


def receipt_lines(value: Any, *, by_line_only: bool) -> list[dict[str, Any]] | None:
    """Receipt lines: ``quantity`` and ``line_number`` (or, at the dock, an ``item_number``)."""
    entries = objects(value, "lines")
    if entries is None:
        return None
    lines = []
    for index, entry in enumerate(entries, start=1):
        line: dict[str, Any] = {"quantity": whole(entry.get("quantity"), f"lines[{index}].quantity")}
        if "line_number" in entry:
            line["line_number"] = whole(entry["line_number"], f"lines[{index}].line_number")
        if "item_number" in entry and not by_line_only:
            line["item_number"] = text(entry["item_number"], f"lines[{index}].item_number", required=True)
        if "line_number" not in line and "item_number" not in line:
            needed = "line_number" if by_line_only else "line_number or item_number"
            raise bad(f"lines[{index}] needs {needed}")
        lines.append(line)
    return lines


def tracking_numbers(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise bad("tracking_numbers must be a non-empty list of strings")
    return [v.strip() for v in value]


def inventory_rows(value: Any) -> list[dict[str, Any]]:
    entries = objects(value, "items") or []
    rows = []
    for index, entry in enumerate(entries, start=1):
        rows.append(
            {
                "item_number": text(entry.get("item_number"), f"items[{index}].item_number", required=True),
                "inventory_type": text(
                    entry.get("inventory_type"), f"items[{index}].inventory_type", required=True
                ),
                "on_hand": whole(entry.get("on_hand"), f"items[{index}].on_hand", minimum=0),
                "on_hold": whole(entry.get("on_hold", 0), f"items[{index}].on_hold", minimum=0),
            }
        )
    return rows


def instant(value: Any, field: str) -> datetime | None:
    """A control-plane time: ISO-8601; naive means UTC (the control plane's choice, not DCL's)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad(f"{field} must be an ISO-8601 datetime")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise bad(f"{field} must be an ISO-8601 datetime") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


CONDITIONS = ("good", "damaged")


def rma_receipt_lines(value: Any) -> list[dict[str, Any]] | None:
    """``[{"item_number", "quantity", "condition"?: "good"|"damaged"}]`` (condition defaults to good)."""
    entries = objects(value, "lines")
    if entries is None:
        return None
    if not entries:
        raise bad("lines must not be empty (omit it to receive everything still expected)")
    lines = []
    for index, entry in enumerate(entries, start=1):
        unknown = sorted(set(entry) - {"item_number", "quantity", "condition"})
        if unknown:
            raise bad(f"lines[{index}] has unknown field(s) {', '.join(unknown)}")
        condition = entry.get("condition", "good")
        if condition not in CONDITIONS:
            raise bad(f"lines[{index}].condition must be one of {', '.join(CONDITIONS)}")
        lines.append(
            {
                "item_number": text(entry.get("item_number"), f"lines[{index}].item_number", required=True),
                "quantity": whole(entry.get("quantity"), f"lines[{index}].quantity"),
                "condition": condition,
            }
        )
    return lines
