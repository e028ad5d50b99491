"""The StateSet client's returns against the sandbox over real HTTP: one return per key, the
lifecycle, and every action idempotent."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from mienne_ops.errors import RemoteValidationError
from mienne_ops.integrations.http import HttpCore, RetryPolicy
from mienne_ops.integrations.stateset import StateSetClient, StateSetResource, describe_error, return_reason
from mienne_ops.sandbox import credentials
from mienne_ops_tests.support import single_system_server

server = single_system_server("stateset")
ORDER = {
    "customer_id": "cus_1",
    "items": [
        {"product_id": "MN-CREAM-002", "quantity": 2, "unit_price": 75.95, "total_amount": 151.9},
        {"product_id": "MN-CLEANSER-001", "quantity": 1, "unit_price": 53.32, "total_amount": 53.32},
    ],
    "payment_details": {"payment_method": "shopify_payments", "status": "paid", "amount_paid": 205.22},
}
ITEMS = [
    {"product_id": "MN-CREAM-002", "quantity": 2, "refund_amount": Decimal("151.90")},
    {
        "product_id": "MN-CLEANSER-001",
        "quantity": 1,
        "refund_amount": Decimal("53.32"),
        "reason": "defective",
    },
]
LABEL = {
    "carrier": "UPS",
    "tracking_number": "1ZRET1",
    "label_url": "https://labels/1",
    "cost": Decimal("8.5"),
}


@pytest.fixture
def client(server):
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    resource = StateSetResource(
        base_url=f"{server.url}/stateset",
        api_key=credentials.STATESET["api_key"],
        retry_base_delay_seconds=0.01,
    )
    client = resource.build_client()
    yield client
    client.close()


def new_return(client, order_id: str, key: str = "return-1") -> dict:
    return client.create_return(
        order_id=order_id,
        external_id=key,
        items=ITEMS,
        reason="Too small",
        customer_email="ada@example.com",
        shipping_label=LABEL,
    )


def test_creating_twice_gives_one_return_with_the_sdk_reasons(client, server):
    order = client.create_order("shopify-order-1", ORDER)
    first = new_return(client, order["id"])
    again = new_return(client, order["id"])
    assert first["id"] == again["id"] and first["status"] == "REQUESTED"
    assert len(server.hub.system("stateset").state()["returns"]) == 1
    data = first["data"]
    assert [i["reason"] for i in data["items"]] == ["other", "defective"]
    assert [i["refund_amount"] for i in data["items"]] == [151.9, 53.32]
    assert data["metadata"] == {
        "external_id": "return-1",
        "reason": "Too small",
        "customer_email": "ada@example.com",
    }
    assert data["customer_id"] == "cus_1" and data["shipping_label"]["cost"] == 8.5
    # Another key of the same order is another return; the key of another order is not found here.
    assert new_return(client, order["id"], "return-2")["id"] != first["id"]
    assert client.find_return("ord_other", "return-1") is None
    assert return_reason("size fit issue") == "size_fit_issue" and return_reason("meh") == "other"


def test_full_lifecycle_each_step_idempotent(client):
    order = client.create_order("shopify-order-2", ORDER)
    record = new_return(client, order["id"])
    approved = client.approve_return(record["id"])
    assert approved["status"] == "APPROVED" and client.approve_return(record["id"])["status"] == "APPROVED"
    received = client.receive_return(
        record["id"], items=[{"product_id": "MN-CREAM-002", "quantity": 1}], condition="like_new"
    )
    assert received["status"] == "RECEIVED"
    assert received["data"]["received_items"] == [
        {"product_id": "MN-CREAM-002", "quantity": 1, "condition": "like_new"}
    ]
    assert client.receive_return(record["id"], items=[], condition="used")["received_by"] == "mienne-ops"
    assert client.approve_return(record["id"])["status"] == "RECEIVED"  # past approval: as it is
    refunded = client.refund_return(record["id"], amount=Decimal("75.95"))
    assert refunded["status"] == "COMPLETED" and refunded["refund_details"]["amount"] == 75.95
    assert client.refund_return(record["id"], amount=Decimal("75.95"))["status"] == "COMPLETED"
    closed = client.close_return(record["id"])
    assert closed["status"] == "CLOSED" and client.close_return(record["id"])["status"] == "CLOSED"
    # A closed return that was refunded before closing: refunding again changes nothing.
    assert client.refund_return(record["id"], amount=Decimal("75.95"))["status"] == "CLOSED"
    assert client.get_return(record["id"])["refund_details"]["amount"] == 75.95


def test_refund_without_receipt_and_cancel_after_receipt_are_refused(client):
    order = client.create_order("shopify-order-3", ORDER)
    record = new_return(client, order["id"])
    client.approve_return(record["id"])
    with pytest.raises(RemoteValidationError) as early:
        client.refund_return(record["id"], amount=Decimal("10"))
    assert early.value.status == 409
    client.receive_return(
        record["id"], items=[{"product_id": "MN-CREAM-002", "quantity": 2}], condition="new"
    )
    with pytest.raises(RemoteValidationError) as late:
        client.cancel_return(record["id"], reason="customer kept it")
    assert late.value.status == 409
    with pytest.raises(RemoteValidationError) as too_much:
        client.refund_return(record["id"], amount=Decimal("205.23"))
    assert too_much.value.status == 400
    with pytest.raises(ValueError):
        client.receive_return(record["id"], items=[], condition="mint")


def test_cancel_before_receipt_then_close(client):
    order = client.create_order("shopify-order-4", ORDER)
    record = new_return(client, order["id"])
    cancelled = client.cancel_return(record["id"], reason="expired")
    assert cancelled["status"] == "CANCELLED" and cancelled["cancellation_reason"] == "expired"
    assert client.cancel_return(record["id"], reason="expired")["status"] == "CANCELLED"
    with pytest.raises(RemoteValidationError):  # a cancelled return is never approved
        client.approve_return(record["id"])
    assert client.close_return(record["id"], reason="expired")["status"] == "CLOSED"
    assert client.cancel_return(record["id"], reason="expired")["status"] == "CLOSED"


class LoseFirstCreate(httpx.BaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        if request.method == "POST" and request.url.path.endswith("/returns") and not self.lost:
            self.lost += 1
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def test_a_create_whose_answer_is_lost_is_found_not_repeated(client, server):
    order = client.create_order("shopify-order-5", ORDER)
    transport = LoseFirstCreate()
    core = HttpCore(
        system="stateset",
        base_url=f"{server.url}/stateset",
        headers={"Authorization": f"Bearer {credentials.STATESET['api_key']}"},
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05),
        transport=transport,
        describe_error=describe_error,
    )
    lossy = StateSetClient(core)
    record = new_return(lossy, order["id"])
    assert transport.lost == 1 and record["status"] == "REQUESTED"
    assert len(server.hub.system("stateset").state()["returns"]) == 1
    lossy.close()
