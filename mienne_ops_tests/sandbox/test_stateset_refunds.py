"""The StateSet fake's cancel and refund rules over raw HTTP (stateset.md §5–6, sandbox choices)."""

from __future__ import annotations

import httpx
import pytest

from mienne_ops.sandbox import credentials
from mienne_ops_tests.support import single_system_server

server = single_system_server("stateset")
SHIPPING = {"carrier": "UPS", "method": "GROUND", "shipping_cost": 5, "tracking_number": "1ZA"}


@pytest.fixture
def api(server):
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    headers = {"Authorization": f"Bearer {credentials.STATESET['api_key']}"}
    with httpx.Client(base_url=f"{server.url}/stateset", headers=headers) as client:
        yield client


def paid_order(api: httpx.Client, paid: float = 85.17) -> str:
    body = {
        "customer_id": "cus_1",
        "items": [{"product_id": "P1", "quantity": 1, "unit_price": paid, "total_amount": paid}],
        "payment_details": {"payment_method": "shopify_payments", "status": "paid", "amount_paid": paid},
    }
    response = api.post("orders", json=body)
    assert response.status_code == 201
    return response.json()["id"]


def test_a_shipped_or_delivered_order_cannot_be_cancelled(api):
    order = paid_order(api)
    api.post(f"orders/{order}/ship", json=SHIPPING).raise_for_status()
    refused = api.post(f"orders/{order}/cancel", json={"reason": "late"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "invalid_transition"
    api.post(f"orders/{order}/deliver").raise_for_status()
    assert api.post(f"orders/{order}/cancel", json={"reason": "late"}).status_code == 409


def test_partial_refunds_keep_the_status_and_the_last_one_refunds_the_order(api):
    order = paid_order(api)
    api.post(f"orders/{order}/ship", json=SHIPPING).raise_for_status()
    partial = api.post(f"orders/{order}/refund", json={"amount": 20.17, "reason": "refund 1"}).json()
    assert partial["status"] == "SHIPPED"
    payment = partial["data"]["payment_details"]
    assert payment["status"] == "partially_refunded" and payment["amount_refunded"] == 20.17
    rest = api.post(f"orders/{order}/refund", json={"amount": 65, "reason": "refund 2"}).json()
    assert rest["status"] == "REFUNDED" and rest["data"]["payment_details"]["status"] == "refunded"
    assert [r["reason"] for r in rest["data"]["refunds"]] == ["refund 1", "refund 2"]


def test_refunding_more_than_was_paid_is_a_400(api):
    order = paid_order(api)
    api.post(f"orders/{order}/cancel", json={"reason": "customer"}).raise_for_status()
    api.post(f"orders/{order}/refund", json={"amount": 80, "reason": "refund 1"}).raise_for_status()
    refused = api.post(f"orders/{order}/refund", json={"amount": 5.18, "reason": "refund 2"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "validation_error"


def test_an_order_still_to_ship_is_cancelled_before_everything_is_refunded(api):
    order = paid_order(api)
    whole = api.post(f"orders/{order}/refund", json={"amount": 85.17, "reason": "refund 1"})
    assert whole.status_code == 409
    assert api.post(f"orders/{order}/refund", json={"amount": 5, "reason": "shipping"}).status_code == 200
