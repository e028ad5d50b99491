"""Flow A, pure part: a Shopify order becomes a NetSuite sales order plan.

`plan_sales_order` validates the order (the gate before anything is written to NetSuite) and maps it
to a `SalesOrderPlan`. Shopify's own amounts are carried verbatim: line amounts after Shopify's
discount allocations, tax as one line holding Shopify's tax amount (never recomputed at a rate), a
gift-card *payment* as a negative payment line. Each kind of money has its own NetSuite item: products
on their SKU's item, gift-card *purchases*, tips, duties, tax and a rounding line on service items
(`OrderMappingConfig`). Every line is sent with ``rate × quantity = amount`` exactly, because
NetSuite recomputes the amount from the rate; the sub-cent remainders of the rates, and a gap to
Shopify's total within `total_tolerance` (one number, from `BusinessRules`), are booked on the one
rounding line, so NetSuite's total equals Shopify's to the cent and nothing is absorbed silently. A
larger gap quarantines the order (`total_mismatch`, both numbers in the message).

What goes to the 3PL is decided here too: each product line carries the quantity DCL must ship
(`dcl_quantity`, the NetSuite line column ``custcol_dcl_quantity``): Shopify's unfulfilled quantity
of a line that needs shipping, so lines fulfilled elsewhere (POS, another location), removed by an
edit, digital or gift cards stay on the sales order (they are sold) but never reach DCL.

`SalesOrderPlan.record` renders the JSON body for `PUT salesOrder/eid:<external_id>`.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from mienne_ops.domain.money import ZERO, cents, total, wire
from mienne_ops.domain.shopify import Address, ShopifyLineItem, ShopifyOrder
from mienne_ops.errors import InvalidRecordError

SYSTEM = "shopify"
PENDING_FULFILLMENT = "B"
DCL_QUANTITY_FIELD = "custcol_dcl_quantity"

# Line roles on the sales order.
PRODUCT, GIFT_CARD_SALE, TIP = "product", "gift_card_sale", "tip"

# "PO Box 12", "P.O. Box", "POB 4", "Post Office Box", "Postal Box", Canada's "Case postale"/"C.P. 12"
# and "Boîte postale": the carriers that cannot deliver there (UPS, FedEx) must not get the parcel.
_PO_BOX = re.compile(
    r"\b(p\.?\s*o\.?\s*box|pobox|p\.?\s*o\.?\s*b\.?\s*\d|post\s+office\s+box|postal\s+box"
    r"|case\s+postale|c\.\s*p\.\s*\d|bo[iî]te\s+postale)",
    re.IGNORECASE,
)


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


def is_po_box(address: Address | None) -> bool:
    """Whether the street lines are a post-office box (what UPS and FedEx do not deliver to)."""
    if address is None:
        return False
    return any(_PO_BOX.search(line or "") for line in (address.address1, address.address2))


class OrderMappingConfig(BaseModel):
    """The account-specific tables and policies flow A maps through (built from `BusinessRules`)."""

    model_config = ConfigDict(frozen=True)

    sku_item_ids: dict[str, int]
    ship_methods: dict[str, int]  # Shopify shipping code, or lower-cased title -> NetSuite shipMethod
    location_id: int
    tax_item_id: int
    shipping_cost_field: str = "shippingCost"
    gift_card_item_id: int  # a NetSuite "Payment" item: gift cards are a payment, not a discount
    # Reserved for accounts that book discounts on their own line; today allocated discounts are
    # carried inside the line amounts, which is what Shopify charged.
    discount_item_id: int | None = None
    gift_card_sale_item_id: int  # a gift card *bought* on the order: a liability, never shipped
    tip_item_id: int
    duty_item_id: int
    rounding_item_id: int  # sub-cent rate remainders and a within-tolerance gap to Shopify's total
    # The largest gap between the planned total and Shopify's that is booked on the rounding line;
    # above it the order is quarantined. No default here: `BusinessRules.total_tolerance` says it.
    total_tolerance: Decimal
    paid_statuses: set[str] = Field(default_factory=lambda: {"paid", "partially_refunded"})
    # Shopify timestamps are instants; the transaction date is the shop's calendar day, so an order
    # at 22:30 in New York on 31 March is booked on 31 March, not on 1 April (UTC).
    tran_date_timezone: str = "America/New_York"
    # PO boxes: ship methods whose carrier delivers to them (USPS, Canada Post); another method on a
    # PO-box address is switched to the country's method here, or quarantined when there is none.
    po_box_ship_method_ids: set[int] = Field(default_factory=set)
    po_box_ship_method_by_country: dict[str, int] = Field(default_factory=dict)
    # Destinations the 3PL ships to; any other country is quarantined (`unsupported_destination`).
    allowed_countries: set[str] = Field(default_factory=lambda: {"US", "CA"})
    subsidiary_id: int | None = None  # OneWorld: new customers' primary subsidiary
    # Shopify reports every order in the shop's currency (presentment money aside); an order in
    # another one means the shop changed currency or the payload is not Shopify's: a person looks.
    shop_currency: str = "USD"
    # Units on one line above which the order is held for a person (a typo, a bot, a reseller):
    # 10^9 units would otherwise go to DCL and empty the stock table. Wholesale accounts raise it.
    max_line_quantity: int = 100


class CustomerPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    external_id: str
    email: str
    first_name: str | None
    last_name: str | None


class SalesOrderLine(BaseModel):
    """One item line: a product, a gift card sold, or a tip; ``rate × quantity == amount``."""

    model_config = ConfigDict(frozen=True)

    shopify_line_id: int | None
    sku: str
    item_id: int
    quantity: int
    rate: Decimal
    amount: Decimal
    role: str = PRODUCT
    dcl_quantity: int = 0  # what the 3PL ships of this line (0: fulfilled elsewhere / not shipped)


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
    duty_total: Decimal = ZERO
    rounding: Decimal = ZERO  # rate remainders + the within-tolerance gap to Shopify's total
    gift_card_total: Decimal
    shopify_total: Decimal  # Shopify's current total (after edits and refunds)
    expected_total: Decimal  # what NetSuite's SO total must come to (Shopify's, less gift cards)
    ship_method_id: int
    location_id: int
    tax_item_id: int
    gift_card_item_id: int
    duty_item_id: int = 0
    rounding_item_id: int = 0
    shipping_cost_field: str = "shippingCost"
    shipping_address: Address
    email: str

    def record(self, entity_id: str) -> dict:
        """JSON body for `PUT /record/v1/salesOrder/eid:<external_id>` (netsuite.md §8)."""
        location = {"id": str(self.location_id)}
        items = [_item_line(line, location) for line in self.lines]
        if self.duty_total:
            items.append(_single_amount_line(self.duty_item_id, self.duty_total))
        if self.tax_total:
            items.append(_single_amount_line(self.tax_item_id, self.tax_total))
        if self.rounding:
            items.append(_single_amount_line(self.rounding_item_id, self.rounding))
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

    def line_summary(self) -> list[dict]:
        """The lines as the ledger keeps them: what an edit after dispatch is compared against."""
        return [
            {"sku": line.sku, "quantity": line.quantity, "dcl_quantity": line.dcl_quantity}
            for line in self.lines
        ]


def _item_line(line: SalesOrderLine, location: dict) -> dict:
    body: dict = {
        "item": {"id": str(line.item_id)},
        "quantity": line.quantity,
        "rate": wire(line.rate),
        "amount": wire(line.amount),
        "location": location,
        DCL_QUANTITY_FIELD: line.dcl_quantity,
    }
    if line.shopify_line_id is not None:
        body["custcol_shopify_line_id"] = str(line.shopify_line_id)
    return body


def customer_record(customer: CustomerPlan, subsidiary_id: int | None = None) -> dict:
    """JSON body for `PUT /record/v1/customer/eid:<external_id>`.

    In a OneWorld account a customer must belong to a subsidiary (Oracle: "you must assign a
    subsidiary to each entity record before you can enter transactions for the entity").
    """
    # NetSuite requires a last name on a person; a guest who gave none is still a valid customer.
    body: dict = {
        "email": customer.email,
        "firstName": customer.first_name or "",
        "lastName": customer.last_name or "Shopify customer",
        "isPerson": True,
    }
    if subsidiary_id is not None:
        body["subsidiary"] = {"id": str(subsidiary_id)}
    return body


# --- validation -----------------------------------------------------------------------------------


def validate_order(order: ShopifyOrder, config: OrderMappingConfig) -> None:
    """Raise InvalidRecordError (with a machine-readable reason) unless the order may be booked."""
    plan_sales_order(order, config)


def _check_status(order: ShopifyOrder, config: OrderMappingConfig) -> None:
    if order.currency.upper() != config.shop_currency.upper():
        raise _invalid(
            order,
            "unexpected_currency",
            f"order is in {order.currency or 'no currency'}; the shop books in {config.shop_currency}"
            " (BusinessRules.shop_currency)",
        )
    if order.cancelled_at is not None:
        raise _invalid(order, "cancelled", "order is cancelled")
    if order.financial_status not in config.paid_statuses:
        raise _invalid(order, "not_paid", f"financial status is {order.financial_status!r}")
    if order.fulfillment_status == "fulfilled":
        raise _invalid(order, "already_fulfilled", "order is already fulfilled in Shopify")
    if order.line_items_truncated:
        # Booking the lines read so far would ship and invoice part of the order with no error.
        raise _invalid(
            order,
            "truncated_line_items",
            f"only {len(order.line_items)} line items were read; the order has more",
        )


def _check_destination(order: ShopifyOrder, address: Address, config: OrderMappingConfig) -> None:
    country = (address.country_code or "").upper()
    if country not in config.allowed_countries:
        allowed = ", ".join(sorted(config.allowed_countries))
        raise _invalid(
            order,
            "unsupported_destination",
            f"ships to {country}; the 3PL ships only to {allowed} (BusinessRules.allowed_countries)",
        )


def _check_lines(order: ShopifyOrder, config: OrderMappingConfig) -> None:
    live = _live_lines(order)
    if not live:
        raise _invalid(order, "zero_quantity", "every line item has a current quantity of 0")
    products = [line for line in live if _role(line, order) == PRODUCT]
    if not any(_is_shippable(line) for line in products):
        raise _invalid(order, "no_shippable_lines", "no line item requires shipping")
    missing = [str(line.id) for line in products if not line.sku]
    if missing:
        raise _invalid(order, "missing_sku", f"line items without a SKU: {', '.join(missing)}")
    _check_amounts(order, live)
    _check_quantities(order, products, config)
    unknown = sorted({line.sku or "" for line in products if line.sku not in config.sku_item_ids})
    if unknown:
        raise _invalid(order, "unknown_sku", f"SKUs not mapped to a NetSuite item: {', '.join(unknown)}")
    if not any(_dcl_quantity(line, order) for line in products):
        raise _invalid(
            order,
            "nothing_to_ship",
            "every line that ships was already fulfilled elsewhere (POS, another location)",
        )
    if order.duties_included and order.total_duties:
        raise _invalid(
            order,
            "duties_included",
            "line prices include duties (duty-inclusive pricing): book this order by hand",
        )


def _check_amounts(order: ShopifyOrder, live: list[ShopifyLineItem]) -> None:
    """No negative money anywhere: Shopify never reports one, so it is a forged or broken payload,
    and booking it would credit the customer on a sales order."""
    negative = [f"line {line.id} price {line.unit_price}" for line in live if line.unit_price < 0]
    negative += [f"line {line.id} discount {line.total_discount}" for line in live if line.total_discount < 0]
    negative += [f"shipping {s.price}" for s in order.shipping_lines if s.price < 0 or s.discounted_price < 0]
    negative += [f"order total {order.total_price}"] if order.total_price < 0 else []
    if negative:
        raise _invalid(order, "negative_amount", "negative amounts: " + ", ".join(negative))


def _check_quantities(
    order: ShopifyOrder, products: list[ShopifyLineItem], config: OrderMappingConfig
) -> None:
    absurd = [
        f"{line.sku or line.id} × {line.current_quantity}"
        for line in products
        if line.current_quantity > config.max_line_quantity or line.quantity < 0
    ]
    if absurd:
        raise _invalid(
            order,
            "absurd_quantity",
            f"quantities beyond {config.max_line_quantity} per line (BusinessRules.max_line_quantity):"
            f" {', '.join(absurd)}",
        )


# --- planning -------------------------------------------------------------------------------------


def plan_sales_order(order: ShopifyOrder, config: OrderMappingConfig) -> SalesOrderPlan:
    """Validate and map a Shopify order to the NetSuite sales order to upsert."""
    _check_status(order, config)
    email = _require_email(order)
    address = _require_shipping_address(order)
    _check_destination(order, address, config)
    _check_lines(order, config)
    ship_method_id = _ship_method_id(order, config, address)
    lines, exact_total = _plan_lines(order, config)
    shipping = _shipping_total(order)
    tax = _tax_total(order)
    duties = order.total_duties
    reference = _reference_total(order)
    _check_gap(order, config, exact_total + shipping + tax + duties, reference)
    booked = total(line.amount for line in lines) + shipping + tax + duties
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
        duty_total=duties,
        rounding=reference - booked,
        gift_card_total=gift_card,
        shopify_total=reference,
        expected_total=reference - gift_card,
        ship_method_id=ship_method_id,
        location_id=config.location_id,
        tax_item_id=config.tax_item_id,
        gift_card_item_id=config.gift_card_item_id,
        duty_item_id=config.duty_item_id,
        rounding_item_id=config.rounding_item_id,
        shipping_cost_field=config.shipping_cost_field,
        shipping_address=address,
        email=email,
    )


def _check_gap(
    order: ShopifyOrder, config: OrderMappingConfig, computed: Decimal, reference: Decimal
) -> None:
    """Shopify's amounts must add up to Shopify's total; a gap within the tolerance is booked."""
    gap = reference - computed
    if abs(gap) <= config.total_tolerance:
        return
    why = " (multi-currency: shop money is converted per amount)" if order.is_multi_currency else ""
    raise _invalid(
        order,
        "total_mismatch",
        f"computed total {computed} differs from Shopify total {reference} by {gap}, "
        f"more than the tolerance {config.total_tolerance}{why}",
    )


def _plan_lines(order: ShopifyOrder, config: OrderMappingConfig) -> tuple[list[SalesOrderLine], Decimal]:
    """The item lines, and the exact sum of their amounts before rates were rounded to cents."""
    lines, exact = [], ZERO
    for line in _live_lines(order):
        role = _role(line, order)
        amount = _current_share(_line_net_total(line, order.taxes_included), line)
        exact += amount
        lines.append(_plan_line(line, role, _item_id(line, role, config), amount, order))
    if order.total_tip and not any(line.role == TIP for line in lines):
        # Payloads that do not list the tip as a line (older REST shapes) still carry its amount.
        lines.append(_fixed_line(config.tip_item_id, order.total_tip, TIP))
        exact += order.total_tip
    return lines, exact


def _plan_line(
    line: ShopifyLineItem, role: str, item_id: int, amount: Decimal, order: ShopifyOrder
) -> SalesOrderLine:
    # NetSuite keeps rate × quantity as the amount, so the rate is rounded to cents and the amount
    # sent is exactly rate × quantity; the sub-cent remainder goes to the rounding line.
    rate = cents(amount / line.current_quantity)
    return SalesOrderLine(
        shopify_line_id=line.id,
        sku=line.sku or "",
        item_id=item_id,
        quantity=line.current_quantity,
        rate=rate,
        amount=rate * line.current_quantity,
        role=role,
        dcl_quantity=_dcl_quantity(line, order) if role == PRODUCT else 0,
    )


def _fixed_line(item_id: int, amount: Decimal, role: str) -> SalesOrderLine:
    return SalesOrderLine(
        shopify_line_id=None, sku="", item_id=item_id, quantity=1, rate=amount, amount=amount, role=role
    )


def _item_id(line: ShopifyLineItem, role: str, config: OrderMappingConfig) -> int:
    if role == GIFT_CARD_SALE:
        return config.gift_card_sale_item_id
    if role == TIP:
        return config.tip_item_id
    return config.sku_item_ids[line.sku or ""]


def _role(line: ShopifyLineItem, order: ShopifyOrder) -> str:
    """Gift card bought, tip, or product. A tip is a line of no product, no SKU, nothing to ship,
    on an order that received a tip (Shopify lists tips as line items and in `totalTipReceived`)."""
    if line.is_gift_card:
        return GIFT_CARD_SALE
    if order.total_tip and not line.has_product and not line.sku and not line.requires_shipping:
        return TIP
    return PRODUCT


def _dcl_quantity(line: ShopifyLineItem, order: ShopifyOrder) -> int:
    """What the 3PL must still ship of a line: nothing fulfilled elsewhere, removed, or unshippable."""
    if not _is_shippable(line) or _role(line, order) != PRODUCT:
        return 0
    return max(0, min(line.unfulfilled_quantity, line.current_quantity))


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
    """Shopify's current tax; without it (older payloads), the remaining lines' share of their tax."""
    if order.current_total_tax is not None:
        return order.current_total_tax
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
    """Shopify's current total (after edits and refunds), the figure NetSuite must match.

    Payloads without `current_total_price` fall back to `total_price` less the value of quantities
    removed since the order was placed, at their share of the line's discounted price and tax.
    """
    if order.current_total_price is not None:
        return order.current_total_price
    removed = ZERO
    for line in order.line_items:
        if line.current_quantity >= line.quantity or line.quantity == 0:
            continue
        gross = cents(line.unit_price * line.quantity) - line.total_discount
        if not order.taxes_included:
            gross += line.tax_amount
        removed += gross - _current_share(gross, line)
    return cents(order.total_price - removed)


def _ship_method_id(order: ShopifyOrder, config: OrderMappingConfig, address: Address) -> int:
    """The mapped NetSuite ship method; never a silent default, and never UPS/FedEx to a PO box."""
    method = _mapped_ship_method(order, config)
    if is_po_box(address) and method not in config.po_box_ship_method_ids:
        country = (address.country_code or "").upper()
        replacement = config.po_box_ship_method_by_country.get(country)
        if replacement is None:
            raise _invalid(
                order,
                "po_box_unsupported",
                f"ship method {method} cannot deliver to a PO box and no PO-box method is set for "
                f"{country} (BusinessRules.po_box_ship_method_by_country)",
            )
        return replacement
    return method


def _mapped_ship_method(order: ShopifyOrder, config: OrderMappingConfig) -> int:
    for line in order.shipping_lines:
        for key in (line.code, line.title.lower()):
            if key and key in config.ship_methods:
                return config.ship_methods[key]
    chosen = ", ".join(f"{s.code or '-'} / {s.title}" for s in order.shipping_lines) or "none"
    raise _invalid(
        order, "unmapped_ship_method", f"shipping method not in BusinessRules.ship_methods: {chosen}"
    )


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
    # NetSuite's addressee is the first line of the label: the company when there is one, with the
    # person as attention; otherwise the person.
    person = address.full_name
    return {
        "addressee": address.company or person,
        "attention": person if address.company else "",
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
