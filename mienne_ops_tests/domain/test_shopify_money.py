"""The money models of a Shopify order, parsed from GraphQL nodes, and the plain-amount allocation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mienne_ops.domain.shopify_money import OrderMoney, allocate_refund


def bag(amount: str) -> dict:
    return {"shopMoney": {"amount": amount, "currencyCode": "USD"}}


def tx(number: int, kind: str, gateway: str, amount: str, parent: int | None = None) -> dict:
    return {
        "id": f"gid://shopify/OrderTransaction/{number}",
        "kind": kind,
        "status": "SUCCESS",
        "gateway": gateway,
        "processedAt": "2026-12-01T10:00:00-05:00",
        "amountSet": bag(amount),
        "parentTransaction": {"id": f"gid://shopify/OrderTransaction/{parent}"} if parent else None,
    }


NODE = {
    "id": "gid://shopify/Order/5001",
    "legacyResourceId": "5001",
    "name": "#1001",
    "email": "ava@example.com",
    "tags": ["vip"],
    "currencyCode": "USD",
    "processedAt": "2026-12-01T10:00:00-05:00",
    "cancelledAt": None,
    "displayFinancialStatus": "PARTIALLY_REFUNDED",
    "displayFulfillmentStatus": "UNFULFILLED",
    "customer": {"id": "gid://shopify/Customer/7", "legacyResourceId": "7", "defaultEmailAddress": None},
    "totalPriceSet": bag("50.00"),
    "totalRefundedSet": bag("15.00"),
    "lineItems": {
        "nodes": [
            {
                "id": "gid://shopify/LineItem/1",
                "sku": "A",
                "quantity": 2,
                "refundableQuantity": 1,
                "unfulfilledQuantity": 1,
                "originalUnitPriceSet": bag("25.00"),
            }
        ],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    },
    "transactions": [
        tx(1, "SALE", "gift_card", "10.00"),
        tx(2, "SALE", "shopify_payments", "40.00"),
        tx(3, "REFUND", "gift_card", "10.00", parent=1),
        tx(4, "REFUND", "shopify_payments", "5.00", parent=2),
    ],
    "refunds": [
        {
            "id": "gid://shopify/Refund/9",
            "createdAt": "2026-12-02T10:00:00Z",
            "note": None,
            "totalRefundedSet": bag("15.00"),
            "refundLineItems": {
                "nodes": [
                    {
                        "lineItem": {"id": "gid://shopify/LineItem/1", "sku": "A"},
                        "quantity": 1,
                        "subtotalSet": bag("13.86"),
                        "totalTaxSet": bag("1.14"),
                    }
                ]
            },
            "refundShippingLines": {"nodes": []},
            "transactions": {
                "nodes": [tx(3, "REFUND", "gift_card", "10.00", 1), tx(4, "REFUND", "x", "5.00", 2)]
            },
        }
    ],
}


def test_order_money_parses_the_graphql_node():
    order = OrderMoney.from_graphql(NODE)
    assert (order.id, order.customer_id, order.tags, order.total_refunded) == (
        "5001",
        "7",
        ["vip"],
        Decimal("15.00"),
    )
    assert order.line("gid://shopify/LineItem/1").refundable_quantity == 1
    refund = order.refunds[0]
    assert refund.total == Decimal("15.00") and refund.shipping == Decimal("0.00")
    assert refund.lines[0].subtotal + refund.lines[0].total_tax == Decimal("15.00")
    assert refund.transactions[0].parent_gid == "gid://shopify/OrderTransaction/1"


def test_a_plain_amount_is_spread_over_what_each_payment_has_left():
    order = OrderMoney.from_graphql(NODE)
    allocated = allocate_refund(order, Decimal("20.00"))
    assert [(t.gateway, t.amount, t.parent_gid) for t in allocated] == [
        ("shopify_payments", Decimal("20.00"), "gid://shopify/OrderTransaction/2")
    ]
    with pytest.raises(ValueError):
        allocate_refund(order, Decimal("35.01"))
