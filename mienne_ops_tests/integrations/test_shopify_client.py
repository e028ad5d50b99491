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
from mienne_ops.integrations.shopify import (
    CostThrottle,
    ShopifyClient,
    ShopifyResource,
    legacy_id,
    verify_webhook,
)
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


class FakeClock:
    """A monotonic clock that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def throttle_status(available: float, *, requested: float, actual: float | None) -> dict:
    status = {"maximumAvailable": 100.0, "currentlyAvailable": available, "restoreRate": 10.0}
    return {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": status}


def test_cost_throttle_reserves_the_expected_cost_and_waits_for_the_restore():
    clock = FakeClock()
    throttle = CostThrottle(clock)
    assert throttle.reserve("q") == (0.0, 0.0)  # nothing known yet: send and learn
    throttle.observe("q", throttle_status(100, requested=60, actual=60))
    assert throttle.reserve("q") == (0.0, 60.0)  # 100 -> 40
    assert throttle.reserve("q") == (2.0, 60.0)  # 40 -> -20: 20 points short at 10 per second
    clock.now += 2.0  # restored to 0
    assert throttle.reserve("q") == (6.0, 60.0)
    clock.now += 1000.0  # never above the bucket
    assert throttle.reserve("q") == (0.0, 60.0)
    assert throttle.reserve("q") == (2.0, 60.0)


def test_cost_throttle_refunds_requested_minus_actual_and_believes_a_lower_server_count():
    throttle = CostThrottle(FakeClock())
    throttle.observe("q", throttle_status(100, requested=60, actual=60))
    _, reserved = throttle.reserve("q")  # 40 left
    throttle.observe("q", throttle_status(90, requested=60, actual=10), reserved)  # 50 refunded
    assert throttle.reserve("q") == (0.0, 60.0)  # 90 -> 30
    throttle.observe("q", throttle_status(5, requested=60, actual=60), 60.0)  # another caller spent
    assert throttle.reserve("q") == ((60 - 5) / 10, 60.0)


def test_concurrent_reservations_queue_behind_each_other():
    throttle = CostThrottle(FakeClock())
    throttle.observe("q", throttle_status(100, requested=30, actual=30))
    with ThreadPoolExecutor(max_workers=6) as pool:
        waits = sorted(wait for wait, _ in pool.map(lambda _: throttle.reserve("q"), range(12)))
    # 100 points cover three reservations at once; each later one waits 3 s (30 / 10) more.
    assert waits == [0.0, 0.0, 0.0] + [2.0 + 3.0 * n for n in range(9)]  # 20 short, then 50, 80 …


def test_throttled_answer_is_waited_out_and_retried(sandbox):
    created = inject(sandbox)
    limits = f"{sandbox.url}/_sandbox/shopify/limits"
    warm = make_client(sandbox)
    warm.get_order(created["id"])
    cost = warm.throttle._expected["order"]
    # One reservation deep, restoring 1 point/s: once the warm call has kept its actual cost, a
    # full reservation does not fit again for tens of seconds.
    httpx.post(limits, json={"bucket_size": cost + 5, "restore_rate": 1}).raise_for_status()
    warm.get_order(created["id"])
    fresh = make_client(sandbox)  # knows nothing of the bucket, so Shopify answers THROTTLED
    waits: list[float] = []

    def wait(seconds: float) -> None:  # instead of sleeping: note the wait, then refill the bucket
        waits.append(seconds)
        httpx.post(limits, json={"bucket_size": cost + 5, "restore_rate": 1}).raise_for_status()

    fresh.core.sleep = wait
    retries_before = STATS.retries["shopify"]
    assert fresh.get_order(created["id"])["name"] == created["name"]
    assert STATS.retries["shopify"] == retries_before + 1
    # The wait Shopify implies: (requested - currentlyAvailable) / restoreRate, a few seconds here.
    assert len(waits) == 1 and 1 < waits[0] < cost / 2


def test_client_side_throttle_waits_instead_of_being_throttled(client, sandbox):
    created = inject(sandbox)
    client.get_order(created["id"])
    cost = client.throttle._expected["order"]
    limits = f"{sandbox.url}/_sandbox/shopify/limits"
    httpx.post(limits, json={"bucket_size": cost + 5, "restore_rate": 1}).raise_for_status()
    clock = FakeClock()
    client.throttle = CostThrottle(clock)
    waits: list[float] = []

    def wait(seconds: float) -> None:  # time passes for both sides: the model's clock and the bucket
        waits.append(seconds)
        clock.now += seconds
        httpx.post(limits, json={"bucket_size": cost + 5, "restore_rate": 1}).raise_for_status()

    client.core.sleep = wait
    client.get_order(created["id"])  # learns the tiny bucket
    retries_before = STATS.retries["shopify"]
    for _ in range(3):
        assert client.get_order(created["id"])["name"] == created["name"]
    assert STATS.retries["shopify"] == retries_before  # never throttled by the server
    assert len(waits) >= 2 and all(0 < w <= cost for w in waits)  # waited for the restore instead


def test_concurrent_callers_share_the_bucket_instead_of_racing_it(client, sandbox):
    """Every caller's reservation and refund lands in the one shared model (the queueing itself is
    `test_concurrent_reservations_queue_behind_each_other`)."""
    created = inject(sandbox)
    httpx.post(f"{sandbox.url}/_sandbox/shopify/limits", json={"plan": "plus"}).raise_for_status()
    client.throttle = CostThrottle(FakeClock())  # no restore in the model: its arithmetic is exact
    client.get_order(created["id"])  # learns the bucket and the order's cost
    before = client.throttle._tokens
    assert before is not None
    spent: list[float] = []
    original = client.throttle.observe

    def observe(operation, cost, reserved=0.0):
        spent.append(float(cost["actualQueryCost"]))
        original(operation, cost, reserved)

    client.throttle.observe = observe  # type: ignore[method-assign]
    retries_before = STATS.retries["shopify"]
    with ThreadPoolExecutor(max_workers=6) as pool:
        names = list(pool.map(lambda _: client.get_order(created["id"])["name"], range(12)))
    assert names == [created["name"]] * 12
    assert STATS.retries["shopify"] == retries_before  # the reservations fit: nobody was throttled
    # Twelve reservations of the requested cost and twelve refunds of requested − actual: the model
    # spent at least what Shopify charged (a refund may be trimmed to an answer's `currentlyAvailable`
    # taken while other calls were still in flight: cautious, never optimistic) and never more than
    # the twelve reservations.
    requested = client.throttle._expected["order"]
    assert len(spent) == 12
    assert before - 12 * requested <= client.throttle._tokens <= before - sum(spent)


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


def wait_for(predicate, timeout: float = 60.0) -> None:
    """Poll until ``predicate`` holds; the timeout only guards against a hang (busy CI box)."""
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


# -- long orders: every nested list is read in full --------------------------------------------
def catalog_skus(sandbox) -> list[str]:
    catalog = httpx.get(f"{sandbox.url}/_sandbox/catalog").json()
    return [s["sku"] for s in catalog["skus"] if not s.get("bundle")]


def long_order(sandbox, lines: int, **order) -> dict:
    skus = catalog_skus(sandbox)
    line_items = [{"sku": skus[i % len(skus)], "quantity": 1 + i % 3} for i in range(lines)]
    return inject(sandbox, line_items=line_items, **order)


def calls(operation: str) -> int:
    return STATS.calls[f"shopify:{operation}"]


@pytest.mark.parametrize(("lines", "more_pages"), [(55, 1), (260, 5)])
def test_an_order_is_read_with_every_line(client, sandbox, lines, more_pages):
    created = long_order(sandbox, lines)
    before = calls("order_line_items")
    node = client.get_order(created["id"])
    read = node["lineItems"]["nodes"]
    assert len(read) == lines and len({line["id"] for line in read}) == lines
    assert [line["quantity"] for line in read] == [1 + i % 3 for i in range(lines)]
    assert node["lineItems"]["pageInfo"]["hasNextPage"] is False
    assert calls("order_line_items") - before == more_pages  # 50 with the order, then 50 a page


def test_iter_orders_completes_every_long_order_of_a_page(client, sandbox):
    short = inject(sandbox)
    created = long_order(sandbox, 55)
    nodes = {n["legacyResourceId"]: n for n in client.iter_orders("financial_status:paid")}
    assert len(nodes[str(created["id"])]["lineItems"]["nodes"]) == 55
    assert len(nodes[str(short["id"])]["lineItems"]["nodes"]) == 2


def test_shipping_lines_and_transactions_past_the_first_page_are_read(client, sandbox):
    shipping = [{"code": f"SHIP-{i}", "title": f"Parcel {i}", "price": "1.00"} for i in range(7)]
    transactions = [{"kind": "sale", "gateway": "gift_card", "amount": "1.00"} for _ in range(12)]
    created = inject(sandbox, shipping_lines=shipping, transactions=transactions)
    node = client.get_order(created["id"])
    assert [s["code"] for s in node["shippingLines"]["nodes"]] == [f"SHIP-{i}" for i in range(7)]
    assert len(node["transactions"]) == 12


def test_fulfillment_orders_with_more_lines_than_a_page_are_read_in_full(client, sandbox):
    created = long_order(sandbox, 260)
    [fo] = client.fulfillment_orders(created["id"])
    assert len(fo["line_items"]) == 260 and len({line["id"] for line in fo["line_items"]}) == 260
    assert sum(line["remaining_quantity"] for line in fo["line_items"]) == sum(1 + i % 3 for i in range(260))
    fulfillments, [state_fo] = client.fulfillment_state(created["id"])
    assert fulfillments == [] and state_fo == fo


def test_fulfillments_past_the_first_few_and_their_long_lists_are_read_in_full(client, sandbox):
    created = long_order(sandbox, 17)
    [fo] = client.fulfillment_orders(created["id"])
    lines = fo["line_items"]
    numbers = [f"1Z999AA1012345{n:04d}" for n in range(11)]
    # One fulfillment of 12 lines with 11 tracking numbers, then five of one line each.
    client.create_fulfillment(
        [(fo["id"], [(line["id"], line["remaining_quantity"]) for line in lines[:12]])],
        tracking_company="UPS",
        tracking_numbers=numbers,
    )
    for index, line in enumerate(lines[12:]):
        client.create_fulfillment(
            [(fo["id"], [(line["id"], line["remaining_quantity"])])],
            tracking_company="UPS",
            tracking_numbers=[f"1Z999AA1019999{index:04d}"],
        )
    for fulfillments in (client.fulfillments(created["id"]), client.fulfillment_state(created["id"])[0]):
        assert len(fulfillments) == 6
        first = next(f for f in fulfillments if len(f["line_items"]) > 1)
        assert len(first["line_items"]) == 12 and first["tracking_numbers"] == numbers
        assert sorted(len(f["line_items"]) for f in fulfillments) == [1, 1, 1, 1, 1, 12]


def test_holds_mirror_to_every_open_fulfillment_order_once_and_release_by_handle(client, sandbox):
    order = inject(sandbox)
    order_id = int(order["id"])
    first = client.hold_fulfillment_orders(
        order_id, "HIGH_RISK_OF_FRAUD", "Shopify risk HIGH", "mienne-fraud_risk"
    )
    assert first and all(h.startswith("gid://shopify/FulfillmentHold/") for h in first)
    again = client.hold_fulfillment_orders(
        order_id, "HIGH_RISK_OF_FRAUD", "Shopify risk HIGH", "mienne-fraud_risk"
    )
    assert again == first  # the same holds, not a second one per fulfillment order
    other = client.hold_fulfillment_orders(order_id, "OTHER", "customer asked to wait", "mienne-manual")
    fos = client.fulfillment_orders(order_id)
    assert {fo["status"] for fo in fos} == {"ON_HOLD"}
    assert sorted(h["handle"] for fo in fos for h in fo["holds"]) == sorted(
        ["mienne-fraud_risk"] * len(first) + ["mienne-manual"] * len(other)
    )
    assert client.release_fulfillment_holds(order_id, "mienne-fraud_risk") == len(first)
    assert client.release_fulfillment_holds(order_id, "mienne-fraud_risk") == 0  # nothing left to release
    assert {fo["status"] for fo in client.fulfillment_orders(order_id)} == {"ON_HOLD"}  # still held by hand
    client.release_fulfillment_holds(order_id, "mienne-manual")
    assert {fo["status"] for fo in client.fulfillment_orders(order_id)} == {"OPEN"}
