"""Hold rules on Shopify's own order payload (REST example #1001) and Shopify's risk shapes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from mienne_ops.domain.holds import (
    RELEASE_OF,
    Address,
    HoldPolicy,
    HoldReason,
    OrderHold,
    Release,
    address_problems,
    evaluate_holds,
    order_facts,
    overdue,
)
from mienne_ops.domain.shopify import ShopifyOrder
from mienne_ops_tests.domain.test_orders import paid_full_order

PLACED = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
NO_WINDOW = HoldPolicy(edit_window=timedelta(0))


@pytest.fixture
def order(shopify_fixtures) -> ShopifyOrder:
    payload = paid_full_order(shopify_fixtures)
    payload["processed_at"] = PLACED.isoformat()
    payload["shipping_address"].update({"country_code": "US", "province_code": "CA", "zip": "94103"})
    return ShopifyOrder.from_rest(payload)


def reasons(decisions) -> list[HoldReason]:
    return [d.reason for d in decisions]


def test_a_clean_order_waits_out_the_edit_window_then_goes(order):
    facts = order_facts(order, {"recommendation": "ACCEPT", "assessments": [{"riskLevel": "LOW"}]})
    (window,) = evaluate_holds(facts, HoldPolicy(), PLACED + timedelta(minutes=5))
    assert window.reason == HoldReason.EDIT_WINDOW and window.release == Release.AT_TIME
    assert window.until == PLACED + timedelta(minutes=30)
    assert evaluate_holds(facts, HoldPolicy(), PLACED + timedelta(minutes=30)) == []


@pytest.mark.parametrize(
    ("risk", "level", "held"),
    [
        ({"recommendation": "ACCEPT", "assessments": [{"riskLevel": "HIGH"}]}, "HIGH", True),
        ({"recommendation": "CANCEL", "assessments": [{"riskLevel": "LOW"}]}, "HIGH", True),
        ({"recommendation": "INVESTIGATE", "assessments": [{"riskLevel": "LOW"}]}, "HIGH", False),
        ({"recommendation": "INVESTIGATE", "assessments": []}, "MEDIUM", True),
        ({"recommendation": "NONE", "assessments": [{"riskLevel": "PENDING"}]}, "MEDIUM", False),
        ({"recommendation": "CANCEL", "assessments": [{"riskLevel": "HIGH"}]}, None, False),
    ],
)
def test_fraud_risk_at_or_above_the_level_holds_for_a_person(order, risk, level, held):
    policy = HoldPolicy(edit_window=timedelta(0), fraud_hold_level=level)
    decisions = evaluate_holds(order_facts(order, risk), policy, PLACED)
    assert (HoldReason.FRAUD_RISK in reasons(decisions)) is held
    if held:
        assert decisions[0].release == Release.BY_PERSON and "Shopify risk" in decisions[0].detail


def test_value_above_the_threshold_is_reviewed(order):
    total = order.current_total_price
    assert total is not None
    at = HoldPolicy(edit_window=timedelta(0), value_threshold=total)
    below = HoldPolicy(edit_window=timedelta(0), value_threshold=total - Decimal("0.01"))
    assert evaluate_holds(order_facts(order), at, PLACED) == []
    (review,) = evaluate_holds(order_facts(order), below, PLACED)
    assert review.reason == HoldReason.HIGH_VALUE and str(total) in review.detail


def test_a_pre_order_waits_for_the_latest_date_of_its_items_in_the_shop_timezone(order):
    sku = next(line.sku for line in order.line_items if line.sku)
    policy = HoldPolicy(
        edit_window=timedelta(0),
        pre_order_skus={sku: date(2027, 1, 15)},
        pre_order_tags={"preorder-spring": date(2027, 3, 1), "unused": date(2028, 1, 1)},
        shop_timezone="America/New_York",
    )
    (hold,) = evaluate_holds(order_facts(order), policy, PLACED)
    assert hold.until == datetime(2027, 1, 15, 5, 0, tzinfo=UTC) and hold.release == Release.AT_TIME
    tagged = order.model_copy(update={"tags": [*order.tags, "preorder-spring"]})
    (later,) = evaluate_holds(order_facts(tagged), policy, PLACED)
    assert later.until is not None and later.until.date() == date(2027, 3, 1)
    assert evaluate_holds(order_facts(tagged), policy, datetime(2027, 3, 1, 6, tzinfo=UTC)) == []


def test_an_address_that_cannot_be_right_is_held_until_corrected(order):
    wrong = order.model_copy(
        update={"shipping_address": order.shipping_address.model_copy(update={"zip": "10001"})}
    )
    (hold,) = evaluate_holds(order_facts(wrong), NO_WINDOW, PLACED)
    assert hold.reason == HoldReason.ADDRESS and hold.release == Release.ON_CORRECTION
    assert hold.detail == "ZIP 10001 is not in CA"
    assert evaluate_holds(order_facts(order), NO_WINDOW, PLACED) == []


@pytest.mark.parametrize(
    ("address", "problems"),
    [
        (Address("1 Main St", "Austin", "TX", "78701", "US"), []),
        (Address("1 Main St", "El Paso", "TX", "88510-1234", "US"), []),
        (Address("1 Main St", "New York", "NY", "10001", "US"), []),
        (Address("1 Main St", "Austin", "TX", "7870", "US"), ["ZIP 7870 is not a US ZIP code"]),
        (Address("", "Austin", None, "78701", "US"), ["missing street", "missing province"]),
        (Address("1 Rue", "Montréal", "QC", "H2X 1Y4", "CA"), []),
        (Address("1 Rue", "Montréal", "ON", "H2X1Y4", "CA"), ["postal code H2X1Y4 is not in ON"]),
        (Address("1 Rue", "Toronto", "ON", "M5V 3L9", "CA"), []),
        (
            Address("1 Rue", "Toronto", "ON", "D5V 3L9", "CA"),
            ["postal code D5V 3L9 is not a Canadian postal code"],
        ),
        (Address("10 Downing St", "London", None, None, "GB"), []),
        (Address(None, None, None, None, None), ["no country"]),
    ],
)
def test_address_checks_that_need_no_network(address, problems):
    assert address_problems(address) == problems


def test_a_hold_past_its_reasons_sla_is_overdue_and_pre_orders_never_are():
    def hold(reason: HoldReason, hours: float, released: bool = False) -> OrderHold:
        placed = PLACED - timedelta(hours=hours)
        return OrderHold("1", reason, "", RELEASE_OF[reason], None, placed, "rules",
                         released_at=PLACED if released else None)  # fmt: skip

    holds = [
        hold(HoldReason.FRAUD_RISK, 25),
        hold(HoldReason.FRAUD_RISK, 23),
        hold(HoldReason.ADDRESS, 80, released=True),
        hold(HoldReason.PRE_ORDER, 24 * 90),
    ]
    late = overdue(holds, {"fraud_risk": 24, "address": 72}, PLACED)
    assert [(h.reason, h.age(PLACED)) for h in late] == [(HoldReason.FRAUD_RISK, timedelta(hours=25))]
