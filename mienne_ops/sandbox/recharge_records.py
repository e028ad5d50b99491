"""Formats, errors and list paging of the Recharge fake (see `sandbox/recharge.py`).

Everything here is pure: store-time and money formats, the ``{"errors": ...}`` shapes, and the 2021-11
cursor envelope whose cursor carries the filters and the sort (so only ``limit`` may join it).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import QueryParams
from starlette.responses import JSONResponse

EASTERN = ZoneInfo("America/New_York")
CENT = Decimal("0.01")
DEFAULT_LIMIT, MAX_LIMIT = 50, 250
TIME_FILTERS = ("created_at_min", "created_at_max", "updated_at_min", "updated_at_max")


class RechargeError(Exception):
    """An API error: a dict becomes ``{"errors": {...}}`` (422), a string ``{"errors": "..."}``."""

    def __init__(self, status: int, errors: str | dict[str, list[str]]) -> None:
        super().__init__(str(errors))
        self.status = status
        self.errors = errors


def invalid(field_name: str, message: str) -> RechargeError:
    return RechargeError(422, {field_name: [message]})


def error_response(status: int, errors: Any) -> JSONResponse:
    return JSONResponse({"errors": errors}, status_code=status)


# -- formats --------------------------------------------------------------------------------------
def store_time(moment: datetime) -> str:
    return moment.astimezone(EASTERN).strftime("%Y-%m-%dT%H:%M:%S")


def money(value: Decimal) -> str:
    return str(Decimal(value).quantize(CENT))


def parse_day(value: Any, field_name: str) -> date:
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise invalid(field_name, "must be a date formatted YYYY-MM-DD") from None


def advance(day: date, unit: str, frequency: int) -> date:
    if unit == "day":
        return day + timedelta(days=frequency)
    if unit == "week":
        return day + timedelta(weeks=frequency)
    month = day.month - 1 + frequency
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise ValueError(day)


def stamp(value: str) -> datetime:
    """A filter's timestamp (store time; an offset is converted) as naive store time."""
    moment = datetime.fromisoformat(value)
    return moment.astimezone(EASTERN).replace(tzinfo=None) if moment.tzinfo else moment


def encode_cursor(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(state, dict) or state.get("d") not in ("next", "prev"):
            raise ValueError(cursor)
        return state
    except ValueError:
        raise invalid("cursor", "is invalid") from None


def page(
    key: str,
    records: list[dict[str, Any]],
    params: QueryParams,
    filters: Callable[[dict[str, Any], dict[str, str]], bool],
    allowed: tuple[str, ...],
    sorts: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A 2021-11 envelope; a cursor carries the filters and the sort, so only ``limit`` joins it."""
    limit = list_limit(params)
    if params.get("cursor"):
        state = decode_cursor(params["cursor"])
        chosen, sort_by, anchor, direction = state["f"], state["s"], state["k"], state["d"]
    else:
        chosen = {name: params[name] for name in allowed if params.get(name) not in (None, "")}
        sort_by = params.get("sort_by") or "id-asc"
        if sort_by not in (sorts or {"id-asc": "id"}):
            raise invalid("sort_by", f"must be one of {', '.join(sorts or ['id-asc'])}")
        anchor, direction = None, "next"
    column = (sorts or {"id-asc": "id"})[sort_by]
    descending = sort_by.endswith("-desc")

    def sort_key(record: dict[str, Any]) -> list[Any]:
        value = record.get(column)
        return ["" if column == "id" or value is None else str(value), record["id"]]

    rows = sorted((r for r in records if filters(r, chosen)), key=sort_key, reverse=descending)
    if anchor is None:
        window, before, after = rows[:limit], False, len(rows) > limit
    elif direction == "next":
        rest = [r for r in rows if (sort_key(r) < anchor if descending else sort_key(r) > anchor)]
        window, before, after = rest[:limit], True, len(rest) > limit
    else:
        rest = [r for r in rows if (sort_key(r) > anchor if descending else sort_key(r) < anchor)]
        window, before, after = rest[-limit:], len(rest) > limit, True

    def cursor(record: dict[str, Any], way: str) -> str:
        return encode_cursor({"f": chosen, "s": sort_by, "k": sort_key(record), "d": way})

    return {
        key: window,
        "next_cursor": cursor(window[-1], "next") if window and after else None,
        "previous_cursor": cursor(window[0], "prev") if window and before else None,
    }


def json_object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise RechargeError(400, "The body must be a JSON object")
    return body


def list_limit(params: QueryParams) -> int:
    raw = params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise invalid("limit", "must be an integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def includes(params: QueryParams) -> set[str]:
    """ONE comma-separated ``include``; a repeated ``include`` (or ``includes``) is ignored."""
    values = params.getlist("include")
    if len(values) != 1:
        return set()
    return {part.strip() for part in values[0].split(",") if part.strip()}


def check_status(status: str | None, allowed: tuple[str, ...]) -> None:
    if status and status not in allowed:
        raise invalid("status", f"must be one of {', '.join(allowed)} (lowercase in 2021-11)")


def ids_match(record: dict[str, Any], f: dict[str, str]) -> bool:
    if "ids" not in f:
        return True
    try:
        return record["id"] in {int(part) for part in f["ids"].split(",") if part.strip()}
    except ValueError:
        raise invalid("ids", "must be comma-separated integers") from None


def times_match(
    record: dict[str, Any], f: dict[str, str], columns: tuple[str, ...] = ("created_at", "updated_at")
) -> bool:
    for column in columns:
        for bound, keep in (("min", lambda a, b: a >= b), ("max", lambda a, b: a <= b)):
            name = f"{column}_{bound}"
            if name not in f:
                continue
            if not record.get(column):
                return False
            try:
                limit = stamp(f[name])
            except ValueError:
                raise invalid(name, "must be a date or a time") from None
            if not keep(stamp(record[column]), limit):
                return False
    return True


def charge_matches(charge: dict[str, Any], f: dict[str, str]) -> bool:
    for name in ("address_id", "status", "scheduled_at"):
        if name in f and str(charge.get(name)) != f[name]:
            return False
    if "customer_id" in f and str(charge["customer"]["id"]) != f["customer_id"]:
        return False
    if (
        "external_order_id" in f
        and (charge["external_order_id"] or {}).get("ecommerce") != f["external_order_id"]
    ):
        return False
    items = {str(li["purchase_item_id"]) for li in charge["line_items"]}
    if "purchase_item_id" in f and f["purchase_item_id"] not in items:
        return False
    if "purchase_item_ids" in f and not items & {p.strip() for p in f["purchase_item_ids"].split(",")}:
        return False
    for bound, keep in (("min", lambda a, b: a >= b), ("max", lambda a, b: a <= b)):
        name = f"scheduled_at_{bound}"
        if name in f and not (charge["scheduled_at"] and keep(charge["scheduled_at"], f[name][:10])):
            return False
    return ids_match(charge, f) and times_match(charge, f, ("created_at", "updated_at", "processed_at"))


def refund_amount(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise invalid("amount", 'is required, as a string such as "5.00"')
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise invalid("amount", "is not a number") from None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(CENT):
        raise invalid("amount", "must be positive with at most 2 decimals")
    return amount


def with_totals(charge: dict[str, Any]) -> dict[str, Any]:
    subtotal = sum((Decimal(li["total_price"]) for li in charge["line_items"]), Decimal("0"))
    charge["subtotal_price"] = money(subtotal)
    charge["total_line_items_price"] = money(subtotal)
    shipping = sum((Decimal(line["price"]) for line in charge.get("shipping_lines") or []), Decimal("0"))
    charge["total_price"] = money(subtotal - Decimal(charge.get("total_discounts") or "0") + shipping)
    return charge
