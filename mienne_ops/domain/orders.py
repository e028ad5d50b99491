"""Flow A, pure part: a Shopify order becomes a NetSuite sales order plan.

`plan_sales_order` validates the order (the gate before anything is written to NetSuite) and maps it
to a `SalesOrderPlan`: Shopify's own amounts carried verbatim — line amounts after Shopify's discount
allocations, tax as one line holding Shopify's tax amount (never recomputed at a rate), a gift card
as a negative payment line — and a totals check that must reconcile with Shopify's total within a
cent tolerance, otherwise the order goes to the exceptions queue instead of NetSuite.
`SalesOrderPlan.record` renders the JSON body for `PUT salesOrder/eid:<external_id>`.
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from mienne_ops.domain.money import ZERO, cents, total, wire
from mienne_ops.domain.shopify import Address, ShopifyLineItem, ShopifyOrder
from mienne_ops.errors import InvalidRecordError

SYSTEM = "shopify"
PENDING_FULFILLMENT = "B"


def sales_order_external_id(shopify_order_id: int) -> str:
    return f"shopify-order-{shopify_order_id}"


def customer_external_id(order: ShopifyOrder) -> str:
    """Stable NetSuite customer externalId: the Shopify customer id, or a hash of a guest's email.

    Hashing keeps the guest's email out of ids and logs while still folding repeat guest orders
    onto one NetSuite customer.
    """
    if order.customer and order.customer.id:
        return f"shopify-customer-{order.customer.id}"
    email = _email(order)
    if not email:
        raise _invalid(order, "missing_email", "order has no email, cannot identify a guest customer")
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]
    return f"shopify-guest-{digest}"


class OrderMappingConfig(BaseModel):
    """The account-specific tables flow A maps through."""

    model_config = ConfigDict(frozen=True)

    sku_item_ids: dict[str, int]
    ship_methods: dict[str, int]  # Shopify shipping code, or lower-cased title -> NetSuite shipMethod
    default_ship_method_id: int
    location_id: int
    tax_item_id: int
    shipping_cost_field: str = "shippingCost"
    gift_card_item_id: int  # a NetSuite "Payment" item: gift cards are a payment, not a discount
    # Reserved for accounts that book discounts on their own line; today allocated discounts are
    # carried inside the line amounts, which is what Shopify charged.
    discount_item_id: int | None = None
    total_tolerance: Decimal = Decimal("0.01")
    paid_statuses: set[str] = Field(default_factory=lambda: {"paid"})
    # Shopify timestamps are instants; the transaction date is taken in the books' time zone so
    # REST (shop offset) and GraphQL (UTC) copies of one order give the same tranDate.
    tran_date_timezone: str = "UTC"


class CustomerPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    external_id: str
    email: str
    first_name: str | None
    last_name: str | None


class SalesOrderLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    shopify_line_id: int
    sku: str
    item_id: int
    quantity: int
    rate: Decimal
    amount: Decimal


class SalesOrderPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    external_id: str
    shopify_order_id: int
    shopify_name: str
    tran_date: date
    customer: CustomerPlan
    lines: list[SalesOrderLine]
    tax_total: Decimal
    shipping_total: Decimal
    gift_card_total: Decimal
    expected_total: Decimal  # what NetSuite's SO total should come to (after the gift card)
    ship_method_id: int
    location_id: int
    tax_item_id: int
    gift_card_item_id: int
    shipping_cost_field: str = "shippingCost"
    shipping_address: Address
    email: str

    def record(self, entity_id: str) -> dict:
        """JSON body for `PUT /record/v1/salesOrder/eid:<external_id>` (netsuite.md §8)."""
        location = {"id": str(self.location_id)}
        items = [
            {
                "item": {"id": str(line.item_id)},
                "quantity": line.quantity,
                "rate": wire(line.rate),
                "amount": wire(line.amount),
                "location": location,
                "custcol_shopify_line_id": str(line.shopify_line_id),
            }
            for line in self.lines
        ]
        if self.tax_total:
            items.append(_single_amount_line(self.tax_item_id, self.tax_total))
        if self.gift_card_total:
            items.append(_single_amount_line(self.gift_card_item_id, -self.gift_card_total))
        return {
            "entity": {"id": str(entity_id)},
            "tranDate": self.tran_date.isoformat(),
            "otherRefNum": self.shopify_name,
            "memo": f"Shopify order {self.shopify_name}",
            "orderStatus": {"id": PENDING_FULFILLMENT},
            "location": location,
            "shipMethod": {"id": str(self.ship_method_id)},
            self.shipping_cost_field: wire(self.shipping_total),
            "shippingAddress": _address_subrecord(self.shipping_address),
            "email": self.email,
            "custbody_sent_to_3pl": False,
            "custbody_shopify_order_id": str(self.shopify_order_id),
            "item": {"items": items},
        }


def customer_record(customer: CustomerPlan) -> dict:
    """JSON body for `PUT /record/v1/customer/eid:<external_id>`."""
    # NetSuite requires a last name on a person; a guest who gave none is still a valid customer.
    return {
        "email": customer.email,
        "firstName": customer.first_name or "",
        "lastName": customer.last_name or "Shopify customer",
        "isPerson": True,
    }


# --- validation -----------------------------------------------------------------------------------


def validate_order(order: ShopifyOrder, config: OrderMappingConfig) -> None:
    """Raise InvalidRecordError (with a machine-readable reason) unless the order may be booked."""
    _check_status(order, config)
    _require_email(order)
    _require_shipping_address(order)
    _check_lines(order, config)
    _check_totals(order, config)


def _check_status(order: ShopifyOrder, config: OrderMappingConfig) -> None:
    if order.cancelled_at is not None:
        raise _invalid(order, "cancelled", "order is cancelled")
    if order.financial_status not in config.paid_statuses:
        raise _invalid(order, "not_paid", f"financial status is {order.financial_status!r}")
    if order.fulfillment_status == "fulfilled":
        raise _invalid(order, "already_fulfilled", "order is already fulfilled in Shopify")


def _check_lines(order: ShopifyOrder, config: OrderMappingConfig) -> None:
    live = _live_lines(order)
    if not live:
        raise _invalid(order, "zero_quantity", "every line item has a current quantity of 0")
    if not any(_is_shippable(line) for line in live):
        raise _invalid(order, "no_shippable_lines", "no line item requires shipping")
    missing = [str(line.id) for line in live if not line.sku]
    if missing:
        raise _invalid(order, "missing_sku", f"line items without a SKU: {', '.join(missing)}")
    unknown = sorted({line.sku or "" for line in live if line.sku not in config.sku_item_ids})
    if unknown:
        raise _invalid(order, "unknown_sku", f"SKUs not mapped to a NetSuite item: {', '.join(unknown)}")


def _check_totals(order: ShopifyOrder, config: OrderMappingConfig) -> None:
    lines = _plan_lines(order, config)
    computed = total(line.amount for line in lines) + _shipping_total(order) + _tax_total(order)
    reference = _reference_total(order)
    if abs(computed - reference) > config.total_tolerance:
        raise _invalid(
            order,
            "total_mismatch",
            f"computed total {computed} differs from Shopify total {reference} "
            f"by more than {config.total_tolerance}",
        )


# --- planning -------------------------------------------------------------------------------------


def plan_sales_order(order: ShopifyOrder, config: OrderMappingConfig) -> SalesOrderPlan:
    """Validate and map a Shopify order to the NetSuite sales order to upsert."""
    validate_order(order, config)
    lines = _plan_lines(order, config)
    shipping = _shipping_total(order)
    tax = _tax_total(order)
    gift_card = order.gift_card_amount
    return SalesOrderPlan(
        external_id=sales_order_external_id(order.id),
        shopify_order_id=order.id,
        shopify_name=order.name,
        tran_date=order.created_at.astimezone(ZoneInfo(config.tran_date_timezone)).date(),
        customer=_customer_plan(order),
        lines=lines,
        tax_total=tax,
        shipping_total=shipping,
        gift_card_total=gift_card,
        expected_total=total(line.amount for line in lines) + shipping + tax - gift_card,
        ship_method_id=_ship_method_id(order, config),
        location_id=config.location_id,
        tax_item_id=config.tax_item_id,
        gift_card_item_id=config.gift_card_item_id,
        shipping_cost_field=config.shipping_cost_field,
        shipping_address=_require_shipping_address(order),
        email=_require_email(order),
    )


def _plan_lines(order: ShopifyOrder, config: OrderMappingConfig) -> list[SalesOrderLine]:
    return [
        _plan_line(line, config.sku_item_ids[line.sku or ""], order.taxes_included)
        for line in _live_lines(order)
    ]


def _plan_line(line: ShopifyLineItem, item_id: int, taxes_included: bool) -> SalesOrderLine:
    amount = _current_share(_line_net_total(line, taxes_included), line)
    # The rate is rounded to cents; the amount stays exact, so any rounding remainder lives in the
    # amount (which is what Shopify charged), never in the rate.
    rate = cents(amount / line.current_quantity)
    return SalesOrderLine(
        shopify_line_id=line.id,
        sku=line.sku or "",
        item_id=item_id,
        quantity=line.current_quantity,
        rate=rate,
        amount=amount,
    )


def _line_net_total(line: ShopifyLineItem, taxes_included: bool) -> Decimal:
    """Ordered quantity × price − Shopify's discount allocations (− the line's tax if included)."""
    net = cents(line.unit_price * line.quantity) - line.total_discount
    if taxes_included:
        net -= line.tax_amount
    return cents(net)


def _current_share(amount: Decimal, line: ShopifyLineItem) -> Decimal:
    """The part of a whole-line amount that belongs to the quantity still on the order."""
    if line.current_quantity == line.quantity:
        return amount
    return cents(amount * line.current_quantity / line.quantity)


def _tax_total(order: ShopifyOrder) -> Decimal:
    """Shopify's tax amount; after edits/removals, the remaining lines' share of their own tax."""
    if not _has_removed_quantity(order):
        return order.total_tax
    line_tax = total(_current_share(line.tax_amount, line) for line in _live_lines(order))
    return line_tax + total(s.tax_amount for s in order.shipping_lines)


def _shipping_total(order: ShopifyOrder) -> Decimal:
    """Shipping charged after shipping discounts (net of its tax when prices include tax)."""
    charged = total(s.discounted_price for s in order.shipping_lines)
    if order.taxes_included:
        charged -= total(s.tax_amount for s in order.shipping_lines)
    return cents(charged)


def _reference_total(order: ShopifyOrder) -> Decimal:
    """Shopify's `total_price`, less the value of quantities removed since the order was placed.

    `total_price` is the order as placed; removed quantities are subtracted at their own share of
    the line's discounted price and tax, so the comparison stays like-for-like.
    """
    removed = ZERO
    for line in order.line_items:
        if line.current_quantity >= line.quantity or line.quantity == 0:
            continue
        gross = cents(line.unit_price * line.quantity) - line.total_discount
        if not order.taxes_included:
            gross += line.tax_amount
        removed += gross - _current_share(gross, line)
    return cents(order.total_price - removed)


def _ship_method_id(order: ShopifyOrder, config: OrderMappingConfig) -> int:
    for line in order.shipping_lines:
        for key in (line.code, line.title.lower()):
            if key and key in config.ship_methods:
                return config.ship_methods[key]
    return config.default_ship_method_id


def _customer_plan(order: ShopifyOrder) -> CustomerPlan:
    customer = order.customer
    fallback = order.billing_address or order.shipping_address
    first = (customer.first_name if customer else None) or (fallback.first_name if fallback else None)
    last = (customer.last_name if customer else None) or (fallback.last_name if fallback else None)
    return CustomerPlan(
        external_id=customer_external_id(order),
        email=_require_email(order),
        first_name=first,
        last_name=last,
    )


# --- helpers --------------------------------------------------------------------------------------


def _live_lines(order: ShopifyOrder) -> list[ShopifyLineItem]:
    return [line for line in order.line_items if line.current_quantity > 0]


def _is_shippable(line: ShopifyLineItem) -> bool:
    return line.requires_shipping and not line.is_gift_card


def _has_removed_quantity(order: ShopifyOrder) -> bool:
    return any(line.current_quantity < line.quantity for line in order.line_items)


def _email(order: ShopifyOrder) -> str | None:
    return order.email or (order.customer.email if order.customer else None)


def _require_email(order: ShopifyOrder) -> str:
    email = _email(order)
    if not email:
        raise _invalid(order, "missing_email", "order has no email address")
    return email


def _require_shipping_address(order: ShopifyOrder) -> Address:
    address = order.shipping_address
    if address is None or not address.is_shippable:
        raise _invalid(
            order, "missing_shipping_address", "shipping address is missing address1, city or country"
        )
    return address


def _single_amount_line(item_id: int, amount: Decimal) -> dict:
    return {"item": {"id": str(item_id)}, "quantity": 1, "rate": wire(amount), "amount": wire(amount)}


def _address_subrecord(address: Address) -> dict:
    return {
        "addressee": address.full_name,
        "addr1": address.address1 or "",
        "addr2": address.address2 or "",
        "city": address.city or "",
        "state": address.province_code or address.province or "",
        "zip": address.zip or "",
        "country": {"id": address.country_code or ""},
        "addrPhone": address.phone or "",
    }


def _invalid(order: ShopifyOrder, reason: str, message: str) -> InvalidRecordError:
    # The order is named by its Shopify name and id only: never the customer's details.
    return InvalidRecordError(
        reason,
        message,
        system=SYSTEM,
        operation="plan_sales_order",
        record=f"{order.name} ({order.id})",
    )
