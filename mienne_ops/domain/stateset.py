"""Pure mapping of a Shopify order (and its NetSuite plan) to a StateSet order (stateset-node shape).

The SDK types every amount as a number (``OrderItem``, ``OrderTotals``, ``PaymentDetails``), so the
Decimal amounts go out as JSON numbers (two-decimal money survives the float round trip).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mienne_ops.domain.shopify import ShopifyOrder


def stateset_order_data(order: ShopifyOrder, netsuite_sales_order_id: str | None) -> dict[str, Any]:
    """The `data` of `POST orders` for one Shopify order (amounts as numbers)."""
    address = order.shipping_address
    items = [
        {
            "product_id": line.sku or str(line.variant_id or line.id),
            "variant_id": str(line.variant_id) if line.variant_id else None,
            "quantity": line.current_quantity,
            "unit_price": money(line.unit_price),
            "discount_amount": money(line.total_discount),
            "total_amount": money(line.unit_price * line.current_quantity - line.total_discount),
        }
        for line in order.line_items
        if line.current_quantity > 0
    ]
    data: dict[str, Any] = {
        "customer_id": str(order.customer.id) if order.customer and order.customer.id else order.email,
        "order_number": order.name,
        "items": items,
        "totals": {
            "subtotal": money(order.subtotal_price),
            "shipping_total": money(order.total_shipping),
            "tax_total": money(order.total_tax),
            "discount_total": money(order.total_discounts),
            "grand_total": money(order.total_price),
            "currency": order.currency,
        },
        "payment_details": {
            "payment_method": ",".join(sorted({p.gateway for p in order.payments if p.gateway})) or "shopify",
            "status": order.financial_status,
            "amount_paid": money(order.total_price),
            "currency": order.currency,
        },
        "source": "shopify",
        "metadata": {
            "shopify_order_id": str(order.id),
            "shopify_order_name": order.name,
            "netsuite_sales_order_id": netsuite_sales_order_id,
        },
    }
    if address is not None:
        data["shipping_address"] = {
            "first_name": address.first_name or "",
            "last_name": address.last_name or "",
            "company": address.company,
            "street_address1": address.address1 or "",
            "street_address2": address.address2,
            "city": address.city or "",
            "state": address.province_code or address.province or "",
            "postal_code": address.zip or "",
            "country": address.country_code or "",
        }
    return data


def money(amount: Decimal) -> float:
    return float(round(Decimal(amount), 2))
