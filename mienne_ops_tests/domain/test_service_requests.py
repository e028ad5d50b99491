"""Request details, keys and the ticket rules: what a request is before anything runs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from mienne_ops.domain.service_requests import (
    RequestDetails,
    RequestedLine,
    RequestKind,
    SubscriptionAction,
    TicketRef,
    operator_request_key,
    order_names_in,
    ticket_request_key,
)
from mienne_ops.domain.ticket_rules import TicketRules


def test_lines_parse_as_the_cli_takes_them():
    assert RequestedLine.parse("MN-TEE-BLK-M:2") == RequestedLine(sku="MN-TEE-BLK-M", quantity=2)
    assert RequestedLine.parse("MN-TEE-BLK-M") == RequestedLine(sku="MN-TEE-BLK-M", quantity=1)
    for bad in ("MN-TEE:x", ":2", "MN-TEE:-1", "MN-TEE:0"):
        with pytest.raises((ValueError, ValidationError)):
            RequestedLine.parse(bad)


@pytest.mark.parametrize("amount", ["0", "-5.00", "5.001"])
def test_an_amount_is_positive_whole_cents(amount):
    with pytest.raises(ValidationError):
        RequestDetails(amount=Decimal(amount))


def test_the_same_operator_command_is_one_request_and_a_given_key_makes_another():
    details = RequestDetails(lines=(RequestedLine(sku="A", quantity=1),), shipping=True)
    same = operator_request_key(RequestKind.REFUND, "#1001", details, None)
    assert same == operator_request_key(RequestKind.REFUND, "#1001", details.model_copy(), None)
    assert same != operator_request_key(RequestKind.REFUND, "#1002", details, None)
    assert (
        operator_request_key(RequestKind.REFUND, "#1001", details, "second-goodwill")
        == "operator:second-goodwill"
    )


def test_a_ticket_makes_one_request_of_each_kind():
    ticket = TicketRef("gorgias", "42")
    assert ticket_request_key(ticket, RequestKind.REFUND) == "gorgias:42:refund"
    assert ticket_request_key(ticket, RequestKind.CANCEL) != ticket_request_key(ticket, RequestKind.REFUND)


def test_order_names_are_found_in_what_the_customer_wrote():
    text = "Hi, please cancel order #1004 (not # 1003!). Again: #1004"
    assert order_names_in(text) == ["#1004", "#1003"]
    assert order_names_in("call me at 555 1234") == []


def test_ticket_rules_read_tags():
    rules = TicketRules(
        cancel_tags=frozenset({"cancel-order"}),
        refund_tags=frozenset({"refund-request"}),
        cancel_subscription_tags=frozenset({"cancel-subscription"}),
        skip_subscription_tags=frozenset({"skip-subscription"}),
    )
    assert rules.kinds(frozenset({"vip", "cancel-order"})) == [RequestKind.CANCEL]
    assert rules.kinds(frozenset({"refund-request", "cancel-order"})) == [
        RequestKind.CANCEL,
        RequestKind.REFUND,
    ]
    assert rules.kinds(frozenset({"question"})) == []
    assert rules.subscription_action(frozenset({"cancel-subscription"})) == SubscriptionAction.CANCEL
    assert rules.subscription_action(frozenset()) == SubscriptionAction.NONE
