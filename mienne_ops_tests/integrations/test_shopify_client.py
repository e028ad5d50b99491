"""The Shopify client against the Shopify sandbox over real HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from mienne_ops.errors import AuthError, RemoteValidationError
from mienne_ops.integrations.http import STATS, HttpCore, RetryPolicy
from mienne_ops.integrations.shopify import ShopifyClient, ShopifyResource, legacy_id, verify_webhook
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.server import SandboxServer
from mienne_ops_tests.support import single_system_server

FAST = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05)


server = single_system_server("shopify")


@pytest.fixture
def sandbox(server) -> Iterator[SandboxServer]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server
    httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True})


def make_client(sandbox, token: str = credentials.SHOPIFY["access_token"]) -> ShopifyClient:
    core = HttpCore(
        "shopify",
        f"{sandbox.url}/shopify",
        headers={"X-Shopify-Access-Token": token},
        retry=FAST,
    )
    return ShopifyClient(core)


@pytest.fixture
def client(sandbox) -> Iterator[ShopifyClient]:
    shopify = make_client(sandbox)
    yield shopify
    shopify.close()


def inject(sandbox, **order) -> dict:
    order.setdefault(
        "line_items", [{"sku": "MN-SERUM-001", "quantity": 2}, {"sku": "MN-CREAM-002", "quantity": 1}]
    )
    order.setdefault("email", "ava.garcia0@example.com")
    response = httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=order)
    assert response.status_code == 201
    return response.json()


def test_bad_token_raises_auth_error(sandbox):
    shopify = make_client(sandbox, token="shpat_wrong")
    with pytest.raises(AuthError) as raised:
        shopify.get_order(1)
    assert raised.value.status == 401 and "Invalid API key" in str(raised.value)


def test_resource_builds_a_working_client(sandbox):
    resource = ShopifyResource(
        shop_url=f"{sandbox.url}/shopify",
        access_token=credentials.SHOPIFY["access_token"],
        api_secret=credentials.SHOPIFY["api_secret"],
        retry_base_delay_seconds=0.01,
    )
    created = inject(sandbox)
    assert resource.client.get_order(created["id"])["name"] == created["name"]
    assert resource.verify_webhook(b"{}", "nope") is False


def test_get_order_returns_the_order_fields_shape(client, sandbox):
    created = inject(sandbox, tags="vip, wholesale")
    node = client.get_order(created["id"])
    assert node["id"] == created["admin_graphql_api_id"]
    assert node["legacyResourceId"] == str(created["id"])
    assert node["tags"] == ["vip", "wholesale"]
    assert node["displayFinancialStatus"] == "PAID"
    assert [line["sku"] for line in node["lineItems"]["nodes"]] == ["MN-SERUM-001", "MN-CREAM-002"]
    assert node["transactions"][0]["kind"] == "SALE"
    assert (
        node["transactions"][0]["amountSet"]["shopMoney"]["amount"]
        == node["totalPriceSet"]["shopMoney"]["amount"]
    )
    assert client.get_order(999) is None


def test_iter_orders_pages_through_every_match(client, sandbox):
    created = [inject(sandbox) for _ in range(7)]
    inject(sandbox, financial_status="pending")
    calls_before = STATS.calls["shopify:orders"]
    nodes = list(client.iter_orders("financial_status:paid AND status:open", page_size=3))
    assert [n["legacyResourceId"] for n in nodes] == [str(c["id"]) for c in created]
    assert STATS.calls["shopify:orders"] - calls_before == 3
    ids = list(client.iter_order_ids("financial_status:paid", page_size=2))
    assert ids == [str(c["id"]) for c in created]


def test_add_tags_is_additive_and_idempotent(client, sandbox):
    created = inject(sandbox, tags="vip")
    client.add_tags(created["id"], ["SENT_TO_NS"])
    first_update = client.get_order(created["id"])["updatedAt"]
    client.add_tags(created["id"], ["SENT_TO_NS", "sent_to_ns"])
    node = client.get_order(created["id"])
    assert node["tags"] == ["vip", "SENT_TO_NS"]
    assert node["updatedAt"] == first_update
    assert list(client.iter_order_ids("-tag:SENT_TO_NS")) == []
    with pytest.raises(RemoteValidationError):
        client.add_tags(12345, ["x"])


def test_partial_then_complete_fulfillment_with_two_tracking_numbers(client, sandbox):
    created = inject(sandbox)
    [fo] = client.fulfillment_orders(created["id"])
    order_lines = {line["id"]: line for line in client.get_order(created["id"])["lineItems"]["nodes"]}
    assert fo["status"] == "OPEN"
    assert all(
        line["id"] not in order_lines and line["line_item_id"] in order_lines for line in fo["line_items"]
    )
    serum = next(line for line in fo["line_items"] if line["sku"] == "MN-SERUM-001")

    first = client.create_fulfillment(
        [(fo["id"], [(serum["id"], 1)])], tracking_company="UPS", tracking_numbers=["1Z999AA10123456784"]
    )
    assert first["tracking_numbers"] == ["1Z999AA10123456784"]
    assert client.get_order(created["id"])["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    [fo] = client.fulfillment_orders(created["id"])
    assert fo["status"] == "IN_PROGRESS"
    assert next(line for line in fo["line_items"] if line["sku"] == "MN-SERUM-001")["remaining_quantity"] == 1

    rest = [
        (line["id"], line["remaining_quantity"]) for line in fo["line_items"] if line["remaining_quantity"]
    ]
    second = client.create_fulfillment(
        [(fo["id"], rest)],
        tracking_company=None,
        tracking_numbers=["1Z999AA10123456785", "1Z999AA10123456786"],
    )
    assert second["tracking_numbers"] == ["1Z999AA10123456785", "1Z999AA10123456786"]
    fulfillments = client.fulfillments(created["id"])
    assert [f["tracking_numbers"] for f in fulfillments] == [
        ["1Z999AA10123456784"],
        ["1Z999AA10123456785", "1Z999AA10123456786"],
    ]
    assert fulfillments[1]["tracking_company"] == "UPS"  # detected from the number format
    assert sorted(x["quantity"] for x in fulfillments[1]["line_items"]) == [1, 1]
    assert client.fulfillment_orders(created["id"])[0]["status"] == "CLOSED"
    assert client.get_order(created["id"])["displayFulfillmentStatus"] == "FULFILLED"

    with pytest.raises(RemoteValidationError) as raised:
        client.create_fulfillment([(fo["id"], [])], tracking_company="UPS", tracking_numbers=["1Z1"])
    assert "unfulfillable status" in str(raised.value)


def test_over_fulfilment_is_a_remote_validation_error(client, sandbox):
    created = inject(sandbox)
    [fo] = client.fulfillment_orders(created["id"])
    line = fo["line_items"][0]
    with pytest.raises(RemoteValidationError) as raised:
        client.create_fulfillment(
            [(fo["id"], [(line["id"], line["remaining_quantity"] + 1)])],
            tracking_company="UPS",
            tracking_numbers=["1Z999AA10123456784"],
            record="shipment-1",
        )
    assert "quantity" in str(raised.value) and "shipment-1" in str(raised.value)
    assert client.fulfillments(created["id"]) == []


def test_throttled_answer_is_waited_out_and_retried(sandbox):
    created = inject(sandbox)
    warm = make_client(sandbox)
    warm.get_order(created["id"])
    cost = warm.throttle._expected["order"]
    # A slow restore: the warm call keeps only its actual cost (well below `cost`), so the bucket
    # must stay short of a full reservation for a fraction of a second.
    httpx.post(
        f"{sandbox.url}/_sandbox/shopify/limits", json={"bucket_size": cost + 5, "restore_rate": cost}
    ).raise_for_status()
    warm.get_order(created["id"])  # leaves less than one reservation in the tiny bucket
    fresh = make_client(sandbox)  # knows nothing of the bucket, so Shopify answers THROTTLED
    retries_before = STATS.retries["shopify"]
    assert fresh.get_order(created["id"])["name"] == created["name"]
    assert STATS.retries["shopify"] > retries_before


def test_client_side_throttle_waits_before_a_call_that_would_not_fit(client, sandbox):
    created = inject(sandbox)
    client.get_order(created["id"])
    cost = client.throttle._expected["order"]
    httpx.post(
        f"{sandbox.url}/_sandbox/shopify/limits", json={"bucket_size": cost + 5, "restore_rate": cost * 4}
    ).raise_for_status()
    client.get_order(created["id"])  # learns the tiny bucket
    waits: list[float] = []
    client.core.sleep = lambda seconds: (waits.append(seconds), time.sleep(seconds))
    retries_before = STATS.retries["shopify"]
    for _ in range(3):
        client.get_order(created["id"])
    assert STATS.retries["shopify"] == retries_before  # never throttled by the server
    assert len(waits) >= 2 and all(0 < w <= 0.3 for w in waits)  # waited for the restore instead


def test_concurrent_callers_share_the_bucket_instead_of_racing_it(client, sandbox):
    created = inject(sandbox)
    client.get_order(created["id"])
    cost = client.throttle._expected["order"]
    httpx.post(
        f"{sandbox.url}/_sandbox/shopify/limits",
        json={"bucket_size": cost * 2 + 5, "restore_rate": cost * 8},
    ).raise_for_status()
    client.get_order(created["id"])  # learns the small bucket
    retries_before = STATS.retries["shopify"]
    with ThreadPoolExecutor(max_workers=6) as pool:
        names = list(pool.map(lambda _: client.get_order(created["id"])["name"], range(12)))
    assert names == [created["name"]] * 12
    assert STATS.retries["shopify"] == retries_before  # reservations queued the callers


def test_injected_5xx_and_429_are_retried(client, sandbox):
    created = inject(sandbox)
    faults = {"shopify": {"error_rate": 0.5, "error_status": 503}, "seed": 3}
    httpx.post(f"{sandbox.url}/_sandbox/faults", json=faults).raise_for_status()
    retries_before = STATS.retries["shopify"]
    for _ in range(4):
        assert client.get_order(created["id"])["name"] == created["name"]
    assert STATS.retries["shopify"] > retries_before
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"clear": True, "seed": 1}).raise_for_status()
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"shopify": {"rate_429": 0.5, "burst_length": 1}})
    retries_before = STATS.retries["shopify"]
    for _ in range(3):
        assert client.get_order(created["id"])["name"] == created["name"]
    assert STATS.retries["shopify"] > retries_before


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list]]:
    _Receiver.received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/webhooks/shopify", _Receiver.received
    httpd.shutdown()


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_webhooks_are_signed_and_duplicates_share_the_event_id(client, sandbox, receiver):
    uri, received = receiver
    sub_id = client.subscribe_webhook("orders/create", uri)
    assert client.subscribe_webhook("ORDERS_CREATE", uri) == sub_id  # idempotent
    client.subscribe_webhook("orders/paid", uri)
    assert {s["topic"] for s in client.list_webhook_subscriptions()} == {"ORDERS_CREATE", "ORDERS_PAID"}
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"shopify": {"webhook_duplicate_rate": 1.0}})

    created = inject(sandbox)
    wait_for(lambda: len(received) >= 4)
    creates = [(h, b) for h, b in received if h["X-Shopify-Topic"] == "orders/create"]
    assert len(creates) == 2
    secret = credentials.SHOPIFY["api_secret"]
    for headers, body in creates:
        assert verify_webhook(secret, body, headers["X-Shopify-Hmac-Sha256"])
        assert not verify_webhook("wrong-secret", body, headers["X-Shopify-Hmac-Sha256"])
        assert json.loads(body)["id"] == created["id"]
        assert headers["X-Shopify-Shop-Domain"] == credentials.SHOPIFY["shop_domain"]
    assert creates[0][0]["X-Shopify-Event-Id"] == creates[1][0]["X-Shopify-Event-Id"]
    assert creates[0][0]["X-Shopify-Webhook-Id"] != creates[1][0]["X-Shopify-Webhook-Id"]
    assert legacy_id(sub_id) > 0
