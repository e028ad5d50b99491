"""The cancellation/refund policy: invalid vs refused vs needs approval, from the order's facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mienne_ops.domain.refund_policy import (
    OrderFacts,
    RefundPolicy,
    Verdict,
    cancel_decision,
    refund_decision,
)
from mienne_ops.domain.service_requests import RequestDetails

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def facts(**changes) -> OrderFacts:
    base = dict(
        currency="USD",
        customer_emails=frozenset({"ana@example.com"}),
        processed_at=NOW - timedelta(days=3),
        cancelled=False,
        shipped_units=0,
        refundable=Decimal("120.00"),
    )
    return OrderFacts(**(base | changes))


POLICY = RefundPolicy(refund_window_days=60, approval_above=Decimal("100.00"))


def test_only_the_orders_customer_may_ask_on_a_ticket_and_operators_are_not_checked():
    assert cancel_decision("Ana@Example.com ", RequestDetails(), facts()).proceeds
    someone_else = cancel_decision("mallory@example.com", RequestDetails(), facts())
    assert (someone_else.verdict, someone_else.code) == (Verdict.INVALID, "not_the_customer")
    assert cancel_decision(None, RequestDetails(), facts()).proceeds


@pytest.mark.parametrize(
    ("order", "verdict", "code"),
    [
        (facts(cancelled=True), Verdict.INVALID, "already_cancelled"),
        (facts(shipped_units=1), Verdict.REFUSED, "already_shipped"),
        (facts(), Verdict.PROCEED, None),
    ],
)
def test_a_cancellation_needs_an_open_unshipped_order(order, verdict, code):
    decision = cancel_decision(None, RequestDetails(), order)
    assert (decision.verdict, decision.code) == (verdict, code)


def test_a_currency_that_is_not_the_orders_is_bad_input():
    decision = refund_decision(
        None, RequestDetails(amount=Decimal("5.00"), currency="eur"), facts(), Decimal("5.00"), POLICY, NOW
    )
    assert (decision.verdict, decision.code) == (Verdict.INVALID, "currency_mismatch")
    assert "EUR" in decision.reasons[0] and "USD" in decision.reasons[0]


@pytest.mark.parametrize(
    ("amount", "order", "verdict", "code"),
    [
        (Decimal("120.01"), facts(), Verdict.INVALID, "above_refundable"),
        (Decimal("0.00"), facts(refundable=Decimal("0.00")), Verdict.INVALID, "nothing_refundable"),
        (
            Decimal("10.00"),
            facts(processed_at=NOW - timedelta(days=61)),
            Verdict.REFUSED,
            "outside_refund_window",
        ),
        (Decimal("100.01"), facts(), Verdict.NEEDS_APPROVAL, "needs_approval"),
        (Decimal("10.00"), facts(prior_refunds=1), Verdict.NEEDS_APPROVAL, "needs_approval"),
        (Decimal("100.01"), facts(approved=True), Verdict.PROCEED, None),
        (Decimal("100.00"), facts(), Verdict.PROCEED, None),
    ],
)
def test_refund_decisions(amount, order, verdict, code):
    decision = refund_decision(None, RequestDetails(amount=amount or None), order, amount, POLICY, NOW)
    assert (decision.verdict, decision.code) == (verdict, code)


def test_an_approval_names_every_reason_a_person_should_look():
    decision = refund_decision(None, RequestDetails(), facts(prior_refunds=2), Decimal("110.00"), POLICY, NOW)
    assert decision.verdict == Verdict.NEEDS_APPROVAL and len(decision.reasons) == 2
