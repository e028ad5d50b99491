"""The StateSet client's cancel and refund calls against the sandbox over real HTTP."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from mienne_ops.errors import RemoteValidationError
from mienne_ops.integrations.stateset import StateSetResource
from mienne_ops.sandbox import credentials
from mienne_ops_tests.support import single_system_server

server = single_system_server("stateset")
PAID = {
    "customer_id": "cus_1",
    "items": [{"product_id": "P1", "quantity": 1, "unit_price": 85.17, "total_amount": 85.17}],
    "payment_details": {"payment_method": "shopify_payments", "status": "paid", "amount_paid": 85.17},
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


def test_cancelling_twice_is_done_once_and_a_shipped_order_is_refused(client):
    order = client.create_order("shopify-order-1", PAID)
    first = client.cancel_order(order["id"], reason="customer request")
    again = client.cancel_order(order["id"], reason="customer request")
    assert first["status"] == again["status"] == "CANCELLED"
    assert [e["type"] for e in again["data"]["fulfillment_events"]] == ["cancel"]
    shipped = client.create_order("shopify-order-2", PAID)
    client.ship_order(shipped["id"], carrier="UPS", method="GROUND", tracking_number="1ZA")
    with pytest.raises(RemoteValidationError) as refused:
        client.cancel_order(shipped["id"], reason="too late")
    assert refused.value.status == 409


def test_a_refund_is_recorded_once_per_reason_and_amount(client):
    order = client.create_order("shopify-order-3", PAID)
    client.cancel_order(order["id"], reason="customer request")
    first = client.refund_order(order["id"], amount=Decimal("10.00"), reason="shopify refund 91")
    again = client.refund_order(order["id"], amount=Decimal("10.00"), reason="shopify refund 91")
    assert again["data"]["refunds"] == first["data"]["refunds"]
    rest = client.refund_order(order["id"], amount=Decimal("75.17"), reason="shopify refund 92")
    assert rest["status"] == "REFUNDED" and len(rest["data"]["refunds"]) == 2
    # The full refund moved the order on; asking again still counts as done.
    assert (
        client.refund_order(order["id"], amount=Decimal("75.17"), reason="shopify refund 92")["status"]
        == "REFUNDED"
    )


def test_refunding_more_than_was_paid_raises(client):
    order = client.create_order("shopify-order-4", PAID)
    client.cancel_order(order["id"], reason="customer request")
    with pytest.raises(RemoteValidationError) as refused:
        client.refund_order(order["id"], amount=Decimal("85.18"), reason="shopify refund 93")
    assert refused.value.status == 400
