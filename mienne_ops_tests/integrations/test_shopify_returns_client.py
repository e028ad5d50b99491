"""The Shopify client's returns (flow F, issue 11) against the Shopify sandbox over real HTTP.

No test depends on timing: webhooks are waited for (a deadline only guards against a hang), return
windows use the fake's back-dating and delivery controls instead of sleeping.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from mienne_ops.errors import NotFoundError, RemoteValidationError
from mienne_ops.integrations.http import HttpCore, RetryPolicy
from mienne_ops.integrations.shopify import ShopifyClient, document_names, legacy_id
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


@pytest.fixture
def client(sandbox) -> Iterator[ShopifyClient]:
    core = HttpCore(
        "shopify",
        f"{sandbox.url}/shopify",
        headers={"X-Shopify-Access-Token": credentials.SHOPIFY["access_token"]},
        retry=FAST,
        sleep=lambda _seconds: None,
    )
    shopify = ShopifyClient(core)
    yield shopify
    shopify.close()


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, dict]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.headers["X-Shopify-Topic"], json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list]]:
    _Receiver.received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/webhooks/shopify", _Receiver.received
    httpd.shutdown()


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# A taxed order with a discounted line (3 × 20.00 − 6.00), shipping, paid by gift card and card.
ORDER = {
    "email": "ava.garcia0@example.com",
    "customer": {"id": 7001, "email": "ava.garcia0@example.com"},
    "line_items": [
        {
            "sku": "MN-SERUM-001",
            "quantity": 3,
            "price": "20.00",
            "discount_allocations": [{"amount": "6.00"}],
            "tax_lines": [{"title": "Tax", "price": "4.46", "rate": 0.0825}],
        },
        {
            "sku": "MN-CREAM-002",
            "quantity": 1,
            "price": "35.00",
            "tax_lines": [{"title": "Tax", "price": "2.89", "rate": 0.0825}],
        },
    ],
    "shipping_lines": [
        {"title": "Ground", "price": "8.00", "tax_lines": [{"title": "Tax", "price": "0.66", "rate": 0.0825}]}
    ],
    "total_discounts": "6.00",
    "total_tax": "8.01",
    "total_price": "105.01",
    "transactions": [
        {"kind": "sale", "gateway": "gift_card", "amount": "25.00"},
        {"kind": "sale", "gateway": "shopify_payments", "amount": "80.01"},
    ],
}
SERUM, CREAM = "MN-SERUM-001", "MN-CREAM-002"


def shipped_order(sandbox, client) -> tuple[str, str]:
    """An order fulfilled in full: (order id, fulfillment id)."""
    response = httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=ORDER)
    assert response.status_code == 201, response.text
    order_id = str(response.json()["id"])
    [fo] = client.fulfillment_orders(int(order_id))
    created = client.create_fulfillment([(fo["id"], [])], tracking_company="UPS", tracking_numbers=["1Z999"])
    return order_id, created["id"]


def returnable(client, order_id) -> dict[str, int]:
    return {line.sku or "": line.quantity for line in client.returnable_lines(order_id)}


def by_sku(client, order_id) -> dict[str, str]:
    """SKU -> fulfillment line item GID."""
    return {line.sku or "": line.fulfillment_line_item_id for line in client.returnable_lines(order_id)}


def available(sandbox, sku: str) -> int:
    levels = httpx.get(f"{sandbox.url}/_sandbox/state").json()["shopify"]["inventory"]["levels"]
    return sum(level["available"] for level in levels if level["sku"] == sku)


def test_the_return_documents_are_shipped_and_validated():
    # test_graphql_documents validates every shipped document against the real schema and
    # test_query_cost prices each at the sizes sent; these are among them.
    assert {
        "returnable_fulfillments",
        "returnable_fulfillment_line_items",
        "return",
        "return_line_items",
        "order_returns",
        "orders_with_returns",
        "return_create",
        "return_approve_request",
        "return_decline_request",
        "return_process",
        "return_close",
        "return_cancel",
        "reverse_delivery_create",
    } <= set(document_names())


def test_returnable_lines_carry_price_tags_and_the_carrier_dates(sandbox, client):
    order_id, fulfillment_id = shipped_order(sandbox, client)
    httpx.post(
        f"{sandbox.url}/_sandbox/shopify/products/tags", json={"sku": SERUM, "tags": ["Final-Sale", "serum"]}
    ).raise_for_status()
    lines = {line.sku: line for line in client.returnable_lines(order_id)}
    assert {sku: line.quantity for sku, line in lines.items()} == {SERUM: 3, CREAM: 1}
    assert lines[SERUM].unit_price == Decimal("18.00")  # (60 − 6) / 3, after discounts
    assert lines[CREAM].unit_price == Decimal("35.00")
    assert lines[SERUM].product_tags == frozenset({"final-sale", "serum"})
    assert lines[CREAM].product_tags == frozenset()
    assert lines[SERUM].delivered_at is None
    assert lines[SERUM].line_item_id.startswith("gid://shopify/LineItem/")

    # Simulated time: fulfilled 40 days ago, delivered 35 days ago.
    now = datetime.now(UTC).replace(microsecond=0)
    number = legacy_id(fulfillment_id)
    control = f"{sandbox.url}/_sandbox/shopify/fulfillments/{number}"
    httpx.post(
        f"{control}/backdate", json={"created_at": (now - timedelta(days=40)).isoformat()}
    ).raise_for_status()
    httpx.post(f"{control}/delivered", json={"at": (now - timedelta(days=35)).isoformat()}).raise_for_status()
    line = {line.sku: line for line in client.returnable_lines(order_id)}[SERUM]
    assert line.fulfilled_at == now - timedelta(days=40)
    assert line.delivered_at == now - timedelta(days=35)
    # A delivery before the fulfillment, or a fulfillment after its delivery, is refused.
    early = (now - timedelta(days=41)).isoformat()
    assert httpx.post(f"{control}/delivered", json={"at": early}).status_code == 422
    assert httpx.post(f"{control}/backdate", json={"created_at": early}).status_code == 200
    late = (now - timedelta(days=30)).isoformat()
    assert httpx.post(f"{control}/backdate", json={"created_at": late}).status_code == 422
    assert httpx.post(f"{sandbox.url}/_sandbox/shopify/fulfillments/1/delivered", json={}).status_code == 404


def test_create_label_process_with_refunds_then_close(sandbox, client, receiver):
    uri, received = receiver
    for topic in (
        "refunds/create",
        "returns/process",
        "returns/close",
        "reverse_deliveries/attach_deliverable",
    ):
        client.subscribe_webhook(topic, uri)
    order_id, _ = shipped_order(sandbox, client)
    flis = by_sku(client, order_id)
    created = client.create_return(order_id, [(flis[SERUM], 2), (flis[CREAM], 1)], reason="size_fit_issue")
    assert created.status == "OPEN" and created.name.endswith("-R1")
    assert created.order_id.endswith(f"/Order/{order_id}")
    assert len(created.reverse_fulfillment_order_ids) == 1 and created.tracking_numbers == ()
    assert [(line.sku, line.quantity, line.processed_quantity) for line in created.lines] == [
        (SERUM, 2, 0),
        (CREAM, 1, 0),
    ]
    assert returnable(client, order_id) == {SERUM: 1}  # the cream is wholly in the return
    assert client.order_returns(order_id) == [created]

    # The label, attached once however often it is asked.
    label = {"tracking_url": None, "label_url": "https://labels.example.com/rma-1.pdf"}
    delivery = client.attach_return_label(created.gid, tracking_number="1Z999AA10123456784", **label)
    assert client.attach_return_label(created.gid, tracking_number="1Z999AA10123456784", **label) == delivery
    assert client.get_return(created.gid).tracking_numbers == ("1Z999AA10123456784",)

    # One serum back and restocked, refunded by exactly what Shopify suggests for it.
    serum_line, cream_line = created.lines
    stock = available(sandbox, SERUM)
    suggested = client.suggested_refund(order_id, lines=[(serum_line.line_item_id, 1)])
    refund = client.process_return(
        created.gid, [(serum_line.id, 1, True)], transactions=suggested.transactions, note="R1 part 1"
    )
    assert refund is not None
    assert refund.total == suggested.amount == Decimal("19.49")  # 18.00 + 1.49 tax
    assert refund.note == "R1 part 1"
    assert [(line.sku, line.quantity) for line in refund.lines] == [(SERUM, 1)]
    assert available(sandbox, SERUM) == stock + 1
    money = client.order_money(order_id)
    assert money.display_financial_status == "PARTIALLY_REFUNDED" and money.refunds == [refund]
    after = client.get_return(created.gid)
    assert [line.processed_quantity for line in after.lines] == [1, 0] and after.status == "OPEN"

    # The rest: the other serum not restocked (damaged), the cream restocked, one refund for both.
    cream_stock = available(sandbox, CREAM)
    rest = client.suggested_refund(
        order_id, lines=[(serum_line.line_item_id, 1), (cream_line.line_item_id, 1)]
    )
    second = client.process_return(
        created.gid,
        [(serum_line.id, 1, False), (cream_line.id, 1, True)],
        transactions=rest.transactions,
        note="R1 part 2",
    )
    assert second is not None and second.total == rest.amount and second.note == "R1 part 2"
    assert available(sandbox, SERUM) == stock + 1 and available(sandbox, CREAM) == cream_stock + 1
    done = client.get_return(created.gid)
    assert all(line.processed_quantity == line.quantity for line in done.lines)
    # Processing more than is left is refused.
    with pytest.raises(RemoteValidationError) as over:
        client.process_return(created.gid, [(cream_line.id, 1, False)], transactions=None, note="again")
    assert over.value.code == "LESS_THAN_OR_EQUAL_TO"

    client.close_return(created.gid)
    client.close_return(created.gid)  # already closed: nothing to do
    assert client.get_return(created.gid).status == "CLOSED"
    assert client.order_money(order_id).total_refunded == refund.total + second.total

    wait_for(
        lambda: (
            sum(t == "refunds/create" for t, _ in received) >= 2
            and any(t == "returns/close" for t, _ in received)
        )
    )
    refunds = [body for topic, body in received if topic == "refunds/create"]
    assert sorted(r["note"] for r in refunds) == ["R1 part 1", "R1 part 2"]
    assert all(r["return"]["admin_graphql_api_id"] == created.gid for r in refunds)
    assert {r["restock_type"] for r in refunds for r in r["refund_line_items"]} == {"return"}
    processed = [body for topic, body in received if topic == "returns/process"]
    assert len(processed) == 2 and processed[0]["admin_graphql_api_id"] == created.gid
    attached = [body for topic, body in received if topic == "reverse_deliveries/attach_deliverable"]
    assert len(attached) == 1
    assert attached[0]["shipping_deliverable"]["tracking"]["tracking_number"] == "1Z999AA10123456784"
    closed = [body for topic, body in received if topic == "returns/close"]
    assert closed[0]["status"] == "closed" and closed[0]["order_id"] == int(order_id)


def test_processing_without_money_refunds_nothing(sandbox, client):
    order_id, _ = shipped_order(sandbox, client)
    created = client.create_return(order_id, [(by_sku(client, order_id)[CREAM], 1)], reason="DEFECTIVE")
    assert (
        client.process_return(created.gid, [(created.lines[0].id, 1, False)], transactions=None, note="x")
        is None
    )
    assert client.order_money(order_id).refunds == []
    assert client.get_return(created.gid).lines[0].processed_quantity == 1


def test_a_customer_request_is_approved_or_declined(sandbox, client, receiver):
    uri, received = receiver
    for topic in ("returns/request", "returns/approve", "returns/decline"):
        client.subscribe_webhook(topic, uri)
    assert {s["topic"] for s in client.list_webhook_subscriptions()} == {
        "RETURNS_REQUEST",
        "RETURNS_APPROVE",
        "RETURNS_DECLINE",
    }
    order_id, _ = shipped_order(sandbox, client)
    requests = f"{sandbox.url}/_sandbox/shopify/orders/{order_id}/return_requests"
    answer = httpx.post(
        requests,
        json={
            "lines": [{"sku": SERUM, "quantity": 2, "reason": "size_too_small"}],
            "customer_note": "too small",
        },
    )
    assert answer.status_code == 201, answer.text
    [requested] = client.order_returns(order_id)
    assert requested.status == "REQUESTED" and requested.customer_note == "too small"
    assert requested.reverse_fulfillment_order_ids == ()
    assert returnable(client, order_id) == {SERUM: 1, CREAM: 1}  # a request holds its units

    approved = client.approve_return_request(requested.gid)
    assert approved.status == "OPEN" and len(approved.reverse_fulfillment_order_ids) == 1
    assert client.approve_return_request(requested.gid) == approved  # already open: as it is

    httpx.post(requests, json={"lines": [{"sku": CREAM, "quantity": 1}]}).raise_for_status()
    second = next(r for r in client.order_returns(order_id) if r.gid != requested.gid)
    declined = client.decline_return_request(second.gid, reason="FINAL_SALE", note="final sale item")
    assert declined.status == "DECLINED"
    assert client.decline_return_request(second.gid, reason="FINAL_SALE", note="again").status == "DECLINED"
    assert returnable(client, order_id) == {SERUM: 1, CREAM: 1}  # a declined return holds nothing
    # An approved return cannot be declined, a declined one not approved.
    with pytest.raises(RemoteValidationError) as wrong:
        client.decline_return_request(requested.gid, reason="OTHER", note="")
    assert wrong.value.code == "INVALID_STATE"
    with pytest.raises(RemoteValidationError):
        client.approve_return_request(second.gid)
    # More than can be returned is refused at the request.
    too_many = httpx.post(requests, json={"lines": [{"sku": SERUM, "quantity": 2}]})
    assert too_many.status_code == 422

    wait_for(lambda: {t for t, _ in received} >= {"returns/request", "returns/approve", "returns/decline"})
    request_body = next(b for t, b in received if t == "returns/request")
    assert request_body["admin_graphql_api_id"] == requested.gid and request_body["status"] == "requested"
    assert request_body["return_line_items"][0]["quantity"] == 2
    assert request_body["return_line_items"][0]["customer_note"] == "too small"
    decline_body = next(b for t, b in received if t == "returns/decline")
    assert decline_body["decline"] == {"reason": "final_sale", "note": "final sale item"}


def test_quantities_above_what_is_returnable_are_refused(sandbox, client):
    order_id, _ = shipped_order(sandbox, client)
    serum = by_sku(client, order_id)[SERUM]
    with pytest.raises(RemoteValidationError) as raised:
        client.create_return(order_id, [(serum, 4)], reason="UNWANTED")
    assert raised.value.code == "LESS_THAN_OR_EQUAL_TO"
    client.create_return(order_id, [(serum, 3)], reason="UNWANTED")
    assert returnable(client, order_id) == {CREAM: 1}
    with pytest.raises(RemoteValidationError):
        client.create_return(order_id, [(serum, 1)], reason="UNWANTED")
    with pytest.raises(RemoteValidationError) as zero:
        client.create_return(order_id, [(by_sku(client, order_id)[CREAM], 0)], reason="UNWANTED")
    assert zero.value.code == "GREATER_THAN"
    with pytest.raises(RemoteValidationError) as unknown:
        client.create_return(order_id, [("gid://shopify/FulfillmentLineItem/1", 1)], reason="UNWANTED")
    assert unknown.value.code == "NOT_FOUND"
    with pytest.raises(NotFoundError):
        client.get_return("gid://shopify/Return/1")


def test_cancel_before_processing_only(sandbox, client):
    order_id, _ = shipped_order(sandbox, client)
    flis = by_sku(client, order_id)
    first = client.create_return(order_id, [(flis[SERUM], 1)], reason="STYLE")
    client.cancel_return(first.gid)
    client.cancel_return(first.gid)  # already cancelled: nothing to do
    assert client.get_return(first.gid).status == "CANCELED"
    assert returnable(client, order_id) == {SERUM: 3, CREAM: 1}  # the units are returnable again
    with pytest.raises(RemoteValidationError) as closed:
        client.close_return(first.gid)
    assert closed.value.code == "INVALID_STATE"

    second = client.create_return(order_id, [(flis[SERUM], 2)], reason="STYLE")
    client.process_return(second.gid, [(second.lines[0].id, 1, True)], transactions=None, note="one back")
    with pytest.raises(RemoteValidationError) as processed:
        client.cancel_return(second.gid)
    assert processed.value.code == "INVALID_STATE"
    assert client.get_return(second.gid).status == "OPEN"


def test_iter_returns_finds_the_returns_of_orders_changed_since(sandbox, client):
    order_id, _ = shipped_order(sandbox, client)
    quiet_id, _ = shipped_order(sandbox, client)
    since = datetime.now(UTC) - timedelta(minutes=1)
    created = client.create_return(order_id, [(by_sku(client, order_id)[CREAM], 1)], reason="COLOR")
    found = list(client.iter_returns(updated_since=since))
    assert [r.gid for r in found] == [created.gid]
    assert [r.gid for r in client.iter_returns(updated_since=since, active_only=True)] == [created.gid]
    client.cancel_return(created.gid)
    assert [r.status for r in client.iter_returns(updated_since=since)] == ["CANCELED"]
    assert list(client.iter_returns(updated_since=since, active_only=True)) == []
    assert list(client.iter_returns(updated_since=datetime.now(UTC) + timedelta(days=1))) == []
    assert client.order_returns(quiet_id) == []
