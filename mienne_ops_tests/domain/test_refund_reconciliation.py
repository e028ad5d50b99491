"""The daily refund reconciliation: matched by NetSuite's key, every difference named with both numbers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from mienne_ops.domain.refund_reconciliation import BookedRefund, CustomerRefund, reconcile_refunds

DAY = date(2026, 12, 5)


def shopify(ref: str, refund_id: str, total: str) -> CustomerRefund:
    return CustomerRefund("shopify", ref, (f"SHOPIFY-REFUND-{refund_id}",), Decimal(total))


def booked(external_id: str, total: str, day: date = DAY, kind: str = "CashRfnd") -> BookedRefund:
    return BookedRefund(external_id, kind, Decimal(total), day)


def test_refunds_booked_to_the_cent_reconcile_even_across_midnight():
    refunds = [shopify("#1001", "11", "12.34"), shopify("#1002", "12", "5.00")]
    books = [booked("SHOPIFY-REFUND-11", "12.34"), booked("SHOPIFY-REFUND-12", "5.00", date(2026, 12, 6))]
    result = reconcile_refunds(DAY, refunds, books)
    assert result.problems == []
    assert (result.refunded, result.booked) == (Decimal("17.34"), Decimal("17.34"))


def test_each_difference_names_both_numbers():
    refunds = [shopify("#1001", "11", "12.34"), shopify("#1002", "12", "5.00")]
    books = [booked("SHOPIFY-REFUND-11", "12.33"), booked("MIENNE-REFUND-9", "7.00")]
    result = reconcile_refunds(DAY, refunds, books)
    reasons = {p.reason: p.message for p in result.problems}
    assert set(reasons) == {"refund_amount_differs", "refund_not_booked", "booked_without_refund"}
    assert "12.34" in reasons["refund_amount_differs"] and "12.33" in reasons["refund_amount_differs"]
    assert "7.00" in reasons["booked_without_refund"]


def test_an_invoiced_orders_customer_refund_and_a_recharge_charge_match_by_key():
    refunds = [
        shopify("#1003", "13", "20.00"),
        CustomerRefund("recharge", "555", ("MIENNE-REFUND-4", "MIENNE-REFUND-6"), Decimal("30.00")),
    ]
    books = [
        booked("SHOPIFY-REFUND-13-PAY", "20.00", kind="CustRfnd"),
        booked("MIENNE-REFUND-4", "10.00"),
        booked("MIENNE-REFUND-6", "20.00"),
    ]
    assert reconcile_refunds(DAY, refunds, books).problems == []


def test_a_refund_waiting_for_billing_is_not_a_difference_and_hand_entries_are_not_judged():
    refunds = [shopify("#1004", "14", "9.99")]
    books = [booked("HAND-ENTERED-1", "3.00")]
    result = reconcile_refunds(DAY, refunds, books, frozenset({"SHOPIFY-REFUND-14"}))
    assert result.problems == [] and result.waiting == 1
