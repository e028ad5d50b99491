"""The returns report: counts, ages, money pending per currency, stuck / unrefunded / unknown RMAs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mienne_ops.domain.returns import OrderReturn, ReturnLine, ReturnStatus
from mienne_ops.domain.returns_report import returns_report

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SLA = timedelta(hours=24)
S = ReturnStatus


def ret(
    id: int,
    status: ReturnStatus,
    *,
    age_h: float = 10,
    value: str = "40.00",
    refunded: str = "0",
    currency: str = "USD",
    deadline_in_h: float | None = None,
    received_h_ago: float | None = None,
) -> OrderReturn:
    return OrderReturn(
        id=id,
        return_key=f"k{id}",
        request_id=id,
        shopify_order_id=str(5000 + id),
        order_name=f"#{1000 + id}",
        status=status,
        lines=(ReturnLine(sku="MN-TEE-M", quantity=1, unit_price=Decimal(value)),),
        currency=currency,
        value=Decimal(value),
        refunded=Decimal(refunded),
        rma_number=f"RMA{id}",
        deadline_at=NOW + timedelta(hours=deadline_in_h) if deadline_in_h is not None else None,
        received_at=NOW - timedelta(hours=received_h_ago) if received_h_ago is not None else None,
        created_at=NOW - timedelta(hours=age_h),
    )


def test_counts_every_status_and_orders_open_returns_oldest_first():
    report = returns_report(
        [
            ret(1, S.AWAITING_PARCEL, age_h=5),
            ret(2, S.COMPLETED, age_h=90),
            ret(3, S.IN_TRANSIT, age_h=30),
            ret(4, S.OPENING, age_h=1),
            ret(5, S.RECEIVED, age_h=50, received_h_ago=2),
            ret(6, S.EXPIRED),
        ],
        NOW,
        refund_sla=SLA,
    )
    assert report.counts[S.AWAITING_PARCEL] == 1 and report.counts[S.COMPLETED] == 1
    assert report.counts[S.CANCELLED] == 0 and sum(report.counts.values()) == 6
    assert [r.ret.id for r in report.open] == [5, 3, 1, 4]
    assert [r.age_hours for r in report.open] == [50.0, 30.0, 5.0, 1.0]
    # Received is no longer waiting for the parcel: the oldest waiting is the one in transit.
    assert report.oldest_waiting is not None and report.oldest_waiting.ret.id == 3
    assert report.open[0].row() == {
        "return_key": "k5",
        "order": "#1005",
        "status": "received",
        "age_hours": 50.0,
        "deadline": "",
        "money_pending": "40.00 USD",
        "rma": "RMA5",
    }


def test_money_pending_is_per_currency_and_counts_open_returns_only():
    report = returns_report(
        [
            ret(1, S.AWAITING_PARCEL, value="40.00"),
            ret(2, S.RECEIVED, value="30.00", refunded="10.00"),
            ret(3, S.AWAITING_PARCEL, value="25.00", currency="CAD"),
            ret(4, S.COMPLETED, value="99.00", refunded="0"),  # closed: nothing pending
            ret(5, S.RECEIVED, value="10.00", refunded="12.00"),  # over-refunded counts as 0
        ],
        NOW,
        refund_sla=SLA,
    )
    assert report.money_pending == {"CAD": Decimal("25.00"), "USD": Decimal("60.00")}
    assert report.money_pending_text() == "25.00 CAD, 60.00 USD"


def test_an_empty_ledger_reports_nothing_pending():
    report = returns_report([], NOW, refund_sla=SLA)
    assert report.open == () and report.oldest_waiting is None and report.money_pending_text() == "0"
    assert not report.stuck and not report.unrefunded and not report.unknown_rmas


@pytest.mark.parametrize(
    ("status", "deadline_in_h", "stuck"),
    [
        (S.AWAITING_PARCEL, -1, True),
        (S.IN_TRANSIT, -0.01, True),
        (S.AWAITING_PARCEL, 1, False),  # before its deadline
        (S.AWAITING_PARCEL, None, False),  # no deadline yet (the label is being made)
        (S.RECEIVED, -48, False),  # the parcel arrived: the deadline no longer applies
        (S.EXPIRED, -48, False),  # expired as it should be
        (S.OPENING, -1, False),
    ],
)
def test_stuck_means_waiting_for_the_parcel_past_the_deadline(status, deadline_in_h, stuck):
    report = returns_report([ret(1, status, deadline_in_h=deadline_in_h)], NOW, refund_sla=SLA)
    assert bool(report.stuck) is stuck
    if stuck:
        assert "#1001 (k1)" in report.stuck_text()


@pytest.mark.parametrize(
    ("status", "received_h_ago", "refunded", "late"),
    [
        (S.RECEIVED, 25, "0", True),
        (S.RECEIVED, 25, "39.99", True),  # a cent still pending
        (S.RECEIVED, 23, "0", False),  # within the SLA
        (S.RECEIVED, 25, "40.00", False),  # refunded in full (closing the records is what is left)
        (S.RECEIVED, None, "0", False),
        (S.COMPLETED, 100, "0", False),
        (S.IN_TRANSIT, 25, "0", False),
    ],
)
def test_unrefunded_means_received_longer_than_the_sla_ago_with_money_pending(
    status, received_h_ago, refunded, late
):
    report = returns_report(
        [ret(1, status, received_h_ago=received_h_ago, refunded=refunded)], NOW, refund_sla=SLA
    )
    assert bool(report.unrefunded) is late
    if late:
        assert "#1001 (k1) received" in report.unrefunded_text()


def test_a_partial_receipt_refunded_for_what_arrived_is_not_late_while_the_rest_travels():
    """Two units expected, one arrived and was refunded: money is pending, but nothing that arrived
    waits for its refund (the worker notes what arrived in good condition)."""
    waiting = ret(1, S.RECEIVED, received_h_ago=48, value="40.00", refunded="20.00")
    waiting.lines = (ReturnLine(sku="MN-TEE-M", quantity=2, unit_price=Decimal("20.00")),)
    waiting.outcome = {
        "received_units": {"MN-TEE-M": 1},
        "refunds": [{"n": 1, "units": {"MN-TEE-M": 1}, "amount": "20.00"}],
    }
    owed = ret(2, S.RECEIVED, received_h_ago=48, value="40.00", refunded="20.00")
    owed.lines = waiting.lines
    owed.outcome = {**waiting.outcome, "received_units": {"MN-TEE-M": 2}}  # the second one arrived
    report = returns_report([waiting, owed], NOW, refund_sla=SLA)
    assert [r.ret.return_key for r in report.unrefunded] == ["k2"]


def test_unknown_rmas_are_listed_once_each_in_order():
    report = returns_report([], NOW, refund_sla=SLA, unknown_rmas=["RMA9", "RMA2", "RMA9"])
    assert report.unknown_rmas == ("RMA2", "RMA9")
