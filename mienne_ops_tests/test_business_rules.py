"""Business rules: the return knobs' defaults, the builders, and the checks that fail at load."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from mienne_ops.business_rules import BusinessRules
from mienne_ops.domain.return_policy import InstantTrigger, LabelService
from mienne_ops.domain.service_requests import RequestKind


def test_the_default_return_policy():
    policy = BusinessRules().return_policy()
    assert (policy.window_days, policy.transit_allowance_days) == (30, 7)
    assert policy.final_sale_skus == frozenset() and policy.final_sale_tags == frozenset({"final-sale"})
    assert policy.label_services == {
        "US": LabelService("USPS", "GROUND ADVANTAGE"),
        "CA": LabelService("CANADA POST", "EXPEDITED PARCEL"),
    }
    assert (policy.reminder_days, policy.expiry_days) == ((3, 7), 14)
    assert (policy.instant_refund_max, policy.instant_refund_min_orders) == (Decimal("50.00"), 2)
    assert policy.instant_trigger == InstantTrigger.FIRST_SCAN and not policy.refund_damaged
    assert policy.timezone == "America/New_York"  # the shop's calendar days


def test_the_other_return_knobs_defaults():
    rules = BusinessRules()
    assert (rules.dcl_rma_type, rules.dcl_rma_disposition) == ("T01", 2)
    assert rules.return_writeoff_location_id is None
    assert (rules.returns_poll_seconds, rules.returns_lookback_hours, rules.return_refund_sla_hours) == (
        60,
        72,
        24,
    )
    assert "Fremont, CA" in rules.return_address_text
    assert rules.return_ticket_tags["label_sent"] == "return-label-sent"


def test_the_builder_carries_overrides_through():
    rules = BusinessRules(
        return_window_days=45,
        return_final_sale_skus=["MN-SCARF-SILK"],
        return_final_sale_tags=["Final-Sale", "Clearance"],
        return_label_services={"us": [" UPS ", "GROUND"]},
        return_instant_refund_max=None,
        return_instant_trigger="LABEL_CREATED",
        return_refund_damaged=True,
        shop_timezone="America/Los_Angeles",
    )
    policy = rules.return_policy()
    assert policy.window_days == 45 and policy.final_sale_skus == frozenset({"MN-SCARF-SILK"})
    assert policy.final_sale_tags == frozenset({"final-sale", "clearance"})
    assert policy.label_services == {"US": LabelService("UPS", "GROUND")}
    assert policy.instant_refund_max is None and policy.instant_trigger == InstantTrigger.LABEL_CREATED
    assert policy.refund_damaged and policy.timezone == "America/Los_Angeles"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"return_instant_trigger": "first-scan"}, "first_scan, label_created"),
        ({"return_reminder_days": [7, 3]}, "strictly ascending"),
        ({"return_reminder_days": [3, 14]}, "before the return expires"),
        ({"return_expiry_days": 5, "return_reminder_days": [3, 7]}, "before the return expires"),
        ({"return_label_services": {"US": ["USPS"]}}, r"\[carrier, service\]"),
        ({"return_label_services": {"USA": ["USPS", "GROUND ADVANTAGE"]}}, "ISO-2"),
        ({"return_instant_refund_max": "fifty"}, "an amount like 50.00"),
        ({"return_instant_refund_max": "-5"}, "instant refund limit"),
        ({"return_ticket_tags": {"label_sent": "x"}}, "needs a tag for expired, received, refunded, refused"),
        ({"returns_poll_seconds": -1}, "not negative"),
        ({"shop_timezone": "Nowhere/Special"}, "time zone"),
    ],
)
def test_return_knobs_that_cannot_work_fail_at_load(changes, message):
    with pytest.raises(ValidationError, match=message):
        BusinessRules(**changes)


def test_a_return_tag_makes_a_ticket_a_return_and_keeps_cancel_and_refund_as_they_were():
    rules = BusinessRules(ticket_return_tags=["Return-Request", "rma"]).ticket_rules()
    assert rules.return_tags == frozenset({"return-request", "rma"})
    assert rules.kinds(frozenset({"rma"})) == [RequestKind.RETURN]
    assert rules.kinds(frozenset({"refund-request"})) == [RequestKind.REFUND]
    assert rules.kinds(frozenset({"cancel-order", "refund-request"})) == [
        RequestKind.CANCEL,
        RequestKind.REFUND,
    ]
    # a return refunds when the goods arrive: a refund request beside it would pay twice
    assert rules.kinds(frozenset({"return-request", "refund-request"})) == [RequestKind.RETURN]
    assert rules.kinds(frozenset({"cancel-order", "return-request"})) == [
        RequestKind.CANCEL,
        RequestKind.RETURN,
    ]
    assert rules.kinds(frozenset({"shipping-question"})) == []
