"""Pydantic models of a Shopify order, parsed from either REST/webhook JSON or the GraphQL node.

Flow A reads orders from two places: webhooks and the REST reconciliation poll deliver the REST
shape (snake_case, money as strings with `*_set` bags, tags as one comma string), while the GraphQL
queries return the `OrderFields` fragment (`integrations/graphql/order_fields.graphql`: camelCase,
GIDs, upper-case enums, MoneyBags). `ShopifyOrder.from_rest` and `ShopifyOrder.from_graphql` turn
both into the same model, so everything downstream has exactly one shape to handle. Amounts are the
shop-currency money (what NetSuite books); presentment money is ignored on purpose.

Quantities: `quantity` is what was ordered, `current_quantity` what is left on the order after edits
and refunds (what NetSuite books), `unfulfilled_quantity` what is still to be shipped by anyone (a
line fulfilled at a POS or from another location has 0; so do tips and digital goods). A GraphQL
`lineItems` connection that still reports `hasNextPage` was read only in part: the model says so
(`line_items_truncated`) and the mapping refuses it rather than booking half an order.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from mienne_ops.domain.money import ZERO, cents, to_decimal, total

# GraphQL displayFulfillmentStatus -> REST fulfillment_status. Everything not listed (OPEN,
# IN_PROGRESS, ON_HOLD, SCHEDULED, PENDING_FULFILLMENT, ...) means "nothing shipped yet" -> None.
_GRAPHQL_FULFILLMENT_STATUS = {
    "FULFILLED": "fulfilled",
    "PARTIALLY_FULFILLED": "partial",
    "RESTOCKED": "restocked",
}
GIFT_CARD_GATEWAY = "gift_card"
_SETTLED_PAYMENT_KINDS = {"sale", "capture"}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Address(_Model):
    first_name: str | None = None
    last_name: str | None = None
    name: str | None = None
    company: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    province: str | None = None
    province_code: str | None = None
    zip: str | None = None
    country_code: str | None = None
    phone: str | None = None

    @property
    def full_name(self) -> str:
        """The addressee: Shopify's `name`, or first + last."""
        if self.name:
            return self.name
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    @property
    def is_shippable(self) -> bool:
        """Has the minimum a carrier needs: a street line, a city and a country."""
        return bool(self.address1 and self.city and self.country_code)


class ShopifyCustomer(_Model):
    id: int | None
    email: str | None
    first_name: str | None
    last_name: str | None


class TaxLine(_Model):
    title: str
    rate: Decimal | None
    amount: Decimal


class ShopifyLineItem(_Model):
    id: int
    gid: str
    sku: str | None
    title: str
    quantity: int
    current_quantity: int
    unit_price: Decimal
    total_discount: Decimal  # sum of the discount allocations, for the whole ordered quantity
    tax_lines: list[TaxLine]
    requires_shipping: bool
    is_gift_card: bool
    variant_id: int | None
    # Still to ship by anyone; defaults to the current quantity when the payload does not say.
    unfulfilled_quantity: int = 0
    # False for custom lines that are no product of the shop (a tip is one): REST `product_exists`,
    # GraphQL `variant: null`.
    has_product: bool = True

    @property
    def tax_amount(self) -> Decimal:
        return total(t.amount for t in self.tax_lines)


class ShippingLine(_Model):
    code: str | None
    title: str
    price: Decimal
    discounted_price: Decimal
    tax_lines: list[TaxLine]

    @property
    def tax_amount(self) -> Decimal:
        return total(t.amount for t in self.tax_lines)


class Payment(_Model):
    gateway: str
    kind: str  # lower-case: sale, capture, authorization, refund, void
    status: str  # lower-case: success, pending, failure, error
    amount: Decimal


class ShopifyOrder(_Model):
    id: int
    gid: str
    name: str
    email: str | None
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None
    financial_status: str
    fulfillment_status: str | None
    tags: list[str]
    taxes_included: bool
    currency: str
    customer: ShopifyCustomer | None
    shipping_address: Address | None
    billing_address: Address | None
    line_items: list[ShopifyLineItem]
    shipping_lines: list[ShippingLine]
    tax_lines: list[TaxLine]
    payments: list[Payment]
    total_price: Decimal
    subtotal_price: Decimal
    total_tax: Decimal
    total_discounts: Decimal
    total_shipping: Decimal
    test: bool = False
    presentment_currency: str = ""
    # Shopify's own totals after edits and refunds; None when the payload does not carry them.
    current_total_price: Decimal | None = None
    current_total_tax: Decimal | None = None
    total_tip: Decimal = ZERO  # tips received (their line items have no product)
    total_duties: Decimal = ZERO  # import duties charged at checkout, after edits/refunds
    duties_included: bool = False  # duties inside the line prices (duty-inclusive markets)
    line_items_truncated: bool = False  # the lineItems connection was not read to its end
    # When the order was placed (imports set it in the past); the edit window counts from here.
    processed_at: datetime | None = None
    # `Order.risk` as read ({"recommendation", "assessments": [{"riskLevel"}]}); None: not read.
    risk: dict[str, Any] | None = None

    @property
    def is_multi_currency(self) -> bool:
        """Paid in another currency than the shop's: shop money is a per-amount conversion."""
        return bool(self.presentment_currency) and self.presentment_currency != self.currency

    @property
    def gift_card_amount(self) -> Decimal:
        """Money settled by gift cards: a payment, never a discount."""
        return total(
            p.amount
            for p in self.payments
            if p.gateway == GIFT_CARD_GATEWAY and p.kind in _SETTLED_PAYMENT_KINDS and p.status == "success"
        )

    @classmethod
    def from_rest(cls, payload: dict[str, Any]) -> ShopifyOrder:
        """Parse REST / webhook order JSON (bare, or wrapped as ``{"order": {...}}``)."""
        order = payload["order"] if isinstance(payload.get("order"), dict) else payload
        return cls(**_rest_order_fields(order))

    @classmethod
    def from_graphql(cls, node: dict[str, Any]) -> ShopifyOrder:
        """Parse an `Order` node selected with the `OrderFields` fragment."""
        return cls(**_graphql_order_fields(node))


# --- REST -----------------------------------------------------------------------------------------


def _rest_money(obj: dict[str, Any], key: str) -> Decimal:
    """Shop money from `<key>_set` when present (2019+ payloads), else the plain string field."""
    bag = obj.get(f"{key}_set")
    if isinstance(bag, dict) and bag.get("shop_money"):
        return cents(bag["shop_money"]["amount"])
    return cents(to_decimal(obj.get(key)))


def _rest_tax_lines(items: list[dict[str, Any]] | None) -> list[TaxLine]:
    return [
        TaxLine(
            title=t.get("title") or "",
            rate=None if t.get("rate") is None else to_decimal(t["rate"]),
            amount=_rest_money(t, "price"),
        )
        for t in items or []
    ]


def _rest_address(data: dict[str, Any] | None) -> Address | None:
    if not data:
        return None
    fields = {
        key: _text(data.get(key))
        for key in (
            "first_name",
            "last_name",
            "name",
            "company",
            "address1",
            "address2",
            "city",
            "province",
            "province_code",
            "zip",
            "country_code",
            "phone",
        )
    }
    return Address(**fields)


def _rest_line_item(item: dict[str, Any]) -> ShopifyLineItem:
    line_id = int(item["id"])
    quantity = int(item.get("quantity") or 0)
    current = item.get("current_quantity")
    allocations = item.get("discount_allocations")
    # `total_discount` is deprecated and often "0.00" even when allocations exist; the allocations
    # are what Shopify actually charged, so prefer them.
    discount = (
        total(_rest_money(a, "amount") for a in allocations)
        if allocations is not None
        else _rest_money(item, "total_discount")
    )
    return ShopifyLineItem(
        id=line_id,
        gid=item.get("admin_graphql_api_id") or f"gid://shopify/LineItem/{line_id}",
        sku=_text(item.get("sku")),
        title=item.get("title") or item.get("name") or "",
        quantity=quantity,
        current_quantity=quantity if current is None else int(current),
        unit_price=_rest_money(item, "price"),
        total_discount=discount,
        tax_lines=_rest_tax_lines(item.get("tax_lines")),
        requires_shipping=bool(item.get("requires_shipping", True)),
        is_gift_card=bool(item.get("gift_card", False)),
        variant_id=_int_or_none(item.get("variant_id")),
        unfulfilled_quantity=_rest_unfulfilled(item, quantity if current is None else int(current)),
        has_product=bool(item.get("product_exists", True))
        and (item.get("variant_id") is not None or _text(item.get("sku")) is not None),
    )


def _rest_unfulfilled(item: dict[str, Any], current: int) -> int:
    """REST `fulfillable_quantity`; absent (old payloads) -> the current quantity if it ships."""
    value = item.get("fulfillable_quantity")
    if value is None:
        return current if item.get("requires_shipping", True) else 0
    return int(value)


def _rest_shipping_line(line: dict[str, Any]) -> ShippingLine:
    price = _rest_money(line, "price")
    has_discounted = line.get("discounted_price") is not None or line.get("discounted_price_set")
    return ShippingLine(
        code=_text(line.get("code")),
        title=line.get("title") or "",
        price=price,
        discounted_price=_rest_money(line, "discounted_price") if has_discounted else price,
        tax_lines=_rest_tax_lines(line.get("tax_lines")),
    )


def _rest_customer(data: dict[str, Any] | None) -> ShopifyCustomer | None:
    if not data:
        return None
    return ShopifyCustomer(
        id=_int_or_none(data.get("id")),
        email=_text(data.get("email")),
        first_name=_text(data.get("first_name")),
        last_name=_text(data.get("last_name")),
    )


def _rest_payment(data: dict[str, Any]) -> Payment:
    return Payment(
        gateway=(data.get("gateway") or "").lower(),
        kind=(data.get("kind") or "").lower(),
        status=(data.get("status") or "").lower(),
        amount=_rest_money(data, "amount"),
    )


def _rest_email(order: dict[str, Any], customer: ShopifyCustomer | None) -> str | None:
    fallback = customer.email if customer else None
    return _text(order.get("email")) or _text(order.get("contact_email")) or fallback


def _rest_order_fields(order: dict[str, Any]) -> dict[str, Any]:
    order_id = int(order["id"])
    customer = _rest_customer(order.get("customer"))
    shipping_lines = [_rest_shipping_line(s) for s in order.get("shipping_lines") or []]
    shipping_bag = order.get("total_shipping_price_set")
    total_shipping = (
        cents(shipping_bag["shop_money"]["amount"])
        if isinstance(shipping_bag, dict) and shipping_bag.get("shop_money")
        else total(s.price for s in shipping_lines)
    )
    return {
        "id": order_id,
        "gid": order.get("admin_graphql_api_id") or f"gid://shopify/Order/{order_id}",
        "name": order.get("name") or f"#{order.get('order_number', order_id)}",
        "email": _text(order.get("email"))
        or _text(order.get("contact_email"))
        or (customer and customer.email),
        "created_at": order["created_at"],
        "updated_at": order.get("updated_at") or order["created_at"],
        "processed_at": order.get("processed_at") or order["created_at"],
        "cancelled_at": order.get("cancelled_at"),
        "financial_status": (order.get("financial_status") or "unknown").lower(),
        "fulfillment_status": order.get("fulfillment_status") or None,
        "tags": _split_tags(order.get("tags")),
        "taxes_included": bool(order.get("taxes_included", False)),
        "currency": order.get("currency") or "",
        "customer": customer,
        "shipping_address": _rest_address(order.get("shipping_address")),
        "billing_address": _rest_address(order.get("billing_address")),
        "line_items": [_rest_line_item(i) for i in order.get("line_items") or []],
        "shipping_lines": shipping_lines,
        "tax_lines": _rest_tax_lines(order.get("tax_lines")),
        # Webhook/REST order JSON carries no transactions; callers may embed them under the same key.
        "payments": [_rest_payment(t) for t in order.get("transactions") or []],
        "total_price": _rest_money(order, "total_price"),
        "subtotal_price": _rest_money(order, "subtotal_price"),
        "total_tax": _rest_money(order, "total_tax"),
        "total_discounts": _rest_money(order, "total_discounts"),
        "total_shipping": total_shipping,
        "test": bool(order.get("test", False)),
        "presentment_currency": order.get("presentment_currency") or order.get("currency") or "",
        "current_total_price": _rest_optional_money(order, "current_total_price"),
        "current_total_tax": _rest_optional_money(order, "current_total_tax"),
        "total_tip": _rest_money(order, "total_tip_received"),
        "total_duties": _rest_optional_money(order, "current_total_duties") or ZERO,
        "duties_included": bool(order.get("duties_included", False)),
    }


def _rest_optional_money(order: dict[str, Any], key: str) -> Decimal | None:
    if order.get(key) is None and not order.get(f"{key}_set"):
        return None
    return _rest_money(order, key)


# --- GraphQL --------------------------------------------------------------------------------------


def _gql_money(bag: dict[str, Any] | None) -> Decimal:
    if not bag:
        return ZERO
    return cents(bag["shopMoney"]["amount"])


def gid_to_int(gid: str | int | None) -> int | None:
    """`gid://shopify/Order/123` -> 123 (also accepts a bare id or a GID with a query string)."""
    if gid is None or gid == "":
        return None
    tail = str(gid).rsplit("/", 1)[-1].split("?", 1)[0]
    return int(tail)


def _gql_tax_lines(items: list[dict[str, Any]] | None) -> list[TaxLine]:
    return [
        TaxLine(
            title=t.get("title") or "",
            rate=None if t.get("rate") is None else to_decimal(t["rate"]),
            amount=_gql_money(t.get("priceSet")),
        )
        for t in items or []
    ]


def _gql_address(data: dict[str, Any] | None) -> Address | None:
    if not data:
        return None
    return Address(
        first_name=_text(data.get("firstName")),
        last_name=_text(data.get("lastName")),
        name=_text(data.get("name")),
        company=_text(data.get("company")),
        address1=_text(data.get("address1")),
        address2=_text(data.get("address2")),
        city=_text(data.get("city")),
        province=_text(data.get("province")),
        province_code=_text(data.get("provinceCode")),
        zip=_text(data.get("zip")),
        country_code=_text(data.get("countryCodeV2")),
        phone=_text(data.get("phone")),
    )


def _gql_line_item(node: dict[str, Any]) -> ShopifyLineItem:
    quantity = int(node.get("quantity") or 0)
    current = node.get("currentQuantity")
    variant = node.get("variant") or {}
    return ShopifyLineItem(
        id=int(str(node["id"]).rsplit("/", 1)[-1]),
        gid=node["id"],
        sku=_text(node.get("sku")),
        title=node.get("title") or node.get("name") or "",
        quantity=quantity,
        current_quantity=quantity if current is None else int(current),
        unit_price=_gql_money(node.get("originalUnitPriceSet")),
        total_discount=total(
            _gql_money(a.get("allocatedAmountSet")) for a in node.get("discountAllocations") or []
        ),
        tax_lines=_gql_tax_lines(node.get("taxLines")),
        requires_shipping=bool(node.get("requiresShipping", True)),
        is_gift_card=bool(node.get("isGiftCard", False)),
        variant_id=_int_or_none(variant.get("legacyResourceId")) or gid_to_int(variant.get("id")),
        unfulfilled_quantity=_gql_unfulfilled(node, quantity if current is None else int(current)),
        has_product=bool(variant) or bool(_text(node.get("sku"))),
    )


def _gql_unfulfilled(node: dict[str, Any], current: int) -> int:
    value = node.get("unfulfilledQuantity")
    if value is None:
        return current if node.get("requiresShipping", True) else 0
    return int(value)


def _gql_shipping_line(node: dict[str, Any]) -> ShippingLine:
    price = _gql_money(node.get("originalPriceSet"))
    discounted = node.get("discountedPriceSet")
    return ShippingLine(
        code=_text(node.get("code")),
        title=node.get("title") or "",
        price=price,
        discounted_price=_gql_money(discounted) if discounted else price,
        tax_lines=_gql_tax_lines(node.get("taxLines")),
    )


def _gql_customer(data: dict[str, Any] | None) -> ShopifyCustomer | None:
    if not data:
        return None
    email = (data.get("defaultEmailAddress") or {}).get("emailAddress")
    return ShopifyCustomer(
        id=_int_or_none(data.get("legacyResourceId")) or gid_to_int(data.get("id")),
        email=_text(email),
        first_name=_text(data.get("firstName")),
        last_name=_text(data.get("lastName")),
    )


def _gql_payment(node: dict[str, Any]) -> Payment:
    return Payment(
        gateway=(node.get("gateway") or "").lower(),
        kind=(node.get("kind") or "").lower(),
        status=(node.get("status") or "").lower(),
        amount=_gql_money(node.get("amountSet")),
    )


def _nodes(connection: dict[str, Any] | list | None) -> list[dict[str, Any]]:
    """Items of a connection selected as `{nodes}` or `{edges {node}}`, or of a plain list."""
    if connection is None:
        return []
    if isinstance(connection, list):
        return connection
    if "nodes" in connection:
        return connection["nodes"] or []
    return [edge["node"] for edge in connection.get("edges") or []]


def _graphql_order_fields(node: dict[str, Any]) -> dict[str, Any]:
    customer = _gql_customer(node.get("customer"))
    fulfillment = (node.get("displayFulfillmentStatus") or "").upper()
    return {
        "id": _int_or_none(node.get("legacyResourceId")) or gid_to_int(node["id"]),
        "gid": node["id"],
        "name": node["name"],
        "email": _text(node.get("email")) or (customer.email if customer else None),
        "created_at": node["createdAt"],
        "updated_at": node.get("updatedAt") or node["createdAt"],
        "processed_at": node.get("processedAt") or node["createdAt"],
        "risk": node.get("risk"),
        "cancelled_at": node.get("cancelledAt"),
        "financial_status": (node.get("displayFinancialStatus") or "unknown").lower(),
        "fulfillment_status": _GRAPHQL_FULFILLMENT_STATUS.get(fulfillment),
        "tags": [t.strip() for t in node.get("tags") or [] if t.strip()],
        "taxes_included": bool(node.get("taxesIncluded", False)),
        "currency": node.get("currencyCode") or "",
        "customer": customer,
        "shipping_address": _gql_address(node.get("shippingAddress")),
        "billing_address": _gql_address(node.get("billingAddress")),
        "line_items": [_gql_line_item(n) for n in _nodes(node.get("lineItems"))],
        "shipping_lines": [_gql_shipping_line(n) for n in _nodes(node.get("shippingLines"))],
        "tax_lines": _gql_tax_lines(node.get("taxLines")),
        "payments": [_gql_payment(n) for n in _nodes(node.get("transactions"))],
        "total_price": _gql_money(node.get("totalPriceSet")),
        "subtotal_price": _gql_money(node.get("subtotalPriceSet")),
        "total_tax": _gql_money(node.get("totalTaxSet")),
        "total_discounts": _gql_money(node.get("totalDiscountsSet")),
        "total_shipping": _gql_money(node.get("totalShippingPriceSet")),
        "test": bool(node.get("test", False)),
        "presentment_currency": node.get("presentmentCurrencyCode") or node.get("currencyCode") or "",
        "current_total_price": _gql_optional_money(node, "currentTotalPriceSet"),
        "current_total_tax": _gql_optional_money(node, "currentTotalTaxSet"),
        "total_tip": _gql_money(node.get("totalTipReceivedSet")),
        "total_duties": _gql_money(node.get("currentTotalDutiesSet")),
        "duties_included": bool(node.get("dutiesIncluded", False)),
        "line_items_truncated": _has_next_page(node.get("lineItems")),
    }


def _gql_optional_money(node: dict[str, Any], key: str) -> Decimal | None:
    return _gql_money(node[key]) if node.get(key) else None


def _has_next_page(connection: dict[str, Any] | list | None) -> bool:
    """True when a connection says more nodes exist than were read (a paged reader completes it)."""
    if not isinstance(connection, dict):
        return False
    return bool((connection.get("pageInfo") or {}).get("hasNextPage"))


# --- small helpers --------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """Strip strings; empty strings become None so REST "" and GraphQL null compare equal."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


def _split_tags(tags: str | list[str] | None) -> list[str]:
    if not tags:
        return []
    items = tags.split(",") if isinstance(tags, str) else tags
    return [t.strip() for t in items if t.strip()]
