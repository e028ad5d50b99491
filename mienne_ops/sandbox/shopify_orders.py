"""Shopify order documents in the fake: REST-shape storage and their GraphQL presentation.

Orders are stored exactly as Shopify's REST API and webhooks show them (money strings and `*_set`
bags, 64-bit ids, `admin_graphql_api_id`, shop-offset timestamps, `tags` as a comma string), with
their fulfillment orders and transactions under underscore keys that never leave the fake in a
webhook. The GraphQL resolvers present the same document in GraphQL shape (GIDs, upper-case enums,
`MoneyBag`s). Pure functions: the sandbox module owns ids, time and persistence.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from mienne_ops.sandbox.catalog import Catalog
from mienne_ops.sandbox.shopify_graphql import compare, gid, parse_time

#: The sandbox shop's time zone (timestamps carry its offset, as Shopify's do).
SHOP_TZ = timezone(timedelta(hours=-5))
INTERNAL_KEYS = ("_fulfillment_orders", "_transactions", "_risk", "_return_status")

# Shopify's own assessment of an ordinary online order: low risk, accept (`Order.risk`).
DEFAULT_RISK = {"recommendation": "ACCEPT", "assessments": [{"riskLevel": "LOW", "facts": []}]}


def order_risk(given: dict[str, Any] | None) -> dict[str, Any]:
    """An injected order's risk (``{"recommendation", "assessments": [{"riskLevel", "facts"}]}`` or
    the shorthand ``{"level": "HIGH"}``); Shopify's default when none is given."""
    if not given:
        return DEFAULT_RISK
    if "level" in given:
        level = str(given["level"]).upper()
        recommendation = {"HIGH": "CANCEL", "MEDIUM": "INVESTIGATE"}.get(level, "ACCEPT")
        return {"recommendation": recommendation, "assessments": [{"riskLevel": level, "facts": []}]}
    return {
        "recommendation": str(given.get("recommendation") or "NONE").upper(),
        "assessments": [
            {"riskLevel": str(a["riskLevel"]).upper(), "facts": list(a.get("facts") or [])}
            for a in given.get("assessments") or []
        ],
    }


def risk_node(risk: dict[str, Any]) -> dict[str, Any]:
    return {
        "__typename": "OrderRiskSummary",
        "recommendation": risk["recommendation"],
        "assessments": [
            {
                "__typename": "OrderRiskAssessment",
                "riskLevel": a["riskLevel"],
                "provider": None,  # Shopify's own assessment
                "facts": [
                    {"__typename": "RiskFact", "description": f["description"], "sentiment": f["sentiment"]}
                    for f in a["facts"]
                ],
            }
            for a in risk["assessments"]
        ],
    }


class UserErrors(Exception):
    """A mutation's validation failure: answered as ``userErrors`` with HTTP 200."""

    def __init__(self, field: list[str] | None, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.errors = [{"field": field, "message": message, "code": code}]


def shop_time(moment: datetime) -> str:
    return moment.astimezone(SHOP_TZ).replace(microsecond=0).isoformat()


def money(amount: Any) -> str:
    return str(Decimal(str(amount or "0")).quantize(Decimal("0.01")))


def money_set(amount: Any, currency: str) -> dict[str, Any]:
    value = {"amount": money(amount), "currency_code": currency}
    return {"shop_money": value, "presentment_money": dict(value)}


def tag_list(tags: str | list[str] | None) -> list[str]:
    if isinstance(tags, list):
        return [t.strip() for t in tags if t and t.strip()]
    return [t.strip() for t in (tags or "").split(",") if t.strip()]


def public_order(order: dict[str, Any]) -> dict[str, Any]:
    """The REST/webhook payload: the stored order without the fake's internal keys."""
    return {k: v for k, v in order.items() if k not in INTERNAL_KEYS}


# -- normalising an injected order ----------------------------------------------------------------
def fill_line_item(line: dict[str, Any], catalog: Catalog, currency: str) -> dict[str, Any]:
    """Complete one REST line item from the catalog (variant <-> sku) and set quantity fields."""
    by_sku = catalog.by_sku()
    by_variant = {s.shopify_variant_id: s for s in catalog.skus}
    item = by_sku.get(line.get("sku") or "") or by_variant.get(line.get("variant_id") or 0)
    if item is not None:
        line.setdefault("sku", item.sku)
        line.setdefault("variant_id", item.shopify_variant_id)
        line.setdefault("product_id", item.shopify_product_id)
        line.setdefault("title", item.title)
        line.setdefault("price", item.price)
        line.setdefault("grams", item.grams)
    quantity = int(line.setdefault("quantity", 1))
    line.setdefault("title", line.get("name") or line.get("sku") or "Item")
    line.setdefault("name", line["title"])
    line.setdefault("variant_title", None)
    line["price"] = money(line.get("price"))
    line.setdefault("price_set", money_set(line["price"], currency))
    line.setdefault("total_discount", "0.00")
    line.setdefault("total_discount_set", money_set(line["total_discount"], currency))
    line.setdefault("discount_allocations", [])
    line.setdefault("tax_lines", [])
    line.setdefault("requires_shipping", True)
    line.setdefault("gift_card", False)
    line.setdefault("taxable", True)
    line.setdefault("current_quantity", quantity)
    line.setdefault("fulfillable_quantity", quantity if line["requires_shipping"] else 0)
    line.setdefault("fulfillment_status", None)
    line.setdefault("fulfillment_service", "manual")
    line.setdefault("properties", [])
    return line


def fill_totals(order: dict[str, Any]) -> None:
    """Compute missing money totals (strings) and their `*_set` bags."""
    currency = order["currency"]
    lines = order["line_items"]
    line_total = sum(Decimal(li["price"]) * li["quantity"] for li in lines)
    discounts = Decimal(order.get("total_discounts") or "0")
    shipping = sum(Decimal(str(s.get("price") or "0")) for s in order.get("shipping_lines", []))
    tax = Decimal(str(order.get("total_tax") or "0"))
    order.setdefault("total_line_items_price", money(line_total))
    order.setdefault("total_discounts", money(discounts))
    order.setdefault("subtotal_price", money(line_total - discounts))
    order.setdefault("total_tax", money(tax))
    total = Decimal(order["subtotal_price"]) + shipping + (Decimal("0") if order["taxes_included"] else tax)
    order.setdefault("total_price", money(total))
    order.setdefault("total_shipping_price_set", money_set(shipping, currency))
    for name in ("total_line_items_price", "total_discounts", "subtotal_price", "total_tax", "total_price"):
        order.setdefault(f"{name}_set", money_set(order[name], currency))
    order.setdefault("current_total_price", order["total_price"])
    order.setdefault(
        "total_outstanding", "0.00" if order["financial_status"] == "paid" else order["total_price"]
    )


def recompute_current_totals(order: dict[str, Any]) -> None:
    """`current_*` totals after an edit: each line's discounted price and tax at its current share.

    Shopify's own arithmetic for an edit is not published; a line's share of its discount and tax in
    proportion to the quantity kept is the sandbox's model (our design choice).
    """
    currency = order["currency"]
    lines_net = tax = Decimal("0")
    for line in order["line_items"]:
        quantity, current = line["quantity"], line.get("current_quantity", line["quantity"])
        if not quantity:
            continue
        discount = sum(
            (Decimal(str(a.get("amount") or "0")) for a in line.get("discount_allocations") or []),
            Decimal("0"),
        )
        gross = Decimal(line["price"]) * quantity - discount
        lines_net += Decimal(money(gross * current / quantity))
        line_tax = sum((Decimal(str(t.get("price") or "0")) for t in line.get("tax_lines") or []), Decimal(0))
        tax += Decimal(money(line_tax * current / quantity))
    shipping = Decimal("0")
    for ship in order.get("shipping_lines") or []:
        shipping += Decimal(str(ship.get("discounted_price", ship.get("price")) or "0"))
        tax += sum((Decimal(str(t.get("price") or "0")) for t in ship.get("tax_lines") or []), Decimal(0))
    for refund in order.get("refunds") or []:  # refunded shipping leaves the current total too
        for refunded in refund.get("refund_shipping_lines") or []:
            shipping -= Decimal(refunded["subtotal_amount_set"]["shop_money"]["amount"])
            tax -= Decimal(refunded["tax_amount_set"]["shop_money"]["amount"])
    total = lines_net + shipping + (Decimal("0") if order["taxes_included"] else tax)
    order["current_subtotal_price"] = money(lines_net)
    order["current_total_tax"] = money(tax)
    order["current_total_price"] = money(total)
    for name in ("current_subtotal_price", "current_total_tax", "current_total_price"):
        order[f"{name}_set"] = money_set(order[name], currency)


def default_transactions(order: dict[str, Any], payload_transactions: list[dict] | None, next_id) -> list:
    """Transactions from the payload (gift-card splits kept) or one successful SALE for the total."""
    if payload_transactions:
        transactions = []
        for tx in payload_transactions:
            tx = dict(tx)
            tx.setdefault("id", next_id())
            tx.setdefault("kind", "sale")
            tx.setdefault("status", "success")
            tx["amount"] = money(tx.get("amount"))
            tx.setdefault("currency", order["currency"])
            transactions.append(tx)
        return transactions
    if order["financial_status"] not in ("paid", "partially_refunded", "refunded", "authorized"):
        return []
    gateways = order.get("payment_gateway_names") or ["shopify_payments"]
    kind = "authorization" if order["financial_status"] == "authorized" else "sale"
    return [
        {
            "id": next_id(),
            "kind": kind,
            "status": "success",
            "gateway": gateways[0],
            "amount": order["total_price"],
            "currency": order["currency"],
        }
    ]


# -- GraphQL presentation -------------------------------------------------------------------------
def money_bag(value: dict[str, Any] | None, amount: Any = None, currency: str = "USD") -> dict[str, Any]:
    if value is None:
        value = money_set(amount, currency)
    return {
        "shopMoney": {
            "amount": value["shop_money"]["amount"],
            "currencyCode": value["shop_money"]["currency_code"],
        },
        "presentmentMoney": {
            "amount": value["presentment_money"]["amount"],
            "currencyCode": value["presentment_money"]["currency_code"],
        },
    }


def address_node(address: dict[str, Any] | None) -> dict[str, Any] | None:
    if not address:
        return None
    first, last = address.get("first_name"), address.get("last_name")
    return {
        "firstName": first,
        "lastName": last,
        "name": address.get("name") or " ".join(p for p in (first, last) if p) or None,
        "company": address.get("company"),
        "address1": address.get("address1"),
        "address2": address.get("address2"),
        "city": address.get("city"),
        "province": address.get("province"),
        "provinceCode": address.get("province_code"),
        "zip": address.get("zip"),
        "country": address.get("country"),
        "countryCodeV2": address.get("country_code"),
        "phone": address.get("phone"),
    }


def tax_line_nodes(lines: list[dict[str, Any]] | None, currency: str) -> list[dict[str, Any]]:
    return [
        {
            "title": t.get("title"),
            "rate": t.get("rate"),
            "priceSet": money_bag(t.get("price_set"), t.get("price"), currency),
        }
        for t in lines or []
    ]


def variant_node(line: dict[str, Any], catalog: Catalog) -> dict[str, Any] | None:
    variant_id = line.get("variant_id")
    if not variant_id:
        return None
    item = next((s for s in catalog.skus if s.shopify_variant_id == variant_id), None)
    return {
        "__typename": "ProductVariant",
        "id": gid("ProductVariant", variant_id),
        "legacyResourceId": str(variant_id),
        "sku": line.get("sku"),
        "inventoryItem": {"id": gid("InventoryItem", item.shopify_inventory_item_id)} if item else None,
    }


def line_item_node(line: dict[str, Any], catalog: Catalog, currency: str) -> dict[str, Any]:
    total = Decimal(line["price"]) * line["quantity"] - Decimal(line.get("total_discount") or "0")
    return {
        "__typename": "LineItem",
        "id": gid("LineItem", line["id"]),
        "sku": line.get("sku"),
        "name": line.get("name"),
        "title": line.get("title"),
        "variantTitle": line.get("variant_title"),
        "quantity": line["quantity"],
        "currentQuantity": line.get("current_quantity", line["quantity"]),
        # Refunded and edited-away units are no longer refundable (shopify_refunds).
        "refundableQuantity": line.get("current_quantity", line["quantity"]),
        "unfulfilledQuantity": line.get("fulfillable_quantity", 0),
        "requiresShipping": line.get("requires_shipping", True),
        "isGiftCard": line.get("gift_card", False),
        "variant": variant_node(line, catalog),
        "originalUnitPriceSet": money_bag(line.get("price_set"), line["price"], currency),
        "discountedTotalSet": money_bag(None, total, currency),
        "discountAllocations": [
            {"allocatedAmountSet": money_bag(a.get("amount_set"), a.get("amount"), currency)}
            for a in line.get("discount_allocations", [])
        ],
        "taxLines": tax_line_nodes(line.get("tax_lines"), currency),
    }


def display_fulfillment_status(order: dict[str, Any]) -> str:
    """Order.displayFulfillmentStatus: ON_HOLD / SCHEDULED when every unfulfilled unit waits so."""
    shown = {"fulfilled": "FULFILLED", "partial": "PARTIALLY_FULFILLED", "restocked": "RESTOCKED"}
    if order.get("fulfillment_status") in shown:
        return shown[order["fulfillment_status"]]
    waiting = {fo["status"] for fo in order.get("_fulfillment_orders") or [] if remaining_units(fo) > 0}
    if waiting == {"on_hold"}:
        return "ON_HOLD"
    if waiting == {"scheduled"}:
        return "SCHEDULED"
    return "UNFULFILLED"


# -- fulfillment orders: the model -----------------------------------------------------------------
# Shopify routes an order's lines to locations and keeps one fulfillment order (FO) per assigned
# location (more after a split or a move). FO line ids are their own, distinct from order line ids.
# Statuses (shopify.md §3.3; FulfillmentOrderStatus in the 2026-04 schema): OPEN, IN_PROGRESS (some
# units fulfilled), ON_HOLD (holds applied), SCHEDULED (`fulfill_at` in the future; opens by itself
# when it is reached, or through fulfillmentOrderOpen), INCOMPLETE, CLOSED (nothing left, or moved
# away), CANCELLED. Only OPEN and IN_PROGRESS take fulfillments.

FULFILLABLE_STATUSES = ("open", "in_progress")
#: Sandbox-only fields of an injected order (removed before storing): a line's assigned location
#: (a Shopify location id or a catalog location code) and the order's `fulfill_at`.
ASSIGNED_LOCATION_FIELD = "assigned_location_id"
FULFILL_AT_FIELD = "fulfill_at"
MAX_HOLDS_PER_APP = 10  # fulfillmentOrderHold description (2026-04 schema)


def remaining_units(fo: dict[str, Any]) -> int:
    return sum(int(line["fulfillable_quantity"]) for line in fo["line_items"])


def has_progress(fo: dict[str, Any]) -> bool:
    """Whether some unit of this FO was already fulfilled (it then stays IN_PROGRESS, not OPEN)."""
    return any(line["quantity"] > line["fulfillable_quantity"] for line in fo["line_items"])


def settle_status(fo: dict[str, Any]) -> None:
    """The status an FO falls back to when nothing holds or defers it: closed, in progress or open."""
    if remaining_units(fo) == 0:
        fo["status"] = "closed"
    elif fo.get("fulfillment_holds"):
        fo["status"] = "on_hold"
    else:
        fo["status"] = "in_progress" if has_progress(fo) else "open"
    refresh_actions(fo)


def refresh_actions(fo: dict[str, Any]) -> None:
    """`supported_actions` per status (merchant-managed location; REST examples in shopify.md §3.3)."""
    status = fo["status"]
    if status in ("open", "in_progress"):
        actions = ["create_fulfillment", "move", "hold"]
        if remaining_units(fo) > 1:
            actions.append("split")
    elif status == "on_hold":
        actions = ["release_hold", "hold", "move"]
    elif status == "scheduled":
        actions = ["mark_as_open"]
    else:
        actions = []
    fo["supported_actions"] = actions


def new_fulfillment_order(
    order: dict[str, Any],
    location_id: int,
    lines: list[tuple[int, int | None, int, int]],
    *,
    now: str,
    new_id,
    fulfill_at: str | None = None,
    holds: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One FO at ``location_id`` over ``(order line id, variant id, quantity, remaining)`` lines.

    ``new_id(kind)`` hands out the FO and FO-line ids (distinct from the order's line ids).
    """
    fo_id = new_id("fulfillment_order")
    fo = {
        "id": fo_id,
        "order_id": order["id"],
        "assigned_location_id": location_id,
        "status": "open",
        "request_status": "unsubmitted",
        "supported_actions": [],
        "fulfill_at": fulfill_at,
        "fulfill_by": None,
        "fulfillment_holds": list(holds or []),
        "line_items": [
            {
                "id": new_id("fo_line"),
                "fulfillment_order_id": fo_id,
                "line_item_id": line_id,
                "variant_id": variant_id,
                "quantity": quantity,
                "fulfillable_quantity": remaining,
            }
            for line_id, variant_id, quantity, remaining in lines
            if quantity > 0
        ],
        "created_at": now,
        "updated_at": now,
    }
    settle_status(fo)
    return fo


def initial_fulfillment_orders(
    order: dict[str, Any], catalog: Catalog, moment: datetime, new_id
) -> list[dict[str, Any]]:
    """Shopify's order routing, as the sandbox plays it: one FO per assigned location.

    A line goes to its ``assigned_location_id`` (sandbox-only field), else to the order's
    ``location_id``, else to the shop's primary location, so an order injected without either gets
    one FO exactly as before. An order ``fulfill_at`` in the future makes every FO SCHEDULED.
    """
    default = order.get("location_id") or catalog.locations[0].shopify_location_id
    fulfill_at = order.pop(FULFILL_AT_FIELD, None)
    due = parse_time(str(fulfill_at)) if fulfill_at else None
    groups: dict[int, list[dict[str, Any]]] = {}
    for line in order["line_items"]:
        location = resolve_location(catalog, line.pop(ASSIGNED_LOCATION_FIELD, None) or default)
        if line.get("requires_shipping", True):
            groups.setdefault(location, []).append(line)
    now = shop_time(moment)
    fos = []
    for location, lines in groups.items():
        # Units fulfilled before the order reached us sit in a CLOSED FO, the rest in an open one;
        # units removed (refunded, edited away: quantity - current_quantity) are in neither.
        done = [(li["id"], li.get("variant_id"), _fulfilled_units(li), 0) for li in lines]
        todo = [
            (li["id"], li.get("variant_id"), li["fulfillable_quantity"], li["fulfillable_quantity"])
            for li in lines
        ]
        for parts in (done, todo):
            fo = new_fulfillment_order(order, location, parts, now=now, new_id=new_id, fulfill_at=fulfill_at)
            if fo["line_items"]:
                fos.append(fo)
            if due is not None and due > moment and fo["status"] == "open":
                fo["status"] = "scheduled"
                refresh_actions(fo)
    return fos


def _fulfilled_units(line: dict[str, Any]) -> int:
    return max(0, int(line.get("current_quantity", line["quantity"])) - int(line["fulfillable_quantity"]))


def resolve_location(catalog: Catalog, value: Any) -> int:
    """A Shopify location id (or a catalog location code such as ``LA``); ValueError if unknown."""
    for location in catalog.locations:
        if str(value) in (str(location.shopify_location_id), location.code):
            return location.shopify_location_id
    raise ValueError(f"unknown location {value!r}")


def open_due_schedules(order: dict[str, Any], moment: datetime) -> bool:
    """SCHEDULED FOs whose `fulfill_at` has come turn OPEN by themselves; True when one did."""
    changed = False
    for fo in order.get("_fulfillment_orders") or []:
        due = parse_time(str(fo.get("fulfill_at") or ""))
        if fo["status"] == "scheduled" and due is not None and due <= moment:
            settle_status(fo)
            fo["updated_at"] = shop_time(moment)
            changed = True
    return changed


def hold_node(hold: dict[str, Any]) -> dict[str, Any]:
    return {
        "__typename": "FulfillmentHold",
        "id": gid("FulfillmentHold", hold["id"]),
        "reason": hold["reason"].upper(),
        "reasonNotes": hold.get("reason_notes"),
        "handle": hold.get("handle") or "",
        "displayReason": hold["reason"].replace("_", " ").capitalize(),
        "heldByRequestingApp": True,
        "heldByApp": None,
    }


def fulfillment_order_node(fo: dict[str, Any], order: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    lines = {li["id"]: li for li in order["line_items"]}
    location = next(
        (x for x in catalog.locations if x.shopify_location_id == fo["assigned_location_id"]), None
    )
    return {
        "__typename": "FulfillmentOrder",
        "id": gid("FulfillmentOrder", fo["id"]),
        "orderId": order["admin_graphql_api_id"],
        "orderName": order["name"],
        "orderProcessedAt": order.get("processed_at") or order["created_at"],
        "status": fo["status"].upper(),
        "requestStatus": fo["request_status"].upper(),
        "supportedActions": [{"action": a.upper(), "externalUrl": None} for a in fo["supported_actions"]],
        "fulfillAt": fo.get("fulfill_at"),
        "fulfillBy": fo.get("fulfill_by"),
        "fulfillmentHolds": [hold_node(h) for h in fo.get("fulfillment_holds") or []],
        "createdAt": fo["created_at"],
        "updatedAt": fo["updated_at"],
        "assignedLocation": {
            "name": location.name if location else "",
            "countryCode": "US",
            "location": location_node(location) if location else None,
        },
        "lineItems": [
            {
                "__typename": "FulfillmentOrderLineItem",
                "id": gid("FulfillmentOrderLineItem", li["id"]),
                "sku": lines[li["line_item_id"]].get("sku"),
                "productTitle": lines[li["line_item_id"]].get("title") or "",
                "variantTitle": lines[li["line_item_id"]].get("variant_title"),
                "requiresShipping": lines[li["line_item_id"]].get("requires_shipping", True),
                "totalQuantity": li["quantity"],
                "remainingQuantity": li["fulfillable_quantity"],
                "warnings": [],
                "lineItem": line_item_node(lines[li["line_item_id"]], catalog, order["currency"]),
            }
            for li in fo["line_items"]
        ],
    }


# REST `shipment_status` -> `Fulfillment.displayStatus` (a fulfillment without carrier events: FULFILLED).
_FULFILLMENT_DISPLAY = {
    "delivered": "DELIVERED",
    "in_transit": "IN_TRANSIT",
    "out_for_delivery": "OUT_FOR_DELIVERY",
    "attempted_delivery": "ATTEMPTED_DELIVERY",
    "failure": "FAILURE",
    "label_printed": "LABEL_PRINTED",
    "label_purchased": "LABEL_PURCHASED",
    "confirmed": "CONFIRMED",
}


def fulfillment_node(fulfillment: dict[str, Any], order: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """A fulfillment in GraphQL shape (tolerates legacy fixture fulfillments with fewer fields)."""
    lines = {li["id"]: li for li in order["line_items"]}
    numbers = fulfillment.get("tracking_numbers") or (
        [fulfillment["tracking_number"]] if fulfillment.get("tracking_number") else []
    )
    urls = fulfillment.get("tracking_urls") or []
    company = fulfillment.get("tracking_company")
    location = next(
        (x for x in catalog.locations if x.shopify_location_id == fulfillment.get("location_id")), None
    )
    return {
        "__typename": "Fulfillment",
        "location": location_node(location) if location else None,
        "id": fulfillment.get("admin_graphql_api_id") or gid("Fulfillment", fulfillment["id"]),
        "legacyResourceId": str(fulfillment["id"]),
        "name": fulfillment.get("name") or f"{order['name']}.1",
        "status": (fulfillment.get("status") or "success").upper(),
        "createdAt": fulfillment.get("created_at") or order["created_at"],
        "updatedAt": fulfillment.get("updated_at") or order["updated_at"],
        # Carrier events as the sandbox knows them (the delivered control route, shopify_returns).
        "deliveredAt": fulfillment.get("delivered_at"),
        "inTransitAt": fulfillment.get("in_transit_at"),
        "estimatedDeliveryAt": None,
        "displayStatus": _FULFILLMENT_DISPLAY.get(str(fulfillment.get("shipment_status") or ""), "FULFILLED")
        if str(fulfillment.get("status") or "success").lower() == "success"
        else "CANCELED",
        "requiresShipping": True,
        "totalQuantity": sum(int(fl.get("quantity") or 0) for fl in fulfillment.get("line_items") or []),
        "trackingInfo": [
            {"company": company, "number": number, "url": urls[i] if i < len(urls) else None}
            for i, number in enumerate(numbers)
        ],
        "fulfillmentLineItems": [
            {
                "__typename": "FulfillmentLineItem",
                "id": gid("FulfillmentLineItem", fl.get("fulfillment_line_item_id") or fl["id"]),
                "quantity": fl.get("quantity"),
                "lineItem": line_item_node(lines.get(fl["id"], fl), catalog, order["currency"]),
            }
            for fl in fulfillment.get("line_items") or []
        ],
    }


def location_node(location) -> dict[str, Any]:
    return {
        "__typename": "Location",
        "id": gid("Location", location.shopify_location_id),
        "legacyResourceId": str(location.shopify_location_id),
        "name": location.name,
        "isActive": True,
    }


def order_node(order: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """The stored REST order in GraphQL shape (the fields of the shared `OrderFields` and more)."""
    from mienne_ops.sandbox import shopify_refunds as money_rules  # it builds on this module

    currency = order["currency"]
    customer = order.get("customer")
    shipping_total = order.get("total_shipping_price_set")
    node = {
        "__typename": "Order",
        "id": order["admin_graphql_api_id"],
        "legacyResourceId": str(order["id"]),
        "name": order["name"],
        "email": order.get("email"),
        "phone": order.get("phone"),
        "createdAt": order["created_at"],
        "updatedAt": order["updated_at"],
        "processedAt": order.get("processed_at"),
        "cancelledAt": order.get("cancelled_at"),
        "cancelReason": (order.get("cancel_reason") or "").upper() or None,
        "closed": bool(order.get("closed_at")),
        "closedAt": order.get("closed_at"),
        "test": bool(order.get("test")),
        "displayFinancialStatus": (order.get("financial_status") or "pending").upper(),
        "displayFulfillmentStatus": display_fulfillment_status(order),
        "tags": tag_list(order.get("tags")),
        "note": order.get("note"),
        "taxesIncluded": bool(order.get("taxes_included")),
        "currencyCode": currency,
        "presentmentCurrencyCode": order.get("presentment_currency") or currency,
        "paymentGatewayNames": order.get("payment_gateway_names") or [],
        "discountCodes": [d["code"] for d in order.get("discount_codes") or []],
        "totalPriceSet": money_bag(order.get("total_price_set"), order["total_price"], currency),
        "subtotalPriceSet": money_bag(order.get("subtotal_price_set"), order.get("subtotal_price"), currency),
        "totalTaxSet": money_bag(order.get("total_tax_set"), order.get("total_tax"), currency),
        "totalDiscountsSet": money_bag(
            order.get("total_discounts_set"), order.get("total_discounts"), currency
        ),
        "totalShippingPriceSet": money_bag(shipping_total, "0", currency),
        "currentTotalPriceSet": money_bag(
            order.get("current_total_price_set"),
            order.get("current_total_price", order["total_price"]),
            currency,
        ),
        "currentTotalTaxSet": money_bag(
            order.get("current_total_tax_set"),
            order.get("current_total_tax", order.get("total_tax")),
            currency,
        ),
        # Null when the order has no duties, as Shopify answers.
        "currentTotalDutiesSet": money_bag(order["current_total_duties_set"], None, currency)
        if order.get("current_total_duties_set")
        else None,
        "dutiesIncluded": bool(order.get("duties_included")),
        "totalTipReceivedSet": money_bag(
            order.get("total_tip_received_set"), order.get("total_tip_received", "0"), currency
        ),
        "customer": {
            "__typename": "Customer",
            "id": gid("Customer", customer["id"]),
            "legacyResourceId": str(customer["id"]),
            "firstName": customer.get("first_name"),
            "lastName": customer.get("last_name"),
            "defaultEmailAddress": {"emailAddress": customer["email"]} if customer.get("email") else None,
        }
        if customer and customer.get("id")
        else None,
        "shippingAddress": address_node(order.get("shipping_address")),
        "billingAddress": address_node(order.get("billing_address")),
        "taxLines": tax_line_nodes(order.get("tax_lines"), currency),
        "shippingLines": [
            {
                "__typename": "ShippingLine",
                "code": s.get("code"),
                "title": s.get("title"),
                "source": s.get("source"),
                "originalPriceSet": money_bag(s.get("price_set"), s.get("price"), currency),
                "discountedPriceSet": money_bag(
                    s.get("discounted_price_set"), s.get("discounted_price", s.get("price")), currency
                ),
                "taxLines": tax_line_nodes(s.get("tax_lines"), currency),
            }
            for s in order.get("shipping_lines") or []
        ],
        "transactions": [money_rules.transaction_node(tx, order) for tx in order.get("_transactions") or []],
        "refunds": [money_rules.refund_node(r, order, catalog) for r in order.get("refunds") or []],
        "totalRefundedSet": money_bag(None, money_rules.total_refunded(order), currency),
        "totalReceivedSet": money_bag(None, money_rules.total_received(order), currency),
        "netPaymentSet": money_bag(
            None, money_rules.total_received(order) - money_rules.total_refunded(order), currency
        ),
        "suggestedRefund": lambda info, **args: money_rules.suggested_refund_node(order, args, catalog),
        "lineItems": [line_item_node(li, catalog, currency) for li in order["line_items"]],
        "fulfillmentOrders": [
            fulfillment_order_node(fo, order, catalog) for fo in order["_fulfillment_orders"]
        ],
        "fulfillments": [fulfillment_node(f, order, catalog) for f in order.get("fulfillments", [])],
        "risk": risk_node(order.get("_risk") or DEFAULT_RISK),
    }
    return node


# -- search ---------------------------------------------------------------------------------------
def order_matches(order: dict[str, Any], field: str, op: str, value: str) -> bool:
    """One `orders(query:)` term against a stored order (unknown fields match everything)."""
    value_lower = value.lower()
    if field == "status":
        state = "cancelled" if order.get("cancelled_at") else "closed" if order.get("closed_at") else "open"
        return value_lower in ("any", state) or (value_lower == "closed" and state == "cancelled")
    if field == "financial_status":
        return value_lower in ("any", (order.get("financial_status") or "").lower())
    if field == "fulfillment_status":
        status = order.get("fulfillment_status")
        aliases: dict[str, set[str | None]] = {
            "shipped": {"fulfilled"},
            "fulfilled": {"fulfilled"},
            "partial": {"partial"},
            "unshipped": {None},
            "unfulfilled": {None, "partial"},
        }
        return value_lower == "any" or status in aliases.get(value_lower, {value_lower})
    if field in ("created_at", "updated_at"):
        return compare(parse_time(order.get(field) or ""), op, parse_time(value))
    if field == "id":  # "Filter by `id` range" (2026-04 `orders(query:)`: id:1234, id:>=1234, id:<=1234)
        return value.isdigit() and compare(int(order["id"]), op, int(value))
    if field == "customer_id":  # "Filter orders by the customer id" (2026-04 `orders(query:)`)
        return str((order.get("customer") or {}).get("id") or "") == value.rsplit("/", 1)[-1]
    if field == "return_status":  # `Order.returnStatus`, kept by the returns desk (shopify_returns)
        return value_lower == (order.get("_return_status") or "no_return")
    if field == "tag":
        return value_lower in {t.lower() for t in tag_list(order.get("tags"))}
    if field == "name":
        return order["name"].lstrip("#") == value.lstrip("#")
    if field == "email":
        return (order.get("email") or "").lower() == value_lower
    return True


# -- carriers -------------------------------------------------------------------------------------
_CARRIERS = (
    (
        "UPS",
        re.compile(r"^1Z[0-9A-Z]{16}$"),
        "https://www.ups.com/WebTracking?loc=en_US&requester=ST&trackNums={}",
    ),
    (
        "USPS",
        re.compile(r"^(9[2-5]\d{20}|\d{20}|[A-Z]{2}\d{9}US)$"),
        "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
    ),
    ("FedEx", re.compile(r"^(\d{12}|\d{15})$"), "https://www.fedex.com/fedextrack/?trknbr={}"),
    (
        "Canada Post",
        re.compile(r"^\d{16}$"),
        "https://www.canadapost-postescanada.ca/track-reperage/en#/details/{}",
    ),
    ("DHL Express", re.compile(r"^\d{10}$"), "https://www.dhl.com/en/express/tracking.html?AWB={}"),
)


def detect_carrier(number: str) -> tuple[str, str] | None:
    """(company, tracking url) for a number in a known carrier format, as Shopify guesses it."""
    for company, pattern, url in _CARRIERS:
        if pattern.match(number.strip().upper()):
            return company, url.format(number.strip())
    return None


def fresh_copy(payload: dict[str, Any]) -> dict[str, Any]:
    order = payload.get("order", payload) if isinstance(payload, dict) else {}
    return copy.deepcopy(order)
