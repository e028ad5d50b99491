"""Flow C, pure part: a DCL shipment becomes a NetSuite item fulfillment and a Shopify fulfillment.

DCL reports shipments as packages of shipped items that carry only item numbers, and kits that DCL
picks as components come back as their components. `shipped_by_line` allocates those items back to
the order's lines (the DCL `line_number` is the NetSuite SO line id) and rolls components up into
whole kits, never beyond what a line still has open. From that per-line quantity come the NetSuite
`!transform/itemFulfillment` body (keyed by a stable per-shipment externalId, so a replay cannot
double-fulfil), the Shopify tracking info and the split over Shopify fulfillment-order lines: one
fulfillment per assigned location, and the units that must wait for a held or scheduled one.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict

from mienne_ops.domain.dcl_records import DclOrder, Package, Shipment, parse_dcl_order, parse_shipment
from mienne_ops.domain.shopify import gid_to_int
from mienne_ops.errors import InvalidRecordError

SYSTEM = "dcl"
SHIPPED = "C"
EXTERNAL_ID_PREFIX = "dcl-shipment-"
EXTERNAL_ID_MAX = 64  # comfortably inside NetSuite's externalId limit
_NOT_KEY_CHARS = re.compile(r"[^A-Za-z0-9#-]+")
FULFILLABLE_FO_STATUSES = {"open", "in_progress"}
# Fulfillment orders that will take units later, and the exceptions-queue reason while they wait.
WAITING_FO_REASONS = {"on_hold": "fulfillment_order_on_hold", "scheduled": "fulfillment_order_scheduled"}

# DCL carrier code (upper-case, spaces/underscores removed) -> Shopify tracking company name.
_SHOPIFY_CARRIERS = {
    "UPS": "UPS",
    "FEDEX": "FedEx",
    "FEDERALEXPRESS": "FedEx",
    "USPS": "USPS",
    "CANADAPOST": "Canada Post",
    "CPC": "Canada Post",
    "DHL": "DHL Express",
    "DHLEXPRESS": "DHL Express",
    "DHLECOMMERCE": "DHL eCommerce",
    "ONTRAC": "OnTrac",
}
_TRACKING_URLS = {
    "UPS": "https://www.ups.com/track?tracknum={number}",
    "FedEx": "https://www.fedex.com/fedextrack/?trknbr={number}",
    "USPS": "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}",
    "Canada Post": "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor={number}",
    "DHL Express": "https://www.dhl.com/en/express/tracking.html?AWB={number}",
}


class Tracking(BaseModel):
    model_config = ConfigDict(frozen=True)

    company: str
    numbers: list[str]
    urls: list[str]


# --- keys -----------------------------------------------------------------------------------------


def shipment_key(order_number: str, shipment: dict[str, Any] | Shipment) -> str:
    """Stable id of one DCL shipment: order number + ship date + first carton id.

    Only the date part of `ship_date` is used, so the key is the same with or without
    `extended_date=true`. Without a carton id the first tracking number stands in. Raw and canonical
    shipments (`domain.dcl_records`) give the same key.
    """
    shipment = parse_shipment(shipment)
    first = shipment.packages[0] if shipment.packages else Package()
    carton = first.carton_id or first.tracking_number or "nocarton"
    ship_date = (shipment.ship_date or "nodate")[:10]
    return _NOT_KEY_CHARS.sub("-", f"{order_number}-{ship_date}-{carton}").strip("-")


def item_fulfillment_external_id(order_number: str, shipment: dict[str, Any] | Shipment) -> str:
    external_id = EXTERNAL_ID_PREFIX + shipment_key(order_number, shipment)
    if len(external_id) <= EXTERNAL_ID_MAX:
        return external_id
    # Still stable and unique: keep a readable head and a hash of the whole key.
    digest = hashlib.sha256(external_id.encode()).hexdigest()[:16]
    return f"{external_id[: EXTERNAL_ID_MAX - 17]}-{digest}"


# --- allocation -----------------------------------------------------------------------------------


def shipped_by_line(
    dcl_order: dict[str, Any] | DclOrder,
    shipment: dict[str, Any] | Shipment,
    kit_components: dict[str, list[tuple[str, int]]],
    already_shipped: dict[int, int] | None = None,
) -> dict[int, int]:
    """Quantity shipped in this shipment per DCL/SO line number.

    Items are matched by SKU in line order, lines that ship their own SKU first (a kit shipped as
    itself counts too); the remaining components then roll up into whole kits (kits shipped = min
    over components of floor(component qty / per-kit qty)). Anything left over is an error.
    """
    order = parse_dcl_order(dcl_order)
    counts = _shipped_item_counts(parse_shipment(shipment))
    remaining = _remaining_by_line(order, already_shipped or {})
    lines = [(line.line_number, line.item_number) for line in order.lines]
    result: Counter[int] = Counter()

    for line_number, sku in lines:
        take = min(counts[sku], remaining[line_number])
        if take > 0:
            _record(result, remaining, counts, line_number, take, {sku: 1})

    for line_number, sku in lines:
        components = dict(kit_components.get(sku) or [])
        if not components or remaining[line_number] <= 0:
            continue
        kits = min((counts[c] // per_kit for c, per_kit in components.items() if per_kit > 0), default=0)
        take = min(kits, remaining[line_number])
        if take > 0:
            _record(result, remaining, counts, line_number, take, components)

    leftovers = sorted(sku for sku, qty in counts.items() if qty > 0)
    if leftovers:
        raise InvalidRecordError(
            "unexpected_item",
            "shipped items match no open order line (or only part of a kit): "
            + ", ".join(f"{sku} x{counts[sku]}" for sku in leftovers),
            system=SYSTEM,
            operation="shipped_by_line",
            record=f"DCL order {order.order_number}",
        )
    return dict(result)


def _record(
    result: Counter[int],
    remaining: dict[int, int],
    counts: Counter[str],
    line_number: int,
    quantity: int,
    items_per_unit: dict[str, int],
) -> None:
    result[line_number] += quantity
    remaining[line_number] -= quantity
    for sku, per_unit in items_per_unit.items():
        counts[sku] -= per_unit * quantity


def _shipped_item_counts(shipment: Shipment) -> Counter[str]:
    counts: Counter[str] = Counter()
    for package in shipment.packages:
        for item in package.shipped_items:
            counts[item.item_number] += item.quantity
    return counts


def _remaining_by_line(order: DclOrder, already_shipped: dict[int, int]) -> dict[int, int]:
    return {
        line.line_number: line.quantity - already_shipped.get(line.line_number, 0) for line in order.lines
    }


# --- NetSuite -------------------------------------------------------------------------------------


#: Item fulfillment package sublists and the suffix of their fields (SuiteTalk schema:
#: ``packageUps.packageTrackingNumberUps``, ``packageFedEx.packageTrackingNumberFedEx``).
PACKAGE_SUBLISTS = {"package": "", "packageUps": "Ups", "packageFedEx": "FedEx"}
#: Fields each sublist has (FedEx packages have no description field).
_PACKAGE_FIELDS = {
    "package": ("packageTrackingNumber", "packageDescr", "packageWeight"),
    "packageUps": ("packageTrackingNumber", "packageDescr", "packageWeight"),
    "packageFedEx": ("packageTrackingNumber", "packageWeight"),
}


def plan_item_fulfillment(
    order_number: str,
    shipment: dict[str, Any] | Shipment,
    qty_by_line: dict[int, int],
    location_id: int,
    order_lines: Iterable[int] = (),
    package_sublist: str = "package",
) -> dict:
    """Body for `POST salesOrder/{id}/!transform/itemFulfillment` (netsuite.md §9.1).

    ``order_lines`` are all the sales order's item lines: the ones this shipment does not cover are
    sent with ``itemReceive: false``, because accounts that "mark all" lines by default would
    otherwise fulfil them too. ``package_sublist`` is the one the order's ship method has: ship
    methods with a UPS / FedEx integration keep tracking in ``packageUps`` / ``packageFedEx``.
    """
    shipment = parse_shipment(shipment)
    if package_sublist not in PACKAGE_SUBLISTS:
        raise InvalidRecordError(
            "bad_package_sublist",
            f"unknown package sublist {package_sublist!r} (rules: netsuite_package_sublists)",
            system=SYSTEM,
            operation="plan_item_fulfillment",
            record=f"DCL order {order_number}",
        )
    items: list[dict[str, Any]] = [
        {"orderLine": int(line), "itemReceive": True, "quantity": qty, "location": {"id": str(location_id)}}
        for line, qty in sorted(qty_by_line.items())
        if qty > 0
    ]
    if not items:
        raise InvalidRecordError(
            "nothing_shipped",
            "shipment has no quantity for any order line",
            system=SYSTEM,
            operation="plan_item_fulfillment",
            record=f"DCL order {order_number}",
        )
    shipped_lines = {item["orderLine"] for item in items}
    items += [
        {"orderLine": int(line), "itemReceive": False}
        for line in sorted({int(line) for line in order_lines} - shipped_lines)
    ]
    body = {
        "externalId": item_fulfillment_external_id(order_number, shipment),
        "shipStatus": {"id": SHIPPED},
        "item": {"items": items},
        package_sublist: {"items": _packages(shipment, package_sublist)},
    }
    if shipment.ship_date:
        body["tranDate"] = shipment.ship_date[:10]
    return body


def _packages(shipment: Shipment, sublist: str = "package") -> list[dict]:
    description = " ".join(
        part.strip() for part in (shipment.shipping_carrier, shipment.shipping_service) if part
    )
    packages = []
    for package in shipment.packages:
        entry: dict[str, Any] = {"packageTrackingNumber": package.tracking_number or ""}
        if description:
            entry["packageDescr"] = description
        if package.weight is not None and package.weight > 0:
            entry["packageWeight"] = float(package.weight)
        suffix, fields = PACKAGE_SUBLISTS[sublist], _PACKAGE_FIELDS[sublist]
        packages.append({f"{name}{suffix}": value for name, value in entry.items() if name in fields})
    return packages


# --- Shopify --------------------------------------------------------------------------------------


def shopify_carrier(carrier: str | None) -> str:
    """DCL carrier code -> the company name Shopify recognises (unknown carriers pass through)."""
    code = re.sub(r"[\s_\-.]+", "", (carrier or "").upper())
    return _SHOPIFY_CARRIERS.get(code, (carrier or "Other").strip() or "Other")


def tracking_info(shipment: dict[str, Any] | Shipment) -> Tracking:
    shipment = parse_shipment(shipment)
    company = shopify_carrier(shipment.shipping_carrier)
    numbers: list[str] = []
    for package in shipment.packages:
        number = (package.tracking_number or "").strip()
        if number and number not in numbers:
            numbers.append(number)
    template = _TRACKING_URLS.get(company)
    urls = [template.format(number=n) for n in numbers] if template else []
    return Tracking(company=company, numbers=numbers, urls=urls)


def qty_by_shopify_line(qty_by_line: dict[int, int], shopify_line_ids: dict[int, str]) -> dict[str, int]:
    """Per-SO-line quantities re-keyed by Shopify line item id (SO `custcol_shopify_line_id`)."""
    result: Counter[str] = Counter()
    for line, qty in qty_by_line.items():
        shopify_id = shopify_line_ids.get(int(line))
        if shopify_id and qty > 0:
            result[_line_key(shopify_id)] += qty
    return dict(result)


class LocationFulfillment(BaseModel):
    """One `fulfillmentCreate`: lines of fulfillment orders that share an assigned location."""

    model_config = ConfigDict(frozen=True)

    location_id: str | None
    lines_by_fulfillment_order: list[tuple[str, list[tuple[str, int]]]]


class ShopifyFulfillmentPlan(BaseModel):
    """Where a shipment's units go in Shopify, and what cannot go there yet.

    ``fulfillments`` holds one entry per assigned location (Shopify takes the lines of one location
    per call). ``waiting`` counts units whose only remaining fulfillment-order lines are ON_HOLD or
    SCHEDULED (they go through once released or opened); ``unplaced`` counts units no fulfillment
    order has left at all (fulfilled by someone else, cancelled, incomplete, or never routed).
    """

    model_config = ConfigDict(frozen=True)

    fulfillments: list[LocationFulfillment]
    waiting: dict[str, int]
    unplaced: int

    @property
    def waiting_reason(self) -> str | None:
        """The exceptions-queue reason for waiting units (a hold outranks a schedule)."""
        for status, reason in WAITING_FO_REASONS.items():
            if self.waiting.get(status):
                return reason
        return None


def plan_shopify_fulfillment(
    fulfillment_orders: list[dict[str, Any]], qty_by_shopify_line: dict[str, int]
) -> ShopifyFulfillmentPlan:
    """Split shipped quantities over fulfillable fulfillment-order lines, grouped by location.

    Only OPEN / IN_PROGRESS fulfillment orders take units, capped by each FO line's remaining
    quantity. FO line ids differ from order line ids, so matching goes through `line_item_id` (a GID
    or a number; both are accepted). Units left over are counted as waiting when an ON_HOLD or
    SCHEDULED fulfillment order still has them, as unplaced otherwise.
    """
    wanted = Counter({_line_key(k): int(v) for k, v in qty_by_shopify_line.items() if int(v) > 0})
    by_location: dict[str | None, list[tuple[str, list[tuple[str, int]]]]] = {}
    for fo in fulfillment_orders:
        if _status(fo) not in FULFILLABLE_FO_STATUSES:
            continue
        fo_lines = _take(fo, wanted)
        if fo_lines:
            by_location.setdefault(fo.get("assigned_location_id"), []).append((str(fo["id"]), fo_lines))
    waiting: Counter[str] = Counter()
    for fo in fulfillment_orders:
        if _status(fo) in WAITING_FO_REASONS:
            waiting[_status(fo)] += sum(quantity for _, quantity in _take(fo, wanted))
    return ShopifyFulfillmentPlan(
        fulfillments=[
            LocationFulfillment(location_id=location, lines_by_fulfillment_order=groups)
            for location, groups in by_location.items()
        ],
        waiting={status: units for status, units in waiting.items() if units},
        unplaced=sum(wanted.values()),
    )


def _status(fo: dict[str, Any]) -> str:
    return str(fo.get("status") or "").lower()


def _take(fo: dict[str, Any], wanted: Counter[str]) -> list[tuple[str, int]]:
    """Take what ``fo``'s lines have left of the wanted units (``wanted`` is decremented)."""
    taken = []
    for fo_line in fo.get("line_items") or []:
        key = _line_key(fo_line["line_item_id"])
        take = min(wanted[key], int(fo_line.get("remaining_quantity") or 0))
        if take > 0:
            taken.append((str(fo_line["id"]), take))
            wanted[key] -= take
    return taken


def fulfillments_with_tracking(
    fulfillments: list[dict[str, Any]], numbers: list[str]
) -> list[dict[str, Any]]:
    """Shopify fulfillments that already carry one of ``numbers`` (a shipment sent before)."""
    wanted = set(numbers)
    return [f for f in fulfillments if wanted & set(f.get("tracking_numbers") or [])]


def units_not_on_shopify(
    qty_by_shopify_line: dict[str, int], fulfillments: list[dict[str, Any]]
) -> dict[str, int]:
    """The shipment's units per Shopify line minus those already in ``fulfillments``.

    With the shipment's own fulfillments (`fulfillments_with_tracking`), a re-run after a partial
    success (one location fulfilled, the next call lost) sends only the rest, never a second copy.
    """
    left = Counter({_line_key(k): int(v) for k, v in qty_by_shopify_line.items() if int(v) > 0})
    for fulfillment in fulfillments:
        for line in fulfillment.get("line_items") or []:
            key = _line_key(line["line_item_id"])
            left[key] -= min(left[key], int(line.get("quantity") or 0))
    return {key: units for key, units in left.items() if units > 0}


def _line_key(line_item_id: str | int) -> str:
    return str(gid_to_int(line_item_id))


# --- billing --------------------------------------------------------------------------------------

_BILLABLE_STATUSES = {
    "on_full_shipment": {"F"},  # Pending Billing: everything shipped
    "on_each_shipment": {"D", "E", "F"},  # partially fulfilled or pending billing
    "never": set(),
}


def should_bill(so_status: str, billing: str) -> bool:
    """Whether to transform the SO into a cash sale now.

    `so_status` may be the letter (`F`), the compound key (`SalesOrd:F`) or the display text
    ("Pending Billing").
    """
    if billing not in _BILLABLE_STATUSES:
        raise ValueError(f"unknown billing mode {billing!r}; expected one of {sorted(_BILLABLE_STATUSES)}")
    return _status_letter(so_status) in _BILLABLE_STATUSES[billing]


_STATUS_LETTERS = {
    "pending approval": "A",
    "pending fulfillment": "B",
    "cancelled": "C",
    "partially fulfilled": "D",
    "pending billing/partially fulfilled": "E",
    "pending billing": "F",
    "billed": "G",
    "closed": "H",
}


def _status_letter(status: str) -> str:
    text = (status or "").strip()
    if ":" in text:
        text = text.rsplit(":", 1)[1]
    if len(text) == 1:
        return text.upper()
    return _STATUS_LETTERS.get(text.lower(), "")
