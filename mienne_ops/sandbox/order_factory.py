"""Realistic Shopify orders (REST/webhook shape) built from the seed catalog.

Used by the traffic simulator, the end-to-end test and the benchmark. Totals are consistent the way
Shopify's are: line discounts are allocations, taxes are per line and per shipping line, and
``total_price = line items − discounts + shipping + tax`` (or without the tax term when prices include
tax). Some orders pay partly with a gift card. `bad=` builds orders a careful integration must refuse.
`fulfilled_elsewhere=n` marks the first n lines as already fulfilled outside the 3PL (a POS sale or
another location: `fulfillable_quantity` 0, order `fulfillment_status` "partial"); `test=True` is a
test order (bogus gateway), which flow A skips unless told otherwise.
"""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from mienne_ops.sandbox.catalog import Catalog

CENT = Decimal("0.01")
TAX_RATE = Decimal("0.0825")
BAD_KINDS = ("unknown_sku", "missing_address", "zero_quantity", "cancelled")


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _price_set(amount: str, currency: str = "USD") -> dict[str, Any]:
    bag = {"amount": amount, "currency_code": currency}
    return {"shop_money": bag, "presentment_money": bag}


def build_order(
    catalog: Catalog,
    rng: random.Random,
    *,
    line_count: int | None = None,
    bad: str | None = None,
    taxes_included: bool = False,
    gift_card: bool | None = None,
    fulfilled_elsewhere: int = 0,
    test: bool = False,
) -> dict[str, Any]:
    customer = rng.choice(catalog.customers)
    sellable = [s for s in catalog.sellable_skus()]
    count = line_count or rng.choice((1, 1, 2, 2, 3, 4))
    items = rng.sample(sellable, count)
    discount_rate = rng.choice((Decimal(0), Decimal(0), Decimal("0.10"), Decimal("0.15")))
    lines = []
    subtotal = discounts = tax_total = Decimal(0)
    for item in items:
        quantity = rng.choice((1, 1, 1, 2, 3))
        price = Decimal(item.price)
        gross = price * quantity
        discount = (gross * discount_rate).quantize(CENT, rounding=ROUND_HALF_UP)
        taxable_base = gross - discount
        if taxes_included:
            tax = (taxable_base - taxable_base / (1 + TAX_RATE)).quantize(CENT, rounding=ROUND_HALF_UP)
        else:
            tax = (taxable_base * TAX_RATE).quantize(CENT, rounding=ROUND_HALF_UP)
        subtotal += gross
        discounts += discount
        tax_total += tax
        lines.append(
            {
                "variant_id": item.shopify_variant_id,
                "product_id": item.shopify_product_id,
                "sku": item.sku,
                "title": item.title,
                "name": item.title,
                "variant_title": None,
                "quantity": quantity,
                "current_quantity": quantity,
                "fulfillable_quantity": quantity,
                "fulfillment_status": None,
                "price": money(price),
                "price_set": _price_set(money(price)),
                "total_discount": "0.00",
                "grams": item.grams,
                "requires_shipping": True,
                "taxable": True,
                "gift_card": False,
                "product_exists": True,
                "discount_allocations": (
                    [
                        {
                            "amount": money(discount),
                            "amount_set": _price_set(money(discount)),
                            "discount_application_index": 0,
                        }
                    ]
                    if discount
                    else []
                ),
                "tax_lines": [
                    {
                        "title": "State Tax",
                        "price": money(tax),
                        "rate": float(TAX_RATE),
                        "price_set": _price_set(money(tax)),
                        "channel_liable": False,
                    }
                ],
            }
        )
    method = (
        rng.choice(catalog.ship_methods[:3])
        if customer.address["country_code"] == "US"
        else catalog.ship_methods[3]
    )
    shipping = rng.choice((Decimal("0.00"), Decimal("5.95"), Decimal("12.50")))
    shipping_tax = (
        Decimal(0) if taxes_included else (shipping * TAX_RATE).quantize(CENT, rounding=ROUND_HALF_UP)
    )
    tax_total += shipping_tax
    total = subtotal - discounts + shipping + (Decimal(0) if taxes_included else tax_total)
    address = {
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "name": f"{customer.first_name} {customer.last_name}",
        "company": None,
        "address1": customer.address["address1"],
        "address2": customer.address["address2"],
        "city": customer.address["city"],
        "province": customer.address["province_code"],
        "province_code": customer.address["province_code"],
        "zip": customer.address["zip"],
        "country": "United States" if customer.address["country_code"] == "US" else "Canada",
        "country_code": customer.address["country_code"],
        "phone": customer.address["phone"],
    }
    use_gift_card = gift_card if gift_card is not None else rng.random() < 0.1
    gift_amount = min(Decimal("25.00"), total) if use_gift_card else Decimal(0)
    transactions = []
    if gift_amount:
        transactions.append(
            {"kind": "sale", "status": "success", "gateway": "gift_card", "amount": money(gift_amount)}
        )
    if total - gift_amount > 0:
        transactions.append(
            {
                "kind": "sale",
                "status": "success",
                "gateway": "shopify_payments",
                "amount": money(total - gift_amount),
            }
        )
    order: dict[str, Any] = {
        "email": customer.email,
        "currency": "USD",
        "financial_status": "paid",
        "fulfillment_status": None,
        "taxes_included": taxes_included,
        "tags": "",
        "line_items": lines,
        "shipping_lines": [
            {
                "code": method.shopify_code,
                "title": method.title,
                "source": "shopify",
                "price": money(shipping),
                "discounted_price": money(shipping),
                "price_set": _price_set(money(shipping)),
                "tax_lines": (
                    [{"title": "State Tax", "price": money(shipping_tax), "rate": float(TAX_RATE)}]
                    if shipping_tax
                    else []
                ),
            }
        ],
        "shipping_address": address,
        "billing_address": dict(address),
        "customer": {
            "id": customer.shopify_customer_id,
            "email": customer.email,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
        },
        "total_line_items_price": money(subtotal),
        "subtotal_price": money(subtotal - discounts),
        "total_discounts": money(discounts),
        "total_tax": money(tax_total),
        "total_price": money(total),
        "total_price_set": _price_set(money(total)),
        "tax_lines": [{"title": "State Tax", "price": money(tax_total), "rate": float(TAX_RATE)}],
        "discount_codes": [{"code": "RITUAL", "amount": money(discounts), "type": "percentage"}]
        if discounts
        else [],
        "payment_gateway_names": [t["gateway"] for t in transactions],
        "transactions": transactions,
        "source_name": "web",
    }
    for line in lines[:fulfilled_elsewhere]:
        line.update(fulfillable_quantity=0, fulfillment_status="fulfilled")
    if fulfilled_elsewhere:
        order["fulfillment_status"] = "partial"
    if test:
        order["test"] = True
        order["payment_gateway_names"] = ["bogus"]
        for transaction in transactions:
            transaction["gateway"] = "bogus" if transaction["gateway"] != "gift_card" else "gift_card"
    if bad:
        _spoil(order, bad)
    return order


def _spoil(order: dict[str, Any], bad: str) -> None:
    if bad == "unknown_sku":
        order["line_items"][0]["sku"] = "MN-NOT-A-REAL-SKU"
    elif bad == "missing_address":
        order["shipping_address"] = None
    elif bad == "zero_quantity":
        for line in order["line_items"]:
            line["current_quantity"] = 0
            line["fulfillable_quantity"] = 0
    elif bad == "cancelled":
        order["cancelled_at"] = "2026-11-27T09:00:00-05:00"
        order["cancel_reason"] = "customer"
        order["financial_status"] = "voided"
    else:
        raise ValueError(f"unknown bad order kind {bad!r}; choose from {BAD_KINDS}")
