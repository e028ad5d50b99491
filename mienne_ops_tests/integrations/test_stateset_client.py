"""The StateSet client against the StateSet sandbox over real HTTP."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from mienne_ops.errors import AuthError, RemoteValidationError
from mienne_ops.integrations.http import STATS
from mienne_ops.integrations.stateset import StateSetResource
from mienne_ops.sandbox import credentials
from mienne_ops_tests.support import single_system_server

server = single_system_server("stateset")


@pytest.fixture
def sandbox_url(server):
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    return server.url


def make_client(url: str, api_key: str = credentials.STATESET["api_key"]):
    resource = StateSetResource(base_url=f"{url}/stateset", api_key=api_key, retry_base_delay_seconds=0.01)
    return resource.build_client()


ORDER_DATA = {
    "customer_id": "cus_1",
    "items": [{"product_id": "MN-SERUM-001", "quantity": 2, "unit_price": 24.00, "total_amount": 48.00}],
    "metadata": {"source": "shopify"},
}


def test_wrong_api_key_is_an_auth_error(sandbox_url):
    with pytest.raises(AuthError):
        make_client(sandbox_url, api_key="sk_wrong").find_order_by_external_id("shopify-1")


def test_create_is_idempotent_by_external_id(sandbox_url):
    client = make_client(sandbox_url)
    first = client.create_order("shopify-order-1", ORDER_DATA)
    again = client.create_order("shopify-order-1", ORDER_DATA)
    assert first["id"] == again["id"] and first["id"].startswith("ord_")
    assert first["status"] == "PENDING" and first["object"] == "order"
    assert first["data"]["metadata"] == {"source": "shopify", "external_id": "shopify-order-1"}
    assert client.find_order_by_external_id("shopify-order-2") is None
    orders = httpx.get(f"{sandbox_url}/_sandbox/state").json()["stateset"]["orders"]
    assert len(orders) == 1


def test_lookup_accepts_only_an_exact_external_id_among_fuzzy_search_hits(sandbox_url):
    client = make_client(sandbox_url)
    # "shopify-order-1" is a substring of both: the search finds them, the client must not take one.
    client.create_order("shopify-order-10", ORDER_DATA)
    client.create_order("shopify-order-11", ORDER_DATA)
    headers = {"Authorization": f"Bearer {credentials.STATESET['api_key']}"}
    fuzzy = httpx.get(
        f"{sandbox_url}/stateset/orders/search", params={"query": "shopify-order-1"}, headers=headers
    ).json()
    assert fuzzy["total"] == 2
    assert client.find_order_by_external_id("shopify-order-1") is None
    created = client.create_order("shopify-order-1", ORDER_DATA)
    assert client.find_order_by_external_id("shopify-order-1")["id"] == created["id"]
    assert client.create_order("shopify-order-1", ORDER_DATA)["id"] == created["id"]
    orders = httpx.get(f"{sandbox_url}/_sandbox/state").json()["stateset"]["orders"]
    assert len(orders) == 3


def test_lookup_reads_every_search_page(sandbox_url):
    client = make_client(sandbox_url)
    for index in range(105):
        client.core.request(
            "POST",
            "orders",
            operation="seed",
            json={**ORDER_DATA, "metadata": {"external_id": f"ext-{index:03d}", "note": "ext-target"}},
        )
    target = client.create_order("ext-target", ORDER_DATA)
    # 106 hits for "ext-target" (the 105 mention it in their metadata); the exact one is on page 2.
    assert client.find_order_by_external_id("ext-target")["id"] == target["id"]


def test_ship_sends_the_sdk_shipping_details_and_repeats_safely(sandbox_url):
    client = make_client(sandbox_url)
    order = client.create_order("shopify-order-5", ORDER_DATA)
    shipped = client.ship_order(
        order["id"],
        carrier="UPS",
        method="GROUND",
        tracking_number="1Z1",
        shipping_cost=Decimal("7.50"),
        tracking_url="https://t/1Z1",
    )
    assert shipped["status"] == "SHIPPED"
    assert shipped["shipping_details"] == {
        "carrier": "UPS",
        "method": "GROUND",
        "tracking_number": "1Z1",
        "shipping_cost": 7.5,
        "tracking_url": "https://t/1Z1",
    }
    # Shipping again answers 409; the order already carries this tracking, so it is a success.
    again = client.ship_order(order["id"], carrier="UPS", method="GROUND", tracking_number="1Z1")
    assert again["status"] == "SHIPPED"
    client.order_action(order["id"], "deliver")
    assert (
        client.ship_order(order["id"], carrier="UPS", method="GROUND", tracking_number="1Z1")["status"]
        == "DELIVERED"
    )
    with pytest.raises(RemoteValidationError):
        client.ship_order(order["id"], carrier="UPS", method="GROUND", tracking_number="1Z3")


def test_invalid_transition_is_a_remote_validation_error(sandbox_url):
    client = make_client(sandbox_url)
    order = client.create_order("shopify-order-9", ORDER_DATA)
    client.order_action(order["id"], "cancel", {"reason": "customer request"})
    with pytest.raises(RemoteValidationError) as raised:
        client.ship_order(order["id"], carrier="UPS", method="GROUND", tracking_number="1Z9")
    assert raised.value.status == 409


def test_fulfillment_events_are_kept_in_history(sandbox_url):
    client = make_client(sandbox_url)
    order = client.create_order("shopify-order-11", ORDER_DATA)
    event = client.add_fulfillment_event(
        order["id"],
        {"timestamp": "2026-06-15T10:00:00Z", "status": "PICKING", "description": "picked at FR"},
    )
    assert event["status"] == "PICKING"
    events = client.get_order(order["id"])["data"]["fulfillment_events"]
    assert [(e["status"], e["description"]) for e in events] == [("PICKING", "picked at FR")]


def test_throttling_with_retry_after_is_retried(sandbox_url):
    """The 429's Retry-After is what the client waits (plus a little jitter), not its own backoff.

    The window's clock is frozen and moves only by the client's (recorded) waits, so the same
    requests are refused on every run however slowly they arrive.
    """
    client = make_client(sandbox_url)
    limits = f"{sandbox_url}/_sandbox/stateset/limits"
    settings = {"requests_per_second": 2, "retry_after_seconds": 3, "frozen_clock": True}
    httpx.post(limits, json=settings).raise_for_status()
    waits: list[float] = []

    def wait(seconds: float) -> None:  # instead of sleeping: the fake's window moves by the wait
        waits.append(seconds)
        httpx.post(limits, json={"advance_seconds": seconds}).raise_for_status()

    client.core.sleep = wait
    before = STATS.retries["stateset"]
    for index in range(5):
        assert client.find_order_by_external_id(f"none-{index}") is None
    # Calls 1-2 fill the window, 3 waits out Retry-After, 4 fits beside it, 5 waits again.
    assert len(waits) == 2 and all(3.0 <= w < 3.0 + client.core.retry.base_delay for w in waits)
    assert STATS.retries["stateset"] == before + 2
