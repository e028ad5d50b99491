"""The return policy: eligibility, the window's edges, labels, instant refunds, the wait and receipts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from mienne_ops.domain.refund_policy import Verdict
from mienne_ops.domain.return_policy import (
    EXCEPTION_CODES,
    InstantTrigger,
    LabelService,
    ReturnFacts,
    ReturnPolicy,
    ShippedLine,
    all_returnable,
    assess_receipt,
    due_reminders,
    expires_at,
    instant_eligible,
    label_service,
    last_return_day,
    reminder_times,
    reminders_passed,
    return_deadline,
    return_decision,
)
from mienne_ops.domain.service_requests import RequestedLine

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
DELIVERED = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
POLICY = ReturnPolicy()  # the defaults, in UTC calendar days

TEE = ShippedLine(
    sku="MN-TEE-BLK-M",
    line_item_id="gid://shopify/LineItem/13771280285914",
    shipped=2,
    returned=0,
    fulfilled_at=DELIVERED - timedelta(days=3),
    delivered_at=DELIVERED,
    tags=frozenset({"tops", "cotton"}),
    unit_price=Decimal("28.00"),
)
SCARF = ShippedLine(
    sku="MN-SCARF-SILK",
    line_item_id="gid://shopify/LineItem/13771280318682",
    shipped=1,
    returned=0,
    fulfilled_at=DELIVERED - timedelta(days=3),
    delivered_at=DELIVERED,
    tags=frozenset({"Final-Sale", "accessories"}),  # Shopify keeps the merchandiser's case
    unit_price=Decimal("45.00"),
)
DRESS = ShippedLine(
    sku="MN-DRESS-LIN-S",
    line_item_id="gid://shopify/LineItem/13771280351450",
    shipped=1,
    returned=0,
    fulfilled_at=DELIVERED - timedelta(days=3),
    delivered_at=DELIVERED,
    tags=frozenset({"dresses"}),
    unit_price=Decimal("129.00"),
)


def order(*lines: ShippedLine, **changes: Any) -> ReturnFacts:
    base: dict[str, Any] = dict(
        order_name="#1042",
        currency="USD",
        customer_emails=frozenset({"ana@example.com"}),
        cancelled=False,
        fully_refunded=False,
        lines=lines or (TEE, SCARF, DRESS),
        country="US",
        customer_orders=3,
        bad_history=False,
    )
    return ReturnFacts(**(base | changes))


def ask(*pairs: tuple[str, int]) -> tuple[RequestedLine, ...]:
    return tuple(RequestedLine(sku=sku, quantity=qty) for sku, qty in pairs)


def decide(requested, facts=None, *, requester="ana@example.com", trusted=False, policy=POLICY, now=NOW):
    return return_decision(requester, trusted, requested, facts or order(), policy, now)


# --- eligibility -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "facts", "verdict", "code", "says"),
    [
        (ask(("MN-TEE-BLK-M", 2)), order(), Verdict.PROCEED, None, ""),
        ((), order(), Verdict.INVALID, "nothing_asked", "names no items"),
        (
            ask(("MN-TEE-BLK-M", 1)),
            order(cancelled=True),
            Verdict.REFUSED,
            "cancelled",
            "#1042 was cancelled",
        ),
        (
            ask(("MN-TEE-BLK-M", 1)),
            order(fully_refunded=True),
            Verdict.REFUSED,
            "already_refunded",
            "refunded in full",
        ),
        (
            ask(("MN-TEE-BLK-M", 1)),
            order(replace(TEE, shipped=0)),
            Verdict.REFUSED,
            "not_fulfilled",
            "not shipped yet",
        ),
        (ask(("MN-HAT-WOOL", 1)), order(), Verdict.REFUSED, "unknown_sku", "MN-HAT-WOOL is not among"),
        (ask(("MN-TEE-BLK-M", 3)), order(), Verdict.REFUSED, "too_many", "only 2 can still be returned"),
        (
            ask(("MN-TEE-BLK-M", 2)),
            order(replace(TEE, returned=1)),
            Verdict.REFUSED,
            "too_many",
            "you asked to return 2 × MN-TEE-BLK-M, but only 1",
        ),
        (ask(("MN-TEE-BLK-M", 1)), order(replace(TEE, returned=1)), Verdict.PROCEED, None, ""),
        (ask(("MN-SCARF-SILK", 1)), order(), Verdict.REFUSED, "final_sale", "MN-SCARF-SILK is final sale"),
    ],
)
def test_return_decisions(requested, facts, verdict, code, says):
    decision = decide(requested, facts).decision
    assert (decision.verdict, decision.code) == (verdict, code)
    assert says in "; ".join(decision.reasons)


def test_an_approved_return_says_its_lines_value_label_and_shipped_lines():
    result = decide(ask(("MN-TEE-BLK-M", 1), ("MN-DRESS-LIN-S", 1), ("MN-TEE-BLK-M", 1)))
    assert result.proceeds
    assert result.lines == (("MN-TEE-BLK-M", 2), ("MN-DRESS-LIN-S", 1))  # the same SKU twice is one line
    assert result.value == Decimal("185.00")
    assert result.label == LabelService("USPS", "GROUND ADVANTAGE")
    assert result.line_items == ((TEE.line_item_id, 2), (DRESS.line_item_id, 1))
    assert not result.instant  # 185.00 is above the 50.00 limit


def test_a_final_sale_sku_in_the_rules_is_refused_whatever_its_tags():
    policy = ReturnPolicy(final_sale_skus=frozenset({"MN-DRESS-LIN-S"}), timezone="UTC")
    result = decide(ask(("MN-DRESS-LIN-S", 1)), policy=policy)
    assert (result.decision.code, result.lines, result.value) == ("final_sale", (), Decimal("0.00"))


def test_a_request_is_refused_whole_and_names_every_line_that_cannot_come_back():
    result = decide(ask(("MN-TEE-BLK-M", 1), ("MN-SCARF-SILK", 1), ("MN-HAT-WOOL", 1)))
    assert result.decision.verdict == Verdict.REFUSED
    assert result.decision.code == "final_sale"  # the first refused line's code
    assert len(result.decision.reasons) == 2
    assert "MN-SCARF-SILK" in result.decision.reasons[0] and "MN-HAT-WOOL" in result.decision.reasons[1]
    assert (result.lines, result.line_items, result.label, result.instant) == ((), (), None, False)


def test_units_of_a_sku_come_from_its_lines_that_are_not_final_sale():
    clearance = replace(TEE, line_item_id="gid://shopify/LineItem/2", tags=frozenset({"final-sale"}))
    facts = order(TEE, clearance)
    assert decide(ask(("MN-TEE-BLK-M", 2)), facts).line_items == ((TEE.line_item_id, 2),)
    over = decide(ask(("MN-TEE-BLK-M", 3)), facts).decision
    assert over.code == "final_sale"  # 4 shipped, but 2 of them final sale
    assert decide(ask(("MN-TEE-BLK-M", 5)), facts).decision.code == "too_many"


def test_partly_returned_lines_give_their_remaining_units_in_order():
    second = replace(TEE, line_item_id="gid://shopify/LineItem/2", shipped=1)
    facts = order(replace(TEE, returned=1), second)
    result = decide(ask(("MN-TEE-BLK-M", 2)), facts)
    assert result.line_items == ((TEE.line_item_id, 1), ("gid://shopify/LineItem/2", 1))
    assert result.value == Decimal("56.00")


# --- who asks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requester", "trusted", "proceeds"),
    [
        ("ana@example.com", False, True),
        ("  Ana@Example.COM ", False, True),  # helpdesks keep the case the customer typed
        ("mallory@example.com", False, False),
        (None, False, False),  # a ticket without an email cannot be matched
        (None, True, True),  # an operator, or Shopify's own customer-account request
        ("mallory@example.com", True, True),
    ],
)
def test_only_the_orders_customer_may_ask_unless_the_request_is_trusted(requester, trusted, proceeds):
    result = decide(ask(("MN-TEE-BLK-M", 1)), requester=requester, trusted=trusted)
    assert result.proceeds is proceeds
    if not proceeds:
        assert result.decision.code == "not_requester" and result.decision.code in EXCEPTION_CODES


def test_a_stranger_learns_nothing_about_the_order():
    facts = order(cancelled=True, fully_refunded=True)  # checked after who asks: no detail leaks
    decision = decide(ask(("MN-SCARF-SILK", 5)), facts, requester="mallory@example.com").decision
    assert decision.code == "not_requester"
    text = " ".join(decision.reasons)
    for detail in ("ana@", "cancel", "refund", "MN-", "final", "45.00"):
        assert detail not in text


# --- the window --------------------------------------------------------------------------------

DELIVERED_NOV_6 = replace(TEE, delivered_at=datetime(2026, 11, 6, 9, tzinfo=UTC))
FULFILLED_OCT_30 = replace(TEE, fulfilled_at=datetime(2026, 10, 30, 18, tzinfo=UTC), delivered_at=None)


@pytest.mark.parametrize(
    ("line", "now", "inside"),
    [
        (DELIVERED_NOV_6, datetime(2026, 12, 6, 0, 0, tzinfo=UTC), True),
        (DELIVERED_NOV_6, datetime(2026, 12, 6, 23, 59, 59, tzinfo=UTC), True),  # all of the last day
        (DELIVERED_NOV_6, datetime(2026, 12, 7, 0, 0, tzinfo=UTC), False),
        # delivery unknown: fulfilled 30 October + 7 days' transit = 6 November starts the window
        (FULFILLED_OCT_30, datetime(2026, 12, 6, 23, 59, tzinfo=UTC), True),
        (FULFILLED_OCT_30, datetime(2026, 12, 7, 0, 1, tzinfo=UTC), False),
        # a delivery date wins over the allowance, either way
        (
            replace(FULFILLED_OCT_30, delivered_at=datetime(2026, 11, 20, tzinfo=UTC)),
            NOW + timedelta(days=10),
            True,
        ),
        (
            replace(DELIVERED_NOV_6, fulfilled_at=datetime(2026, 11, 20, tzinfo=UTC)),
            NOW + timedelta(days=1),
            False,
        ),
    ],
)
def test_the_window_counts_whole_days_from_delivery_or_fulfillment_plus_transit(line, now, inside):
    result = decide(ask(("MN-TEE-BLK-M", 1)), order(line), now=now)
    assert result.proceeds is inside
    if not inside:
        assert result.decision.code == "outside_window"


def test_outside_the_window_the_refusal_says_the_last_day():
    result = decide(ask(("MN-TEE-BLK-M", 1)), order(DELIVERED_NOV_6), now=datetime(2026, 12, 9, tzinfo=UTC))
    assert "30 days after delivery" in result.decision.reasons[0]
    assert "2026-12-06" in result.decision.reasons[0]
    assert last_return_day(DELIVERED_NOV_6, POLICY) == date(2026, 12, 6)


def test_the_window_is_counted_in_the_shops_calendar_days():
    # 03:00 UTC on 7 November is still 6 November in New York: the last day there is 6 December
    line = replace(TEE, delivered_at=datetime(2026, 11, 7, 3, tzinfo=UTC))
    shop = ReturnPolicy(timezone="America/New_York")
    assert last_return_day(line, shop) == date(2026, 12, 6)
    assert last_return_day(line, POLICY) == date(2026, 12, 7)  # in UTC
    late_evening_in_new_york = datetime(2026, 12, 7, 4, tzinfo=UTC)  # 23:00 on 6 December there
    just_after_midnight_there = datetime(2026, 12, 7, 5, 30, tzinfo=UTC)
    assert decide(ask(("MN-TEE-BLK-M", 1)), order(line), policy=shop, now=late_evening_in_new_york).proceeds
    assert not decide(
        ask(("MN-TEE-BLK-M", 1)), order(line), policy=shop, now=just_after_midnight_there
    ).proceeds
    assert decide(ask(("MN-TEE-BLK-M", 1)), order(line), now=just_after_midnight_there).proceeds


def test_units_outside_the_window_are_not_approved_with_those_inside():
    old = replace(DELIVERED_NOV_6, line_item_id="gid://shopify/LineItem/2", shipped=1)
    facts = order(TEE, old)  # TEE delivered 20 November, the other unit on 6 November
    now = datetime(2026, 12, 10, tzinfo=UTC)
    assert decide(ask(("MN-TEE-BLK-M", 2)), facts, now=now).line_items == ((TEE.line_item_id, 2),)
    assert decide(ask(("MN-TEE-BLK-M", 3)), facts, now=now).decision.code == "outside_window"


# --- labels and instant refunds ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "service"),
    [
        ("US", LabelService("USPS", "GROUND ADVANTAGE")),
        ("ca", LabelService("CANADA POST", "EXPEDITED PARCEL")),
        ("GB", None),
        (None, None),
        ("", None),
    ],
)
def test_the_label_service_depends_on_the_destination(country, service):
    assert label_service(country, POLICY) == service


def test_outside_the_label_countries_a_return_proceeds_without_a_label_and_never_instant():
    result = decide(ask(("MN-TEE-BLK-M", 1)), order(country="GB"))
    assert result.proceeds and result.label is None and not result.instant
    assert decide(ask(("MN-TEE-BLK-M", 1)), order(country="CA")).label == LabelService(
        "CANADA POST", "EXPEDITED PARCEL"
    )


@pytest.mark.parametrize(
    ("value", "changes", "policy", "instant"),
    [
        (Decimal("28.00"), {}, POLICY, True),
        (Decimal("50.00"), {}, POLICY, True),  # the limit itself is instant
        (Decimal("50.01"), {}, POLICY, False),
        (Decimal("0.00"), {}, POLICY, False),
        (Decimal("28.00"), {"customer_orders": 1}, POLICY, False),  # a first order: not yet
        (Decimal("28.00"), {"customer_orders": 2}, POLICY, True),
        (Decimal("28.00"), {"bad_history": True}, POLICY, False),  # a return refused or expired before
        (Decimal("1.00"), {}, ReturnPolicy(instant_refund_max=None), False),
        (Decimal("28.00"), {"customer_orders": 0}, ReturnPolicy(instant_refund_min_orders=0), True),
    ],
)
def test_instant_refunds_need_a_small_value_and_good_standing(value, changes, policy, instant):
    assert instant_eligible(value, order(**changes), policy) is instant


def test_a_small_return_from_a_customer_in_good_standing_is_instant():
    assert decide(ask(("MN-TEE-BLK-M", 1))).instant
    assert not decide(ask(("MN-TEE-BLK-M", 1)), order(customer_orders=1)).instant


def test_all_returnable_lists_every_unit_still_returnable_for_an_explicit_everything():
    facts = order(replace(TEE, returned=1), SCARF, replace(DRESS, returned=1))
    assert all_returnable(facts) == ask(("MN-TEE-BLK-M", 1), ("MN-SCARF-SILK", 1))


# --- the wait ----------------------------------------------------------------------------------

SENT = datetime(2026, 12, 1, 15, tzinfo=UTC)


def test_reminders_and_expiry_are_counted_from_the_label():
    assert reminder_times(SENT, POLICY) == (
        datetime(2026, 12, 4, 15, tzinfo=UTC),
        datetime(2026, 12, 8, 15, tzinfo=UTC),
    )
    assert expires_at(SENT, POLICY) == datetime(2026, 12, 15, 15, tzinfo=UTC)
    assert return_deadline(SENT, POLICY) == date(2026, 12, 15)
    # 15:00 UTC on 15 December is 10:00 that day in New York; 02:00 UTC would still be the 14th
    assert return_deadline(
        datetime(2026, 12, 1, 2, tzinfo=UTC), ReturnPolicy(timezone="America/New_York")
    ) == date(2026, 12, 14)


@pytest.mark.parametrize(
    ("now", "sent", "due"),
    [
        (SENT + timedelta(days=2), 0, 0),
        (SENT + timedelta(days=3), 0, 1),  # the first reminder's moment
        (SENT + timedelta(days=3), 1, 0),  # already sent: a second tick sends nothing
        (SENT + timedelta(days=6), 1, 0),
        (SENT + timedelta(days=7), 1, 1),
        (SENT + timedelta(days=13), 0, 1),  # a restart after days: one reminder, not two
        (SENT + timedelta(days=13), 2, 0),
        (SENT + timedelta(days=14), 0, 0),  # expired: the expiry message instead
        (SENT + timedelta(days=30), 0, 0),
    ],
)
def test_due_reminders_sends_at_most_one_at_a_time(now, sent, due):
    assert due_reminders(SENT, sent, POLICY, now) == due


def test_after_a_late_reminder_the_missed_ones_count_as_sent():
    late = SENT + timedelta(days=8)
    assert reminders_passed(SENT, POLICY, late) == 2
    assert due_reminders(SENT, reminders_passed(SENT, POLICY, late), POLICY, late + timedelta(hours=1)) == 0


# --- receipts ----------------------------------------------------------------------------------


def test_a_partial_receipt_refunds_what_arrived_and_the_rest_refunds_once_it_arrives():
    expected = {"MN-TEE-BLK-M": 2, "MN-DRESS-LIN-S": 1}
    first = assess_receipt(expected, {"MN-TEE-BLK-M": {"good": 1}}, {}, POLICY)
    assert (first.refund, first.restock, first.problems) == ({"MN-TEE-BLK-M": 1}, {"MN-TEE-BLK-M": 1}, ())
    assert first.missing == {"MN-TEE-BLK-M": 1, "MN-DRESS-LIN-S": 1} and not first.complete
    cumulative = {"MN-TEE-BLK-M": {"good": 2}, "MN-DRESS-LIN-S": {"good": 1}}
    rest = assess_receipt(expected, cumulative, first.refund, POLICY)
    assert rest.refund == {"MN-TEE-BLK-M": 1, "MN-DRESS-LIN-S": 1}
    assert rest.restock == {"MN-TEE-BLK-M": 2, "MN-DRESS-LIN-S": 1}  # cumulative
    assert rest.complete and rest.problems == ()
    again = assess_receipt(expected, cumulative, {"MN-TEE-BLK-M": 2, "MN-DRESS-LIN-S": 1}, POLICY)
    assert again.refund == {}  # the same receipt read twice refunds nothing more


def test_an_instant_refund_leaves_nothing_to_refund_at_receipt():
    done = assess_receipt({"MN-TEE-BLK-M": 1}, {"MN-TEE-BLK-M": {"good": 1}}, {"MN-TEE-BLK-M": 1}, POLICY)
    assert (done.refund, done.restock) == ({}, {"MN-TEE-BLK-M": 1})


@pytest.mark.parametrize(
    ("received", "refund", "unexpected", "problem"),
    [
        ({"MN-HAT-WOOL": {"good": 1}}, {}, {"MN-HAT-WOOL": 1}, "not on the return (wrong item)"),
        (
            {"MN-TEE-BLK-M": {"good": 3}},
            {"MN-TEE-BLK-M": 2},
            {"MN-TEE-BLK-M": 1},
            "return is for 2 (wrong quantity)",
        ),
        (
            {"MN-TEE-BLK-M": {"good": 2, "damaged": 1}},
            {"MN-TEE-BLK-M": 2},
            {"MN-TEE-BLK-M": 1},
            "received 3 × MN-TEE-BLK-M but the return is for 2",
        ),
    ],
)
def test_wrong_items_and_quantities_are_never_refunded(received, refund, unexpected, problem):
    assessment = assess_receipt({"MN-TEE-BLK-M": 2}, received, {}, POLICY)
    assert (assessment.refund, assessment.unexpected) == (refund, unexpected)
    assert any(problem in text for text in assessment.problems)


@pytest.mark.parametrize(
    ("refund_damaged", "refund", "fate"),
    [
        (False, {"MN-TEE-BLK-M": 1}, "not refunded until someone decides"),
        (True, {"MN-TEE-BLK-M": 2}, "refunded anyway"),
    ],
)
def test_damaged_units_are_written_off_and_refunded_only_if_the_policy_says_so(refund_damaged, refund, fate):
    policy = ReturnPolicy(refund_damaged=refund_damaged)
    received = {"MN-TEE-BLK-M": {"good": 1, "damaged": 1}}
    assessment = assess_receipt({"MN-TEE-BLK-M": 2}, received, {}, policy)
    assert assessment.refund == refund
    assert (assessment.restock, assessment.write_off) == ({"MN-TEE-BLK-M": 1}, {"MN-TEE-BLK-M": 1})
    assert assessment.damaged == {"MN-TEE-BLK-M": 1} and assessment.complete
    assert assessment.problems == (f"1 × MN-TEE-BLK-M arrived damaged ({fate})",)


def test_a_condition_dcl_reports_that_is_not_good_counts_as_damaged():
    assessment = assess_receipt({"MN-TEE-BLK-M": 1}, {"MN-TEE-BLK-M": {"Opened": 1}}, {}, POLICY)
    assert (assessment.refund, assessment.write_off) == ({}, {"MN-TEE-BLK-M": 1})


def test_receipts_never_refund_twice_or_beyond_the_return():
    expected = {"MN-TEE-BLK-M": 2}
    refunded: dict[str, int] = {}
    total = 0
    for good in (1, 1, 2, 3, 3):  # cumulative counts, with repeats and an extra unit
        step = assess_receipt(expected, {"MN-TEE-BLK-M": {"good": good}}, refunded, POLICY)
        units = step.refund.get("MN-TEE-BLK-M", 0)
        total += units
        refunded = {"MN-TEE-BLK-M": total}
    assert total == 2


def test_damaged_units_refunded_by_a_person_are_not_refunded_again_when_good_ones_arrive():
    expected = {"MN-TEE-BLK-M": 2}
    # a person refunded the damaged unit by hand; then the second unit arrives in good condition
    step = assess_receipt(expected, {"MN-TEE-BLK-M": {"damaged": 1, "good": 1}}, {"MN-TEE-BLK-M": 1}, POLICY)
    assert step.refund == {}
    assert step.write_off == {"MN-TEE-BLK-M": 1} and step.restock == {"MN-TEE-BLK-M": 1}


# --- the policy's own checks -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reminder_days": (7, 3)}, "strictly ascending"),
        ({"reminder_days": (3, 3)}, "strictly ascending"),
        ({"reminder_days": (0, 3)}, "positive"),
        ({"reminder_days": (3, 14)}, "before the return expires"),
        ({"expiry_days": 0}, "at least one day"),
        ({"window_days": -1}, "not negative"),
        ({"instant_refund_max": Decimal("-1")}, "instant refund limit"),
        ({"instant_refund_max": Decimal("NaN")}, "instant refund limit"),
        ({"label_services": {"usa": LabelService("USPS", "GROUND ADVANTAGE")}}, "ISO-2"),
        ({"timezone": "Mars/Olympus"}, "time zone"),
    ],
)
def test_a_policy_that_cannot_work_is_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        ReturnPolicy(**changes)


def test_no_reminders_is_a_valid_policy():
    assert ReturnPolicy(reminder_days=()).instant_trigger == InstantTrigger.FIRST_SCAN
    assert due_reminders(SENT, 0, ReturnPolicy(reminder_days=()), SENT + timedelta(days=5)) == 0
