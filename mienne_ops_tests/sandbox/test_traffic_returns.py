"""The demo traffic's returns: customers of shipped orders ask to send an item back, by turns in a
Gorgias ticket and in Shopify (driven step by step here; the simulator's thread never runs)."""

from __future__ import annotations

import random

import httpx

from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops.sandbox.traffic import TrafficSimulator


def shipped_order(sandbox, seed: int, **changes) -> dict:
    payload = build_order(sandbox.hub.catalog, random.Random(seed), gift_card=False)
    payload.update(fulfillment_status="fulfilled", **changes)
    created = sandbox.hub.system("shopify").inject_order(payload)
    return sandbox.hub.world.get("shopify", "order", created["id"])


def tickets(sandbox) -> list[dict]:
    return sandbox_state(sandbox.url)["gorgias"]["tickets"]


def test_no_shipped_order_no_return_request(sandbox):
    payload = build_order(sandbox.hub.catalog, random.Random(1), gift_card=False)
    sandbox.hub.system("shopify").inject_order(payload)  # not shipped yet
    assert TrafficSimulator(sandbox.hub, seed=1).ask_for_return() is None
    assert tickets(sandbox) == []


def test_a_shipped_orders_customer_asks_gorgias_for_a_return_naming_the_order_and_sku(sandbox):
    order = shipped_order(sandbox, 2)
    simulator = TrafficSimulator(sandbox.hub, seed=2)
    asked = simulator.ask_for_return()
    assert asked is not None and asked["id"] == order["id"]
    (ticket,) = tickets(sandbox)
    assert "return-request" in {t["name"] for t in ticket["tags"]}
    (message,) = [
        m for m in sandbox_state(sandbox.url)["gorgias"]["messages"] if m["ticket_id"] == ticket["id"]
    ]
    assert order["name"] in message["body_text"]
    assert order["email"].lower() in str(ticket).lower()
    # The same order is never asked about twice.
    assert simulator.ask_for_return() is None


def test_orders_that_were_cancelled_or_refunded_are_left_alone(sandbox):
    shipped_order(sandbox, 3, cancelled_at="2026-12-01T10:00:00Z")
    shipped_order(sandbox, 4, financial_status="refunded")
    assert TrafficSimulator(sandbox.hub, seed=3).ask_for_return() is None


def test_the_simulator_alternates_tickets_and_shopify_return_requests(sandbox):
    shipped_order(sandbox, 5)
    shipped_order(sandbox, 6)
    simulator = TrafficSimulator(sandbox.hub, seed=5)
    simulator.ask_for_return()
    assert len(tickets(sandbox)) == 1
    simulator.ask_for_return()
    shopify = sandbox.hub.system("shopify")
    if getattr(shopify, "request_return", None) is None:  # no Shopify return requests: a ticket
        assert len(tickets(sandbox)) == 2
    else:  # a Shopify request, or a ticket when Shopify refused it (these orders have no fulfillment)
        requested = httpx.get(f"{sandbox.url}/_sandbox/state").json()["shopify"].get("returns", [])
        assert len(tickets(sandbox)) + len(requested) == 2
