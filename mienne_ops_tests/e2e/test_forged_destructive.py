"""Validly signed but lying deliveries change nothing anywhere (issue 13, probe 2).

The HMAC covers a Shopify delivery's body, not its topic header; our Gorgias integration signs
nothing but a shared secret. So a captured delivery can be replayed under another topic with a new
event id, and whoever holds the secret can name anything. Every destructive action such a delivery
can reach (cancel, refund, return, a ticket's request) decides on the resource re-read from its
vendor: each forgery below leaves every vendor's records as they were (``GET /_sandbox/state``) and
an exception an operator sees; the one genuine cancellation is carried out and audited (DCL's cancel
included, which the probe found missing from the audit).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.domain.service_requests import RequestStatus
from mienne_ops.integrations.gorgias import WEBHOOK_SECRET_HEADER
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.shopify import sign
from mienne_ops.sync.orders import FLOW as FLOW_A
from mienne_ops.sync.service_requests import FLOW as FLOW_F
from mienne_ops_tests.e2e import flow_f_kit as kit

pytestmark = pytest.mark.e2e

SENSORS = [
    "shopify_orders_sensor",
    "netsuite_dispatch_sensor",
    "dcl_shipments_sensor",
    "service_requests_sensor",
]
# What a forgery could touch: every record of the systems that hold money, goods and orders.
VENDORS = ("shopify", "netsuite", "dcl", "stateset", "recharge")
# Counters and queues, not records: they move with any read or delivery.
VOLATILE = {"webhook_deliveries", "webhooks_pending", "bulk_operations", "concurrency_limit", "jobs"}


def records(url: str) -> dict[str, Any]:
    state = sandbox_state(url)
    return {
        system: {k: v for k, v in state[system].items() if k not in VOLATILE}
        for system in VENDORS
        if system in state
    }


def wait_for_webhooks(url: str) -> None:
    deadline = time.monotonic() + 120  # a guard against a hang, generous for a busy CI box
    while sandbox_state(url)["shopify"]["webhooks_pending"]:
        assert time.monotonic() < deadline, "sandbox webhooks did not drain"
        time.sleep(0.1)


def settle(stack) -> None:
    wait_for_webhooks(stack["sandbox"].url)
    stack["driver"].settle(SENSORS)


def captured(stack, topic: str, resource_id: str) -> bytes:
    """The body of a delivery the receiver stored (what an attacker on the path would capture)."""
    event = next(
        e
        for e in stack["ledger"].events_after("shopify", 0, limit=10_000)
        if e.topic == topic and e.resource_id == resource_id
    )
    return json.dumps(event.payload).encode()


def forge(stack, topic: str, body: bytes) -> None:
    """``body`` delivered under ``topic`` with a new event id: signed as the original was (the HMAC
    covers the body only), inside the replay window, from our shop. The receiver stores it."""
    response = deliver(stack, topic, body)
    assert response.status_code == 200 and response.json()["stored"], response.text


def deliver(stack, topic: str, body: bytes) -> httpx.Response:
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(body, credentials.SHOPIFY["api_secret"]),
        "X-Shopify-Shop-Domain": credentials.SHOPIFY["shop_domain"],
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
    }
    return httpx.post(stack["receiver"].url, content=body, headers=headers, timeout=30)


def open_exceptions(stack, flow: str) -> dict[str, str]:
    return {e.key: e.reason for e in stack["ledger"].exceptions(statuses=["open"], flow=flow)}


def test_a_create_replayed_as_a_cancellation_changes_nothing_and_a_real_one_is_audited(stack):
    url, ledger = stack["sandbox"].url, stack["ledger"]
    placed = kit.place(stack, 61)
    key = str(placed["id"])
    settle(stack)
    dcl = kit.dcl_order(url, key)
    assert dcl is not None and not dcl["is_cancelled"], "the order should be at DCL"
    before = records(url)

    created = captured(stack, "orders/create", key)
    # Relabelled as it was captured: the body is not a cancelled order, so it is refused at the door.
    refused = deliver(stack, "orders/cancelled", created)
    assert (refused.status_code, refused.json()["reason"]) == (422, "topic_mismatch")
    # With the secret (a leaked one, or an insider) a body can say anything: the cancel path asks
    # Shopify, which says the order is open, and cancels nothing.
    forge(
        stack,
        "orders/cancelled",
        json.dumps({**json.loads(created), "cancelled_at": "2026-01-01T00:00:00Z"}).encode(),
    )
    settle(stack)

    assert records(url) == before
    assert open_exceptions(stack, FLOW_A)[key] == "not_cancelled_in_shopify"
    # Its own entity: a forged cancellation neither blocks nor resolves the order's import exceptions.
    assert [e.entity for e in ledger.exceptions(flow=FLOW_A, key=key)] == ["cancellation"]
    assert ledger.journey(key).stage != "cancelled"
    assert not {a["operation"] for a in ledger.audit_trail([key])} & {"order.cancel", "salesOrder.close"}

    # The merchant really cancels it: DCL, NetSuite and StateSet follow, each write audited.
    kit.post(url, f"/_sandbox/shopify/orders/{key}/cancel", {})
    settle(stack)

    assert kit.dcl_order(url, key)["is_cancelled"]
    assert all(line["isClosed"] for line in kit.sales_order(url, key)["lines"])
    assert kit.stateset_order(url, key)["status"] == "CANCELLED"
    assert ledger.journey(key).stage == "cancelled"
    audited = {(a["system"], a["operation"]) for a in ledger.audit_trail([key]) if a["outcome"] == "ok"}
    assert {("dcl", "order.cancel"), ("netsuite", "salesOrder.close")} <= audited
    assert ("stateset", "order.cancel") in audited
    assert key not in open_exceptions(stack, FLOW_A)  # the genuine cancellation settled it


def test_refund_and_return_deliveries_shopify_does_not_confirm_change_nothing(stack):
    url, ledger = stack["sandbox"].url, stack["ledger"]
    placed = kit.place(stack, 62)
    key = str(placed["id"])
    settle(stack)
    kit.shipped(stack, key)  # billed: a refund would be booked in NetSuite, a return could open
    settle(stack)
    before = records(url)
    order_body = captured(stack, "orders/create", key)

    forge(stack, "refunds/create", order_body)  # an order's body: it names no order_id
    lie = {"id": 990001, "order_id": int(key), "note": "refund", "refund_line_items": [], "transactions": []}
    forge(stack, "refunds/create", json.dumps(lie).encode())  # a refund the order does not have
    forge(stack, "returns/request", order_body)  # names the Order gid, not a return
    ghost = {"id": 990002, "admin_graphql_api_id": "gid://shopify/Return/990002", "order_id": int(key)}
    forge(stack, "returns/request", json.dumps(ghost).encode())  # a return that does not exist
    settle(stack)

    assert records(url) == before
    assert not kit.requests(stack, key) and not ledger.returns(shopify_order_id=key)
    problems = open_exceptions(stack, FLOW_F)
    assert problems[f"refunds/create::{key}"] == "refund_not_in_shopify"
    assert problems[f"refunds/create:{key}:990001"] == "refund_not_in_shopify"
    assert problems[f"gid://shopify/Order/{key}"] == "return_not_in_shopify"
    assert problems["gid://shopify/Return/990002"] == "return_not_in_shopify"


def test_a_ticket_the_vendor_does_not_back_changes_nothing(stack):
    url, ledger = stack["sandbox"].url, stack["ledger"]
    placed = kit.place(stack, 63)
    key = str(placed["id"])
    settle(stack)
    before = records(url)

    # A Gorgias call (the shared secret is right) naming a ticket Gorgias does not have.
    call = {"ticket_id": 990003, "message_id": 1, "event": "ticket-created"}
    secret = {WEBHOOK_SECRET_HEADER: credentials.GORGIAS["webhook_secret"]}
    response = httpx.post(stack["receiver"].gorgias_url, json=call, headers=secret, timeout=30)
    assert response.status_code == 200, response.text
    # A real ticket asking to refund an order, from someone who is not its customer.
    stranger = kit.ticket(stack, placed["name"], ["refund-request"], email="mallory@example.net")
    settle(stack)

    assert records(url) == before
    assert "gorgias:990003" in open_exceptions(stack, FLOW_F)
    (request,) = kit.requests(stack, key)
    assert request.status == RequestStatus.FAILED and "not the customer" in request.decision[0]
    assert open_exceptions(stack, FLOW_F)[request.request_key] == "not_the_customer"
    assert not kit.replies(url, stranger["id"])  # bad input is for the support team, not the sender
    assert any(request.request_key in note for note in kit.notes(url, stranger["id"]))
    assert ledger.journey(key).stage != "cancelled"
