"""What the customer and the support team are told: amounts, next steps, a return offered when too late."""

from __future__ import annotations

from decimal import Decimal

from mienne_ops.domain.refund_policy import Decision, Verdict, refused
from mienne_ops.domain.replies import cancelled_reply, note_text, refunded_reply, refused_reply
from mienne_ops.domain.service_requests import RequestKind


def test_a_cancellation_says_the_amount_and_when_the_money_arrives():
    text = cancelled_reply("#1001", Decimal("42.5"), "USD")
    assert "#1001 is cancelled" in text and "42.50 USD" in text and "business days" in text
    assert "refunded" not in cancelled_reply("#1001", Decimal("0"), "USD")


def test_a_refund_reply_names_the_amount_to_the_cent():
    assert "12.30 CAD for order #1002" in refunded_reply("#1002", Decimal("12.3"), "CAD")


def test_a_cancellation_too_late_offers_a_return_and_other_refusals_say_why():
    late = refused_reply(
        RequestKind.CANCEL, "#1003", refused("picking_started", "the warehouse is packing it")
    )
    assert "return" in late and "packing" in late
    window = refused_reply(RequestKind.REFUND, "#1003", refused("outside_refund_window", "60 days passed"))
    assert "60 days passed" in window and "return" not in window


def test_the_internal_note_carries_the_decision_and_every_record_id():
    note = note_text(
        "gorgias:7:refund",
        Decision(Verdict.INVALID, ("not the customer",), "not_the_customer"),
        {"shopify_refund_id": "gid://shopify/Refund/9", "netsuite_refund_id": "311", "empty": None},
    )
    assert note.splitlines()[0] == "mienne-ops request gorgias:7:refund"
    assert "invalid: not the customer [not_the_customer]" in note
    assert "netsuite_refund_id: 311" in note and "empty" not in note
