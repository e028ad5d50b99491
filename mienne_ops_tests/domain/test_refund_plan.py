"""What a refund request means on an order: line items and quantities, or why it cannot be met."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from mienne_ops.domain.refund_plan import RefundPlanError, allocate, money_left, plan_refund
from mienne_ops.domain.service_requests import RequestDetails, RequestedLine
from mienne_ops.domain.shopify_money import (
    MoneyLine,
    OrderMoney,
    OrderTransaction,
    SuggestedTransaction,
    allocate_refund,
)


def line(n: int, sku: str, quantity: int, refundable: int) -> MoneyLine:
    return MoneyLine(
        gid=f"gid://shopify/LineItem/{n}",
        sku=sku,
        quantity=quantity,
        refundable_quantity=refundable,
        unfulfilled_quantity=quantity,
        unit_price=Decimal("20.00"),
    )


def sale(
    n: int, amount: str, kind: str = "SALE", gateway: str = "shopify_payments", parent=None
) -> OrderTransaction:
    return OrderTransaction(
        gid=f"gid://shopify/OrderTransaction/{n}",
        kind=kind,
        status="SUCCESS",
        gateway=gateway,
        amount=Decimal(amount),
        parent_gid=parent,
    )


ORDER = OrderMoney(
    id="1001",
    gid="gid://shopify/Order/1001",
    name="#1001",
    currency="USD",
    display_financial_status="PAID",
    display_fulfillment_status="UNFULFILLED",
    tags=[],
    processed_at=datetime(2026, 12, 1, tzinfo=UTC),
    total=Decimal("70.00"),
    total_refunded=Decimal("10.00"),
    lines=[line(1, "TEE", 2, 2), line(2, "CAP", 1, 0), line(3, "TEE", 1, 1)],
    transactions=[
        sale(1, "50.00"),
        sale(2, "20.00", gateway="gift_card"),
        sale(3, "10.00", kind="REFUND", parent="gid://shopify/OrderTransaction/1"),
    ],
    refunds=[],
)


def test_an_sku_on_several_lines_is_taken_from_each_in_turn():
    plan = plan_refund(ORDER, RequestDetails(lines=(RequestedLine(sku="TEE", quantity=3),), shipping=True))
    assert plan.lines == (("gid://shopify/LineItem/1", 2), ("gid://shopify/LineItem/3", 1))
    assert plan.refund_shipping


@pytest.mark.parametrize(
    ("sku", "quantity", "code"),
    [("HAT", 1, "unknown_sku"), ("CAP", 1, "above_refundable"), ("TEE", 4, "above_refundable")],
)
def test_what_cannot_be_met_is_named(sku, quantity, code):
    with pytest.raises(RefundPlanError) as error:
        plan_refund(ORDER, RequestDetails(lines=(RequestedLine(sku=sku, quantity=quantity),)))
    assert error.value.code == code


def test_a_full_refund_takes_every_refundable_unit_and_shipping():
    plan = plan_refund(ORDER, RequestDetails(full=True))
    assert (
        plan.lines == (("gid://shopify/LineItem/1", 2), ("gid://shopify/LineItem/3", 1))
        and plan.refund_shipping
    )


def test_an_amount_alone_is_refunded_from_what_each_payment_still_holds():
    assert money_left(ORDER) == Decimal("60.00")
    chosen = allocate_refund(ORDER, Decimal("45.00"))
    assert [(p.parent_gid, p.amount) for p in chosen] == [
        ("gid://shopify/OrderTransaction/1", Decimal("40.00")),
        ("gid://shopify/OrderTransaction/2", Decimal("5.00")),
    ]
    with pytest.raises(ValueError):
        allocate_refund(ORDER, Decimal("60.01"))


def test_allocation_keeps_the_suggestions_order_and_kind():
    suggestions = [
        SuggestedTransaction(parent_gid="p1", gateway="g", amount=Decimal("9.99"), kind="SUGGESTED_REFUND")
    ]
    (chosen,) = allocate(suggestions, Decimal("5.00"))
    assert (chosen.amount, chosen.kind) == (Decimal("5.00"), "SUGGESTED_REFUND")
