"""The DCL fake over raw HTTP: body error codes, validation, kits, paging limits, cancel, ASNs."""

from __future__ import annotations

import httpx
import pytest

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.catalog import build_catalog
from mienne_ops_tests.support import dcl_order, single_system_server

AUTH = (credentials.DCL["username"], credentials.DCL["password"])


server = single_system_server("dcl")


@pytest.fixture
def api(server):
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    httpx.post(f"{server.url}/_sandbox/dcl/limits", json={"requests_per_second": 1000}).raise_for_status()
    with httpx.Client(base_url=server.url, auth=AUTH) as client:
        yield client


def batch(api: httpx.Client, orders: list[dict], allow_partial: bool = True) -> httpx.Response:
    return api.post("/dcl/api/v1/batches", json={"allow_partial": allow_partial, "orders": orders})


def test_bad_credentials_get_401_with_body_code(server):
    response = httpx.get(f"{server.url}/dcl/api/v1/orders", auth=("mienne-api", "nope"))
    assert response.status_code == 401
    assert response.json() == {"error_code": 91, "error_message": "Invalid credentials"}


def test_batch_statuses_follow_request_order_and_validation_rules(api):
    orders = [
        dcl_order("OK-1"),
        dcl_order("BAD#ID!"),
        dcl_order("NO-STATE", state_province=""),
        dcl_order("X" * 26),
        dcl_order("OK-1"),
    ]
    response = batch(api, orders)
    assert response.status_code == 201
    body = response.json()
    assert body["error_code"] == 0
    codes = [s["error_code"] for s in body["order_statuses"]]
    assert codes == [0, 13, 14, 11, 20]
    assert body["order_statuses"][4]["error_message"] == "Order number already exists: OK-1"


def test_allow_partial_false_copies_first_error_and_creates_nothing(api):
    bad_item = [{"line_number": 1, "item_number": "NOT-AN-ITEM", "quantity": 1}]
    body = batch(
        api, [dcl_order("A-1"), dcl_order("A-2", bad_item), dcl_order("A-3", bad_item)], allow_partial=False
    ).json()
    assert body["error_code"] == 12 and body["error_message"] == "Item number not found: NOT-AN-ITEM"
    assert len(body["order_statuses"]) == 2  # later orders are not analysed
    assert api.get("/dcl/api/v1/orders").json()["orders"] == []


def test_batch_size_and_page_size_limits(api):
    assert batch(api, []).json()["error_code"] == 40
    assert batch(api, []).status_code == 400
    too_big = api.get("/dcl/api/v1/orders", params={"page_size": 101})
    assert too_big.status_code == 400 and too_big.json()["error_code"] == 41
    assert api.get("/dcl/api/v1/items", params={"page_size": 501}).json()["error_code"] == 41
    assert api.get("/dcl/api/v1/orders", params={"status": "shipped"}).status_code == 400


def test_kits_ship_as_components_and_prepacked_kits_are_items(api):
    catalog = build_catalog()
    exploded = next(b for b in catalog.bundles if b.ship_as_components and b.sku != "MN-KIT-LEGACY")
    prepacked = next(b for b in catalog.bundles if not b.ship_as_components)
    plain_kit_line = [{"line_number": 1, "item_number": exploded.sku, "quantity": 1}]
    assert batch(api, [dcl_order("KIT-0", plain_kit_line)]).json()["order_statuses"][0]["error_code"] == 12
    bundle_lines = [{"item_number": c.component_sku, "quantity": c.quantity} for c in exploded.components]
    lines = [
        {"line_number": 1, "item_number": exploded.sku, "quantity": 2, "bundle_lines": bundle_lines},
        {"line_number": 2, "item_number": prepacked.sku, "quantity": 1},
    ]
    assert batch(api, [dcl_order("KIT-1", lines)]).json()["order_statuses"][0]["error_code"] == 0
    shipment = httpx.post(f"{api.base_url}/_sandbox/dcl/orders/KIT-1/ship", json={}).json()
    shipped = {i["item_number"]: i["quantity"] for p in shipment["packages"] for i in p["shipped_items"]}
    expected = {c.component_sku: 2 * c.quantity for c in exploded.components}
    expected[prepacked.sku] = 1
    assert shipped == expected


def test_same_resources_under_the_sandbox_prefix(api):
    assert batch(api, [dcl_order("SB-1")]).status_code == 201
    listed = api.get("/dcl/api/sandbox/orders", params={"order_numbers": "SB-1"}).json()["orders"]
    assert [o["order_number"] for o in listed] == ["SB-1"]


def test_cancel_codes_and_cancelled_shape(api):
    batch(api, [dcl_order("C-1"), dcl_order("C-2")])
    account = credentials.DCL["account_number"]
    ok = api.put("/dcl/api/v1/orders/cancel", json={"account_number": account, "order_number": "C-1"})
    assert ok.status_code == 200 and ok.json()["error_code"] == 0
    again = api.put("/dcl/api/v1/orders/cancel", json={"account_number": account, "order_number": "C-1"})
    assert again.json()["error_code"] == 30
    httpx.post(f"{api.base_url}/_sandbox/dcl/orders/C-2/stage", json={"stage": 20}).raise_for_status()
    picked = api.put("/dcl/api/v1/orders/cancel", json={"account_number": account, "order_number": "C-2"})
    assert picked.json()["error_code"] == 30
    unknown = api.put("/dcl/api/v1/orders/cancel", json={"account_number": account, "order_number": "C-9"})
    assert unknown.json()["error_code"] == 31
    (cancelled,) = api.get("/dcl/api/v1/orders", params={"order_numbers": "C-1"}).json()["orders"]
    assert cancelled["is_cancelled"] and cancelled["order_stage"] == 2


def test_rate_limit_answers_429_with_code_90(api):
    httpx.post(f"{api.base_url}/_sandbox/dcl/limits", json={"requests_per_second": 3})
    statuses = [api.get("/dcl/api/v1/items", params={"page_size": 1}) for _ in range(6)]
    throttled = [r for r in statuses if r.status_code == 429]
    assert throttled and throttled[0].json()["error_code"] == 90
    assert "Retry-After" not in throttled[0].headers


def test_asn_receipt_raises_stock_and_duplicate_reference_is_refused(api):
    notice = {
        "account_number": credentials.DCL["account_number"],
        "location": "LA",
        "reference_transaction_number": "PO-77",
        "reference_order_number": "PO77",
        "order_date": "2026-01-05",
        "expected_delivery_date": "2026-01-20",
        "lines": [{"line_number": 1, "item_number": "MN-OIL-006", "quantity": 40}],
    }
    created = api.post("/dcl/api/v1/po_notifications", json=notice)
    assert created.status_code == 201 and created.json()["dcl_po_number"] > 0
    duplicate = api.post("/dcl/api/v1/po_notifications", json=notice)
    assert duplicate.status_code == 400 and duplicate.json()["error_code"] == 21
    (before,) = api.get(
        "/dcl/api/v1/items", params={"item_numbers": "MN-OIL-006", "inventory_type": "LA"}
    ).json()["items"]
    httpx.post(f"{api.base_url}/_sandbox/dcl/po_notifications/PO-77/receive", json={}).raise_for_status()
    (after,) = api.get(
        "/dcl/api/v1/items", params={"item_numbers": "MN-OIL-006", "inventory_type": "LA"}
    ).json()["items"]
    assert after["on_hand"] == before["on_hand"] + 40
    receipts = api.get("/dcl/api/v1/po_receipts").json()["po_receipts"]
    assert receipts[0]["dcl_po_number"] == created.json()["dcl_po_number"]
    assert receipts[0]["lines"][0]["quantity_received"] == 40


def test_a_cancelled_orders_number_is_refused_or_reused_as_the_account_setting_says(api):
    """Undocumented (dcl.md §4, §13): by default a cancelled order's number is a duplicate like any
    other (error 20); with ``cancelled_order_numbers=reusable`` a new order replaces the cancelled one."""
    account = credentials.DCL["account_number"]
    assert batch(api, [dcl_order("R-1")]).json()["order_statuses"][0]["error_code"] == 0
    api.put("/dcl/api/v1/orders/cancel", json={"account_number": account, "order_number": "R-1"})
    refused = batch(api, [dcl_order("R-1")]).json()["order_statuses"][0]
    assert refused["error_code"] == 20 and "already exists" in refused["error_message"]

    setting = api.post("/_sandbox/dcl/account", json={"cancelled_order_numbers": "reusable"})
    assert setting.json()["cancelled_order_numbers"] == "reusable"
    assert batch(api, [dcl_order("R-1")]).json()["order_statuses"][0]["error_code"] == 0
    (live,) = api.get("/dcl/api/v1/orders", params={"order_numbers": "R-1"}).json()["orders"]
    assert live["order_stage"] == 10 and live["is_cancelled"] is False
    duplicate = batch(api, [dcl_order("R-1")]).json()["order_statuses"][0]  # a live order's number: refused
    assert duplicate["error_code"] == 20
    bad = api.post("/_sandbox/dcl/account", json={"cancelled_order_numbers": "maybe"})
    assert bad.status_code == 400
