"""DCL's rules as the fake enforces them: limits, codes, identifiers, addresses, Pacific time, paging.

Shared by the DCL fake's order and inbound modules (see `dcl.py` for the documented behaviour).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.responses import JSONResponse

PACIFIC = ZoneInfo("America/Los_Angeles")
SYSTEM = "dcl"
API_PREFIXES = ("/api/v1", "/api/sandbox")
RMA_PREFIXES = ("/api/v1", "/api/v2", "/api/sandbox")  # dcl.md §2: RMAs are also served under v2
DEFAULT_REQUESTS_PER_SECOND = 5.0
DEFAULT_LOCATION = "FR"
MAX_BATCH_ORDERS = 1000
MAX_PAGE = {"orders": 100, "items": 500, "po_receipts": 100, "rmas": 50}
IDENTIFIER = re.compile(r"^[A-Za-z0-9#-]+$")
REFERENCE = re.compile(r"^[A-Za-z0-9-]+$")
US_POSTAL = re.compile(r"^\d{5}(-\d{4})?$")
CA_POSTAL = re.compile(r"^[A-Za-z]\d[A-Za-z] ?\d[A-Za-z]\d$")

STAGES = {
    2: "Order Cancelled",
    4: "AV Required",
    5: "DPS Required",
    6: "Ship Method Review",
    10: "Order Received",
    20: "Pick List Printed",
    30: "Partially Verified",
    40: "Fully Verified",
    50: "Partially Shipped",
    52: "Partially Shipped / Partially Verified",
    55: "Partially Shipped / Fully Verified",
    60: "Fully Shipped",
    62: "Closed Short",
    70: "Sub Order Shipped",
}
CANCELLABLE_BELOW_STAGE = 20
ORDER_STRING_LIMITS = {
    "order_number": 25,
    "account_number": 10,
    "freight_account": 10,
    "shipping_carrier": 30,
    "shipping_service": 30,
}
OPTIONAL_STRING_LIMITS = {"customer_number": 25, "consignee_number": 25, "acknowledgement_email": 40}
AMOUNT_FIELDS = (
    "order_subtotal",
    "shipping_handling",
    "sales_tax",
    "international_handling",
    "total_due",
    "amount_paid",
    "net_due_currency",
)
PASSTHROUGH_FIELDS = ("international_code", "system_id", "gift_message", "packing_list_comments")
LINE_STRING_LIMITS = {"description": 100, "comments": 100, **{f"custom_field{i}": 20 for i in range(1, 6)}}
# RMAs (dcl.md §9). Account-configured codes and label services: sandbox defaults (our design choice).
RMA_STRING_LIMITS = {
    "original_order_number": 25,
    "customer_number": 25,
    "shipping_carrier": 30,
    "shipping_service": 30,
}
RMA_LINE_STRING_LIMITS = {"description": 100, "serial_number": 25, "ship_item_number": 35}
DEFAULT_RMA_TYPES = ("T01",)
DEFAULT_DISPOSITIONS = (1, 2, 3, 5, 10, 18)
DEFAULT_LABEL_SERVICES: dict[str, tuple[tuple[str, str], ...]] = {
    "US": (("USPS", "GROUND ADVANTAGE"), ("UPS", "GROUND")),
    "CA": (("CANADA POST", "EXPEDITED PARCEL"), ("UPS", "STANDARD")),
}
COUNTRY_ALIASES = {"USA": "US", "CAN": "CA"}
ADDRESS_LIMITS = {"company": 40, "attention": 40, "address1": 40, "address2": 40}


class DclError(Exception):
    """A DCL business or request error, rendered as ``{error_code, error_message}``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class DroppedResponse(Exception):
    """The work was committed but the caller sees a gateway timeout (reconciliation drills)."""


# -- time helpers ---------------------------------------------------------------------------------


def to_pacific_naive(moment: datetime) -> str:
    return moment.astimezone(PACIFIC).replace(tzinfo=None).isoformat(timespec="seconds")


def parse_instant(value: str, field: str, *, end_of_day: bool = False) -> datetime:
    """A filter value as an aware UTC datetime: dates and naive datetimes are US Pacific local time."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day + timedelta(days=1) if end_of_day else day, dtime(), PACIFIC)
            return moment.astimezone(UTC)
        parsed = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError as error:
        raise DclError(400, 13, f"Invalid characters in {field}") from error
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=PACIFIC)
    return parsed.astimezone(UTC)


def day_end(value: str, field: str) -> datetime:
    """``*_to`` filters use the date part only and include the whole day."""
    return parse_instant(value.strip()[:10], field, end_of_day=True)


# -- validation -----------------------------------------------------------------------------------


def require_text(source: dict[str, Any], field: str, limit: int, prefix: str = "") -> str:
    value = source.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DclError(400, 10, f"Missing required field: {prefix}{field}")
    text = str(value).strip()
    if len(text) > limit:
        raise DclError(400, 11, f"Field too long: {prefix}{field}")
    return text


def optional_text(source: dict[str, Any], field: str, limit: int, prefix: str = "") -> str:
    value = source.get(field)
    if value is None:
        return ""
    text = str(value).strip()
    if len(text) > limit:
        raise DclError(400, 11, f"Field too long: {prefix}{field}")
    return text


def positive_int(source: dict[str, Any], field: str, prefix: str) -> int:
    value = source.get(field)
    if value is None:
        raise DclError(400, 10, f"Missing required field: {prefix}{field}")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise DclError(400, 13, f"Invalid characters in {prefix}{field}")
    return value


def validate_address(raw: Any, field: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise DclError(400, 10, f"Missing required field: {field}")
    prefix = f"{field}."
    address = {name: optional_text(raw, name, limit, prefix) for name, limit in ADDRESS_LIMITS.items()}
    if not address["company"] and not address["attention"]:
        raise DclError(400, 10, f"Missing required field: {prefix}attention")
    if not address["address1"]:
        raise DclError(400, 10, f"Missing required field: {prefix}address1")
    address["city"] = require_text(raw, "city", 40, prefix)
    country = str(raw.get("country_code") or raw.get("country") or "").strip().upper()
    if not country:
        raise DclError(400, 10, f"Missing required field: {prefix}country_code")
    if not (2 <= len(country) <= 3 and country.isalpha()):
        raise DclError(400, 14, f"Invalid address: {prefix}country_code")
    address["country"] = country
    address["state_province"] = str(raw.get("state_province") or "").strip()
    address["postal_code"] = str(raw.get("postal_code") or "").strip()
    address["email"] = str(raw.get("email") or "").strip()
    address["phone"] = str(raw.get("phone") or "").strip()
    check_north_american_address(address, prefix)
    return address


def check_north_american_address(address: dict[str, Any], prefix: str) -> None:
    country = address["country"]
    if country not in ("US", "USA", "CA", "CAN"):
        return
    for required in ("state_province", "postal_code"):
        if not address[required]:
            raise DclError(400, 14, f"Invalid address: {prefix}{required} is required for US/CA")
    pattern = US_POSTAL if country in ("US", "USA") else CA_POSTAL
    if not pattern.match(address["postal_code"]):
        raise DclError(400, 14, f"Invalid address: {prefix}postal_code")


def error_response(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "error_message": message}, status_code=status)


def csv_list(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def paging(params, resource: str) -> tuple[int, int]:
    limit = MAX_PAGE[resource]
    try:
        page = int(params.get("page", 1))
        page_size = int(params.get("page_size", limit))
    except ValueError as error:
        raise DclError(400, 13, "Invalid characters in page") from error
    if page_size > limit:
        raise DclError(400, 41, f"page_size exceeds maximum {limit}")
    if page < 1 or page_size < 1:
        raise DclError(400, 13, "Invalid characters in page")
    return page, page_size
