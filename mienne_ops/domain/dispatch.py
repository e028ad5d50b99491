"""Flow B, pure part: a NetSuite sales order becomes the DCL order to send in `POST /batches`.

Input is what flow B reads from NetSuite: the sales order header (`GET salesOrder/{id}`) and its open
item lines from SuiteQL (lower-case keys, every value a string). Output is one DCL `order` object
(dcl.md §4, mapping §10.1). Only what is still left to ship is sent: closed lines and lines already
fully shipped are dropped, a line's quantity is capped by the quantity flow A recorded for the 3PL
(``custcol_dcl_quantity``: 0 for lines fulfilled elsewhere, digital goods and gift cards, which stay
on the sales order because they are sold), and the DCL `line_number` is the NetSuite line id so that
shipments can be mapped back to `orderLine` in flow C. DCL's field limits are checked here so a bad address is
quarantined with a clear reason instead of being rejected inside a batch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mienne_ops.domain.suiteql_rows import SalesOrderLine, UnreadableRow, parse_row
from mienne_ops.errors import InvalidRecordError

SYSTEM = "netsuite"
ORDER_NUMBER_MAX = 25
ITEM_NUMBER_MAX = 25
ADDRESS_LINE_MAX = 40
NORMAL, RUSH = 1, 2
# Item types DCL can pick; anything else on an SO (discount, tax, payment, service...) is not shipped.
SHIPPABLE_ITEM_TYPES = {"InvtPart", "Assembly", "Kit"}
# Countries where DCL requires a state/province and a postal code.
COUNTRIES_NEEDING_STATE = {"US", "USA", "CA", "CAN"}
_NOT_ORDER_NUMBER_CHARS = re.compile(r"[^A-Za-z0-9#-]+")
#: A sales order line as SuiteQL sent it, or already parsed (`sync.dispatch.sales_order_lines`).
SalesOrderRow = Mapping[str, Any] | SalesOrderLine | UnreadableRow


class DispatchConfig(BaseModel):
    """DCL account settings and the NetSuite → DCL lookup tables."""

    model_config = ConfigDict(frozen=True)

    account_number: str
    freight_account: str
    ship_methods: dict[int, tuple[str, str]]  # NetSuite shipMethod id -> (carrier, service)
    default_carrier_service: tuple[str, str] = ("UPS", "GROUND")
    kit_components: dict[str, list[tuple[str, int]]] = Field(default_factory=dict)  # kits DCL explodes
    rush_ship_method_ids: set[int] = Field(default_factory=set)


def dcl_order_number(tran_id: str) -> str:
    """The SO tranId as a DCL order number: `[A-Za-z0-9#-]{1,25}`.

    Disallowed characters collapse to one `-`. Too long is refused rather than truncated, because a
    truncated number could collide with another order's.
    """
    cleaned = _NOT_ORDER_NUMBER_CHARS.sub("-", (tran_id or "").strip()).strip("-")
    if not cleaned or len(cleaned) > ORDER_NUMBER_MAX:
        raise InvalidRecordError(
            "invalid_order_number",
            f"tranId {tran_id!r} cannot become a DCL order number (1-{ORDER_NUMBER_MAX} of A-Z a-z 0-9 # -)",
            system=SYSTEM,
            operation="plan_dcl_order",
        )
    return cleaned


# How an order DCL cancelled (a hold placed after dispatch) is sent again: DCL refuses an order
# number it holds, and whether it takes a *cancelled* order's number again is undocumented (dcl.md §4,
# §13): "suffix" sends ``<number>-R1``, ``-R2``… (works either way), "same_number" reuses it.
RESEND_SUFFIX, RESEND_SAME_NUMBER = "suffix", "same_number"
RESEND_MODES = (RESEND_SUFFIX, RESEND_SAME_NUMBER)
_RESEND_SUFFIX = re.compile(r"^(?P<base>.+)-R(?P<n>[0-9]+)$")


def is_resend_number(order_number: str) -> bool:
    """Whether a DCL order number looks like a resend (``<number>-R<n>``)."""
    return _RESEND_SUFFIX.match(order_number) is not None


def resend_order_number(base: str, previous: str, mode: str) -> str:
    """The DCL order number of the next send of an order DCL cancelled under ``previous``.

    ``base`` is the number from the sales order's tranId (`dcl_order_number`); ``previous`` the number
    DCL cancelled (``base`` or an earlier resend ``base-Rn``). Too long for DCL is refused, never cut.
    """
    if mode not in RESEND_MODES:
        raise ValueError(f"dcl_resend_cancelled_as must be one of {', '.join(RESEND_MODES)}, not {mode!r}")
    if mode == RESEND_SAME_NUMBER:
        return previous
    match = _RESEND_SUFFIX.match(previous)
    count = int(match["n"]) if match and match["base"] == base else 0
    number = f"{base}-R{count + 1}"
    if len(number) > ORDER_NUMBER_MAX:
        raise InvalidRecordError(
            "invalid_order_number",
            f"DCL order {previous} cannot be sent again as {number} (more than {ORDER_NUMBER_MAX} "
            "characters); set dcl_resend_cancelled_as to same_number if DCL takes a cancelled number again",
            system="dcl",
            operation="resend",
            record=previous,
        )
    return number


def plan_dcl_order(header: dict[str, Any], lines: Sequence[SalesOrderRow], config: DispatchConfig) -> dict:
    """Map an SO header and its SuiteQL item lines to a DCL `order` for `POST /batches`."""
    order_number = dcl_order_number(str(header.get("tranId") or ""))
    record = f"SO {order_number}"
    ship_method_id = _ref_int(header.get("shipMethod"))
    carrier, service = (
        config.ship_methods.get(ship_method_id, config.default_carrier_service)
        if ship_method_id is not None
        else config.default_carrier_service
    )
    dcl_lines = [line for row in lines if (line := _dcl_line(row, config, record)) is not None]
    if not dcl_lines:
        raise _invalid(record, "nothing_to_ship", "no open line has quantity left to ship")
    order = {
        "order_number": order_number,
        "account_number": config.account_number,
        "ordered_date": _date(header.get("tranDate")),
        "po_number": (header.get("otherRefNum") or "")[:25],
        "customer_number": str(_ref_id(header.get("entity")) or "")[:25],
        "freight_account": config.freight_account,
        "shipping_carrier": carrier,
        "shipping_service": service,
        "order_status": RUSH if ship_method_id in config.rush_ship_method_ids else NORMAL,
        "shipping_address": dcl_address(header, record),
        "lines": dcl_lines,
    }
    return {key: value for key, value in order.items() if value not in (None, "")}


def _dcl_line(row: SalesOrderRow, config: DispatchConfig, record: str) -> dict | None:
    """One DCL line for a SuiteQL row, or None when there is nothing to ship on it."""
    line = parse_row(SalesOrderLine, row)
    if isinstance(line, UnreadableRow):
        if not _may_ship(line.raw.get("isclosed"), line.raw.get("kitmemberof"), line.raw.get("itemtype")):
            return None  # a line never shipped is not read further, readable or not
        raise _invalid(record, line.reason, line.problem)
    if not _may_ship(line.isclosed, line.kitmemberof, line.itemtype):
        return None
    # A NULL column is left out of a SuiteQL row (netsuite.md §10.1): nothing ordered or shipped yet.
    remaining = line.qty - line.qty_shipped
    if line.dcl_qty is not None:
        # Sales orders written before the column existed have it empty: then the whole line ships.
        remaining = min(remaining, line.dcl_qty)
    if remaining <= 0:
        return None
    sku = line.sku.strip()
    if not sku or len(sku) > ITEM_NUMBER_MAX:
        raise _invalid(record, "invalid_item", f"line {line.line} has SKU {sku!r} unusable at DCL")
    dcl_line: dict[str, Any] = {"line_number": line.line, "item_number": sku, "quantity": remaining}
    if sku in config.kit_components:
        # A bundle line's quantity is per kit, like NetSuite's itemMember: DCL multiplies by the
        # line quantity when it picks (the sandbox default in sandbox/dcl.py).
        dcl_line["bundle_lines"] = [
            {"item_number": component, "quantity": per_kit}
            for component, per_kit in config.kit_components[sku]
        ]
    return dcl_line


def _may_ship(closed: object, kit_member_of: object, item_type: object) -> bool:
    """Closed lines, a kit's hidden member lines (its kit line carries them: as its SKU or as
    bundle_lines) and items DCL cannot pick are never sent."""
    if closed is True or str(closed or "F").strip().upper() == "T":
        return False
    if kit_member_of not in (None, ""):
        return False
    return not item_type or item_type in SHIPPABLE_ITEM_TYPES


def dcl_address(header: dict[str, Any], record: str) -> dict:
    """A NetSuite header's shipping address as DCL takes it (orders and RMAs), checked by DCL's rules."""
    address = header.get("shippingAddress") or {}
    country = _ref_id(address.get("country")) or ""
    addressee = (address.get("addressee") or "").strip()
    attention = (address.get("attention") or "").strip()
    result = {
        # Flow A writes a company as the addressee with the person as attention (netsuite.md §8).
        "attention": attention or addressee,
        "address1": (address.get("addr1") or "").strip(),
        "address2": (address.get("addr2") or "").strip(),
        "city": (address.get("city") or "").strip(),
        "state_province": (address.get("state") or "").strip(),
        "postal_code": (address.get("zip") or "").strip(),
        "country_code": str(country).strip().upper(),
        "phone": (address.get("addrPhone") or "").strip(),
        "email": (header.get("email") or "").strip(),
    }
    if attention and addressee:
        result["company"] = addressee
    _check_address(result, record)
    return result


def _check_address(address: dict[str, str], record: str) -> None:
    """DCL's address rules (dcl.md §4); messages name fields, never their contents."""
    problems = [f for f in ("address1", "city", "country_code") if not address[f]]
    problems += [
        f"{f} longer than {ADDRESS_LINE_MAX}"
        for f in ("company", "attention", "address1", "address2")
        if len(address.get(f, "")) > ADDRESS_LINE_MAX
    ]
    if address["country_code"] in COUNTRIES_NEEDING_STATE:
        problems += [f for f in ("state_province", "postal_code") if not address[f]]
    if problems:
        raise _invalid(record, "invalid_address", f"shipping address: {', '.join(problems)}")


# --- helpers --------------------------------------------------------------------------------------


def _ref_id(value: Any) -> str | None:
    """A NetSuite reference `{"id": "6", "refName": ...}` or a bare value -> its id."""
    if isinstance(value, dict):
        value = value.get("id")
    return None if value in (None, "") else str(value)


def _ref_int(value: Any) -> int | None:
    ref = _ref_id(value)
    return int(ref) if ref is not None and ref.lstrip("-").isdigit() else None


def _date(value: Any) -> str | None:
    return str(value)[:10] if value else None


def _invalid(record: str, reason: str, message: str) -> InvalidRecordError:
    return InvalidRecordError(reason, message, system=SYSTEM, operation="plan_dcl_order", record=record)
