"""What the customer and the team are told along a return: what to pack, by when, money to the cent."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from mienne_ops.domain.refund_policy import Decision, Verdict, invalid, refused
from mienne_ops.domain.return_replies import (
    day_text,
    expired_reply,
    label_sent_reply,
    no_label_reply,
    partial_refund_reply,
    received_reply,
    refunded_reply,
    refused_return_reply,
    reminder_reply,
    return_note_text,
    service_text,
)

LINES = [("Linen Shirt — M", 2), ("Silk Scarf", 1)]
DEADLINE = date(2026, 12, 20)
LABEL = "https://labels.example.com/return/9f3c2a.pdf"  # the shape of DCL's label URL is unverified
INTERNAL = ("RA1042", "gid://", "rma_", "netsuite", "stateset")


def public_texts() -> list[str]:
    return [
        label_sent_reply("#1042", LINES, LABEL, "USPS Ground Advantage", DEADLINE),
        no_label_reply("#1042", LINES, DEADLINE, "Mienne Returns\nc/o DCL Logistics"),
        reminder_reply("#1042", LABEL, DEADLINE),
        received_reply("#1042", LINES),
        refunded_reply("#1042", Decimal("101"), "usd", LINES),
        partial_refund_reply("#1042", Decimal("56"), "USD", [("Linen Shirt — M", 2)], [("Silk Scarf", 1)]),
        expired_reply("#1042"),
        refused_return_reply("#1042", refused("outside_window", "the last day was 2026-11-30")),
    ]


def test_the_label_reply_says_what_to_pack_where_the_label_is_and_the_deadline():
    text = label_sent_reply("#1042", LINES, LABEL, "USPS Ground Advantage", DEADLINE)
    assert "#1042 is approved" in text
    assert "- 2 × Linen Shirt — M\n- 1 × Silk Scarf" in text
    assert f"prepaid USPS Ground Advantage return label: {LABEL}" in text
    assert "by Sunday, December 20, 2026" in text


def test_without_a_label_the_customer_ships_to_the_warehouse_and_keeps_the_receipt():
    address = "Mienne Returns\nc/o DCL Logistics\n48641 Milmont Drive\nFremont, CA 94538\nUnited States"
    text = no_label_reply("#1042", LINES, DEADLINE, address)
    assert address in text and "keep the receipt" in text and "tracking number" in text
    assert "- 1 × Silk Scarf" in text and "December 20, 2026" in text
    assert "http" not in text


def test_a_reminder_repeats_the_label_and_the_deadline():
    text = reminder_reply("#1042", LABEL, DEADLINE)
    assert LABEL in text and "December 20, 2026" in text and "#1042" in text


def test_received_and_refunded_replies_name_the_items_and_the_money_to_the_cent():
    assert "(2 × Linen Shirt — M, 1 × Silk Scarf)" in received_reply("#1042", LINES)
    review = received_reply("#1042", [("Linen Shirt — M", 1)], under_review=[("Silk Scarf", 1)])
    assert "1 × Silk Scarf" in review and "closer look" in review and "refund you shortly" not in review
    refunded = refunded_reply("#1042", Decimal("101"), "usd", LINES)
    assert "refunded 101.00 USD for 2 × Linen Shirt — M, 1 × Silk Scarf" in refunded
    assert (
        refunded.startswith("Thanks for sending your return: we have refunded")
        and "business days" in refunded
    )
    assert "have not waited for your parcel" in refunded_reply(
        "#1042", Decimal("28.005"), "CAD", LINES[:1], instant=True
    )
    assert "28.01 CAD" in refunded_reply("#1042", Decimal("28.005"), "CAD", LINES[:1])  # half up


def test_a_partial_refund_says_what_is_still_expected():
    text = partial_refund_reply("#1042", Decimal("56"), "USD", [("Linen Shirt — M", 2)], [("Silk Scarf", 1)])
    assert "refunded 56.00 USD for 2 × Linen Shirt — M" in text
    assert "not received 1 × Silk Scarf yet" in text
    assert "not received" not in partial_refund_reply("#1042", Decimal("56"), "USD", LINES, [])


def test_an_expired_return_says_so_and_offers_help():
    text = expired_reply("#1042")
    assert "#1042 has expired" in text and "reply" in text


@pytest.mark.parametrize(
    ("decision", "says", "offers_other_items"),
    [
        (refused("final_sale", "MN-SCARF-SILK is final sale and cannot be returned"), "final sale", True),
        (refused("outside_window", "the last day to return MN-TEE-BLK-M was 2026-12-06"), "2026-12-06", True),
        (refused("cancelled", "order #1042 was cancelled"), "was cancelled", False),
        (
            Decision(
                Verdict.REFUSED, ("MN-SCARF-SILK is final sale", "MN-HAT-WOOL is not among"), "final_sale"
            ),
            "MN-SCARF-SILK is final sale; MN-HAT-WOOL is not among",
            False,
        ),
        (invalid("nothing_asked", "the request names no items to return"), "names no items", False),
    ],
)
def test_a_refusal_explains_its_reasons(decision, says, offers_other_items):
    text = refused_return_reply("#1042", decision)
    assert says in text and "#1042" in text
    assert ("other items" in text) is offers_other_items


def test_a_stranger_is_told_nothing_about_the_order():
    text = refused_return_reply(
        "#1042", refused("not_requester", "we could not match order #1042 to your email")
    )
    assert text == "We could not start a return: we could not match order #1042 to your email."


def test_public_replies_carry_no_internal_ids():
    for text in public_texts():
        for internal in INTERNAL:
            assert internal not in text, (internal, text)


def test_the_internal_note_carries_every_id_and_the_decision():
    note = return_note_text(
        "gorgias:7:return",
        {
            "rma_number": "RA1042",
            "shopify_return_id": "gid://shopify/Return/945000954",
            "dcl_label_tracking": "9434636208303341234567",
            "stateset_return_id": None,
            "empty": "",
        },
        refused("final_sale", "MN-SCARF-SILK is final sale"),
    )
    lines = note.splitlines()
    assert lines[0] == "mienne-ops return gorgias:7:return"
    assert lines[1] == "refused: MN-SCARF-SILK is final sale [final_sale]"
    assert "rma_number: RA1042" in lines and "shopify_return_id: gid://shopify/Return/945000954" in lines
    assert "stateset_return_id" not in note and "empty" not in note
    assert len(return_note_text("k", {"a": 1}).splitlines()) == 2  # no decision line without one


@pytest.mark.parametrize(
    ("carrier", "service", "text"),
    [
        ("USPS", "GROUND ADVANTAGE", "USPS Ground Advantage"),
        ("CANADA POST", "EXPEDITED PARCEL", "Canada Post Expedited Parcel"),
        ("FEDEX", "GROUND", "FedEx Ground"),
    ],
)
def test_label_services_read_as_customers_know_them(carrier, service, text):
    assert service_text(carrier, service) == text


def test_days_are_written_in_english_whatever_the_locale():
    assert day_text(date(2026, 1, 1)) == "Thursday, January 1, 2026"
