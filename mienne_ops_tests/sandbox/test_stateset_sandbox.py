"""The StateSet fake over raw HTTP: auth, envelopes, PATCH, transitions, returns, request ids."""

from __future__ import annotations

import httpx
import pytest

from mienne_ops.sandbox import credentials
from mienne_ops_tests.support import single_system_server

server = single_system_server("stateset")


@pytest.fixture
def api(server):
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    headers = {"Authorization": f"Bearer {credentials.STATESET['api_key']}"}
    with httpx.Client(base_url=f"{server.url}/stateset", headers=headers) as client:
        yield client


def create(api: httpx.Client, external_id: str = "ext-1") -> dict:
    body = {
        "customer_id": "cus_1",
        "items": [{"product_id": "P1", "quantity": 1}],
        "metadata": {"external_id": external_id},
    }
    response = api.post("orders", json=body)
    assert response.status_code == 201
    return response.json()


def test_auth_and_request_id(server, api):
    assert httpx.get(f"{server.url}/stateset/orders").status_code == 401
    token = httpx.get(f"{server.url}/stateset/orders", headers={"Authorization": "Token x"})
    assert token.status_code == 401 and token.json()["error"]["code"] == "unauthorized"
    echoed = api.get("orders", headers={"X-Request-ID": "req-abc"})
    assert echoed.headers["X-Request-ID"] == "req-abc"


def test_envelopes_search_and_put(api):
    order = create(api)
    assert set(order) >= {"id", "object", "status", "created_at", "updated_at", "data"}
    listing = api.get("orders", params={"limit": 5}).json()
    assert listing["total"] == 1 and listing["limit"] == 5 and listing["offset"] == 0
    assert api.get("orders/search", params={"external_id": "ext-1"}).json()["data"][0]["id"] == order["id"]
    assert api.get("orders/search", params={"external_id": "other"}).json()["data"] == []
    updated = api.put(f"orders/{order['id']}", json={"notes": "gift"}).json()
    assert updated["data"]["notes"] == "gift" and updated["status"] == "PENDING"
    assert api.patch(f"orders/{order['id']}", json={"notes": "x"}).status_code == 405
    assert api.get("orders/ord_missing").status_code == 404
    assert api.post("orders", json={"items": []}).status_code == 400


def test_transitions_follow_the_enum(api):
    order = create(api)
    path = f"orders/{order['id']}"
    assert api.post(f"{path}/deliver").status_code == 409
    assert api.post(f"{path}/confirm").json()["status"] == "CONFIRMED"
    assert api.post(f"{path}/ship", json={"shipping_details": {"carrier": "UPS"}}).status_code == 400
    shipped = api.post(f"{path}/ship", json={"carrier": "UPS", "tracking_number": "1ZA"}).json()
    assert shipped["status"] == "SHIPPED"
    conflict = api.post(f"{path}/cancel")
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "invalid_transition"
    tracking = api.get(f"{path}/tracking").json()
    assert tracking["tracking_number"] == "1ZA" and tracking["status"] == "SHIPPED"
    assert api.post(f"{path}/deliver").json()["status"] == "DELIVERED"
    history = [e["type"] for e in api.get(f"{path}/fulfillment-history").json()["data"]]
    assert history == ["confirm", "shipped", "deliver"]


def test_returns_lifecycle(api):
    order = create(api)
    created = api.post(
        "returns", json={"order_id": order["id"], "items": [{"product_id": "P1", "quantity": 1}]}
    )
    assert created.status_code == 201
    record = created.json()
    assert record["id"].startswith("RET-") and record["rma_number"] and record["status"] == "REQUESTED"
    assert api.post(f"returns/{record['id']}/receive").status_code == 409
    for action, status in (("approve", "APPROVED"), ("receive", "RECEIVED"), ("refund", "COMPLETED")):
        assert api.post(f"returns/{record['id']}/{action}").json()["status"] == status
    assert api.post("returns", json={"order_id": "ord_nope", "items": [{"quantity": 1}]}).status_code == 400
