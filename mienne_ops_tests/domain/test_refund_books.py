"""The refund bodies: NetSuite's refund total equals the shop's to the cent (domain.refund_books)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from mienne_ops.domain.refund_books import (
    BookedRefundLine,
    RefundBreakdown,
    cash_refund_body,
    return_authorization_body,
)
from mienne_ops.errors import InvalidRecordError

TAX, SHIPPING_ITEM, ADJUSTMENT = 900, 908, 907

# A cash sale's item lines as `GET cashSale/{id}?expandSubResources=true` shows them.
CASH_SALE_LINES = [
    {
        "line": 1,
        "item": {"id": "1001", "refName": "MN-CREAM-002"},
        "quantity": 3,
        "rate": 75.95,
        "amount": 227.85,
    },
    {
        "line": 2,
        "item": {"id": "1002", "refName": "MN-CLEANSER-003"},
        "quantity": 1,
        "rate": 53.32,
        "amount": 53.32,
    },
    {
        "line": 3,
        "item": {"id": "900", "refName": "SHOPIFY-TAX"},
        "quantity": 1,
        "rate": 22.47,
        "amount": 22.47,
    },
]


def booked_total(body: dict, shipping_field: str = "shippingCost") -> D:
    lines = sum((D(str(item.get("amount", 0))) for item in body["item"]["items"]), D(0))
    return lines + D(str(body[shipping_field]))


def body_for(breakdown: RefundBreakdown, **options) -> dict:
    settings = dict(
        source_lines=CASH_SALE_LINES,
        tax_item_id=TAX,
        shipping_item_id=None,
        shipping_cost_field="shippingCost",
        external_id="shopify-refund-77",
        adjustment_item_id=ADJUSTMENT,
    )
    return cash_refund_body(breakdown, **{**settings, **options})


def test_partial_line_plus_shipping_and_tax_adds_up_to_the_cent():
    # Shopify refunded 2 of 3 creams after a discount (2 × 70.00), 5.00 shipping and 11.55 tax.
    breakdown = RefundBreakdown(
        lines=(BookedRefundLine("MN-CREAM-002", 2, D("140.00")),),
        shipping=D("5.00"),
        tax=D("11.55"),
        total=D("156.55"),
        memo="Shopify refund 77",
    )
    body = body_for(breakdown)
    items = body["item"]["items"]
    assert items[0] == {"orderLine": 1, "quantity": 2, "rate": 70.0, "amount": 140.0}
    assert items[1] == {"orderLine": 3, "quantity": 1, "rate": 11.55, "amount": 11.55}
    assert {"orderLine": 2, "itemReceive": False} in items
    assert body["shippingCost"] == 5.0 and body["externalId"] == "shopify-refund-77"
    assert booked_total(body) == D("156.55")


def test_cents_a_rate_cannot_carry_go_to_the_adjustment_line():
    breakdown = RefundBreakdown(
        lines=(BookedRefundLine("MN-CREAM-002", 3, D("100.00")),),
        shipping=D(0),
        tax=D(0),
        total=D("100.00"),
        memo="",
    )
    body = body_for(breakdown)
    items = body["item"]["items"]
    assert items[0] == {"orderLine": 1, "quantity": 3, "rate": 33.33, "amount": 99.99}
    assert {"item": {"id": "907"}, "quantity": 1, "rate": 0.01, "amount": 0.01} in items
    assert booked_total(body) == D("100.00") and body["shippingCost"] == 0.0


def test_an_amount_only_refund_is_one_adjustment_line_and_excludes_every_source_line():
    breakdown = RefundBreakdown(lines=(), shipping=D(0), tax=D(0), total=D("12.34"), memo="goodwill")
    items = body_for(breakdown)["item"]["items"]
    assert items[0] == {"item": {"id": "907"}, "quantity": 1, "rate": 12.34, "amount": 12.34}
    assert [item for item in items[1:]] == [{"orderLine": n, "itemReceive": False} for n in (1, 2, 3)]


def test_shipping_only_on_a_shipping_item_line_keeps_the_header_at_zero():
    breakdown = RefundBreakdown(lines=(), shipping=D("7.50"), tax=D(0), total=D("7.50"), memo="")
    body = body_for(breakdown, shipping_item_id=SHIPPING_ITEM)
    assert body["shippingCost"] == 0.0
    assert {"item": {"id": "908"}, "quantity": 1, "rate": 7.5, "amount": 7.5} in body["item"]["items"]
    assert booked_total(body) == D("7.50")


def test_unbookable_refunds_say_why():
    unknown = RefundBreakdown(
        lines=(BookedRefundLine("NOPE", 1, D(1)),), shipping=D(0), tax=D(0), total=D(1), memo=""
    )
    with pytest.raises(InvalidRecordError, match="not on the source"):
        body_for(unknown)
    too_many = RefundBreakdown(
        lines=(BookedRefundLine("MN-CLEANSER-003", 2, D(100)),),
        shipping=D(0),
        tax=D(0),
        total=D(100),
        memo="",
    )
    with pytest.raises(InvalidRecordError, match="fewer"):
        body_for(too_many)
    no_item = RefundBreakdown(lines=(), shipping=D(0), tax=D(0), total=D(5), memo="")
    with pytest.raises(InvalidRecordError, match="refund_adjustment_item_id"):
        body_for(no_item, adjustment_item_id=None)
    short = RefundBreakdown(
        lines=(BookedRefundLine("MN-CREAM-002", 1, D(70)),), shipping=D(0), tax=D(0), total=D(60), memo=""
    )
    with pytest.raises(InvalidRecordError, match="exceed"):
        body_for(short)


def test_the_rma_body_is_the_same_refund_approved():
    breakdown = RefundBreakdown(
        lines=(BookedRefundLine("MN-CLEANSER-003", 1, D("53.32")),),
        shipping=D(0),
        tax=D("3.99"),
        total=D("57.31"),
        memo="",
    )
    body = return_authorization_body(
        breakdown,
        source_lines=CASH_SALE_LINES,
        tax_item_id=TAX,
        shipping_item_id=None,
        shipping_cost_field="shippingCost",
        external_id="rma-77",
    )
    assert body["orderStatus"] == {"id": "B"}
    assert booked_total(body) == D("57.31")
