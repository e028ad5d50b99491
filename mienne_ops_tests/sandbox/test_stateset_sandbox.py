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
    assert listing == {"orders": [order], "total": 1}
    assert api.get("orders/search", params={"query": "ext-1"}).json()["orders"][0]["id"] == order["id"]
    assert api.get("orders/search", params={"query": "other"}).json() == {"orders": [], "total": 0}
    # The old guess at a filter is no SDK parameter: without `query` the search is a 400.
    assert api.get("orders/search", params={"external_id": "ext-1"}).status_code == 400
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
    assert api.post(f"{path}/ship", json={"carrier": "UPS", "tracking_number": "1ZA"}).status_code == 400
    text_cost = {"carrier": "UPS", "method": "GROUND", "shipping_cost": "5.00", "tracking_number": "1ZA"}
    assert api.post(f"{path}/ship", json=text_cost).status_code == 400
    details = {"carrier": "UPS", "method": "GROUND", "shipping_cost": 5, "tracking_number": "1ZA"}
    shipped = api.post(f"{path}/ship", json=details).json()
    assert shipped["status"] == "SHIPPED" and shipped["shipping_details"] == details
    # An order is shipped once: shipping it again is an invalid transition.
    assert api.post(f"{path}/ship", json={**details, "tracking_number": "1ZB"}).status_code == 409
    conflict = api.post(f"{path}/cancel", json={"reason": "late"})
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "invalid_transition"
    tracking = api.get(f"{path}/tracking").json()
    assert tracking["tracking_number"] == "1ZA" and tracking["status"] == "SHIPPED"
    delivered = api.post(f"{path}/deliver").json()
    assert delivered["status"] == "DELIVERED" and delivered["delivered"] is True
    history = [e["type"] for e in api.get(f"{path}/fulfillment-history").json()["data"]]
    assert history == ["confirm", "shipped", "deliver"]


def test_returns_lifecycle(api):
    order = create(api)
    item = {"product_id": "P1", "quantity": 1, "reason": "size_fit_issue", "refund_amount": 20}
    created = api.post("returns", json={"order_id": order["id"], "customer_id": "cus_1", "items": [item]})
    assert created.status_code == 201
    record = created.json()["return"]  # the SDK reads `response.return`
    assert record["id"].startswith("RET-") and record["rma_number"] and record["status"] == "REQUESTED"
    path = f"returns/{record['id']}"
    assert api.post(f"{path}/receive", json={"received_by": "x"}).status_code == 409
    assert api.post(f"{path}/approve", json={}).json()["return"]["approved"] is True
    assert api.post(f"{path}/receive", json={}).status_code == 400  # received_by is required
    received = api.post(f"{path}/receive", json={"received_by": "dock"}).json()["return"]
    assert received["status"] == "RECEIVED" and received["received_by"] == "dock"
    assert api.post(f"{path}/cancel", json={"reason": "late"}).status_code == 409  # after receipt
    assert api.post(f"{path}/refund", json={"method": "original_payment", "amount": "20"}).status_code == 400
    assert api.post(f"{path}/refund", json={"method": "original_payment", "amount": 20.01}).status_code == 400
    assert api.post(f"{path}/refund", json={"method": "cash", "amount": 20}).status_code == 400
    done = api.post(f"{path}/refund", json={"method": "original_payment", "amount": 20}).json()["return"]
    assert done["status"] == "COMPLETED" and done["refund_details"]["amount"] == 20
    assert api.post(f"{path}/close", json={}).json()["return"]["status"] == "CLOSED"
    history = [(h["action"], h["to_status"]) for h in api.get(f"{path}/history").json()["history"]]
    assert [a for a, _ in history] == ["create", "approve", "receive", "refund", "close"]
    assert api.post("returns", json={"order_id": "ord_nope", "items": [item]}).status_code == 400


def test_return_bodies_are_checked_like_the_sdk_types_them(api):
    order = create(api)
    item = {"product_id": "P1", "quantity": 1, "reason": "size_fit_issue", "refund_amount": 20}

    def post(**changes):
        body = {"order_id": order["id"], "customer_id": "cus_1", "items": [item], **changes}
        return api.post("returns", json=body)

    assert post(customer_id="cus_2").status_code == 400  # not the order's customer
    assert post(items=[{**item, "refund_amount": "20"}]).status_code == 400  # amounts are numbers
    assert post(items=[{**item, "reason": "too small"}]).status_code == 400  # not a ReturnReason
    assert post(items=[{**item, "quantity": 2}]).status_code == 400  # more than ordered
    assert post(items=[{**item, "product_id": "P9"}]).status_code == 400  # not on the order
    assert post(items=[{**item, "condition": "mint"}]).status_code == 400
    record = post().json()["return"]
    refund = {"method": "original_payment", "amount": 20}
    assert api.post(f"returns/{record['id']}/refund", json=refund).status_code == 409  # not received
    assert api.post(f"returns/{record['id']}/close", json={}).status_code == 409
    cancelled = api.post(f"returns/{record['id']}/cancel", json={"reason": "changed mind"}).json()["return"]
    assert cancelled["status"] == "CANCELLED" and cancelled["cancellation_reason"] == "changed mind"
    listed = api.get("returns", params={"order_id": order["id"]}).json()
    assert listed["total_count"] == 1 and api.get("returns", params={"order_id": "x"}).json()["returns"] == []


# -- the stateset-node SDK's request shapes (src/lib/resources/Order.ts), sent as the SDK sends them --

SDK_ORDER_DATA = {  # `OrderData`, amounts as numbers; `create` adds `totals.currency`
    "customer_id": "cus_123",
    "items": [
        {"product_id": "MN-SERUM-001", "quantity": 2, "unit_price": 24, "total_amount": 48},
        {
            "product_id": "MN-CREAM-002",
            "variant_id": "v2",
            "quantity": 1,
            "unit_price": 31.5,
            "discount_amount": 1.5,
            "total_amount": 30,
        },
    ],
    "shipping_address": {
        "first_name": "Jane",
        "last_name": "Doe",
        "street_address1": "1 Main St",
        "city": "Austin",
        "state": "TX",
        "postal_code": "78701",
        "country": "US",
    },
    "payment_details": {
        "payment_method": "shopify_payments",
        "status": "paid",
        "amount_paid": 85.17,
        "currency": "USD",
    },
    "totals": {
        "subtotal": 78,
        "shipping_total": 5,
        "tax_total": 2.17,
        "discount_total": 0,
        "grand_total": 85.17,
        "currency": "USD",
    },
    "source": "shopify",
    "metadata": {"external_id": "shopify-order-42"},
}


def test_sdk_search_create_and_ship_shapes(api):
    created = api.post("orders", json=SDK_ORDER_DATA)  # Orders.create -> POST orders
    assert created.status_code == 201
    order = created.json()
    assert order["object"] == "order" and order["status"] == "PENDING"
    # Orders.search("shopify-order-42", {status, limit}) -> GET orders/search?query=…&status=…&limit=…
    found = api.get("orders/search?query=shopify-order-42&status=PENDING&limit=10").json()
    assert found == {"orders": [order], "total": 1}
    assert api.get("orders/search?query=shopify-order-42&status=SHIPPED").json()["total"] == 0
    # Orders.list({customer_id}) -> GET orders?customer_id=…
    assert api.get("orders?customer_id=cus_123").json()["total"] == 1
    # Orders.ship(id, ShippingDetails) -> POST orders/{id}/ship with the details flat
    details = {
        "carrier": "UPS",
        "method": "GROUND",
        "tracking_number": "1Z999",
        "shipping_cost": 7.5,
        "tracking_url": "https://www.ups.com/track?tracknum=1Z999",
    }
    shipped = api.post(f"orders/{order['id']}/ship", json=details).json()
    assert shipped["status"] == "SHIPPED" and shipped["shipping_details"] == details
    assert api.get(f"orders/{order['id']}/tracking").json()["tracking_number"] == "1Z999"


def test_string_amounts_and_sdk_action_bodies_are_enforced(api):
    text_amounts = {**SDK_ORDER_DATA, "totals": {**SDK_ORDER_DATA["totals"], "grand_total": "85.17"}}
    refused = api.post("orders", json=text_amounts)
    assert refused.status_code == 400 and "totals.grand_total" in refused.json()["error"]["message"]
    order = api.post("orders", json=SDK_ORDER_DATA).json()
    assert api.post(f"orders/{order['id']}/cancel", json={}).status_code == 400  # cancel needs {reason}
    cancelled = api.post(f"orders/{order['id']}/cancel", json={"reason": "customer request"}).json()
    assert cancelled["status"] == "CANCELLED" and cancelled["cancelled"] is True
    assert cancelled["cancellation_reason"] == "customer request" and cancelled["cancelled_at"]
    assert (
        api.post(f"orders/{order['id']}/refund", json={"amount": "85.17", "reason": "x"}).status_code == 400
    )
    refunded = api.post(f"orders/{order['id']}/refund", json={"amount": 85.17, "reason": "cancelled"}).json()
    assert refunded["status"] == "REFUNDED" and refunded["refund_details"]["amount"] == 85.17
    listing = api.get("returns").json()
    assert listing == {"returns": [], "total_count": 0, "limit": 20, "offset": 0}
