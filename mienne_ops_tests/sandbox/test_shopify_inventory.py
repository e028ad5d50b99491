"""The Shopify fake's inventory over real HTTP: items, levels, inventorySetQuantities (2026-04 rules)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.server import SandboxServer
from mienne_ops_tests.support import single_system_server

TOKEN = {"X-Shopify-Access-Token": credentials.SHOPIFY["access_token"]}
FR = "gid://shopify/Location/60000000001"
SET = """
mutation Set($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id changes { name delta quantityAfterChange item { id } location { id } } }
    userErrors { code field message }
  }
}
"""
ITEMS = """
query Items($first: Int!, $after: String, $query: String) {
  inventoryItems(first: $first, after: $after, query: $query) {
    nodes {
      id sku variant { requiresComponents }
      inventoryLevels(first: 5) { nodes { location { id } quantities(names: ["available"]) { quantity } } }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""


server = single_system_server("shopify")


@pytest.fixture
def sandbox(server) -> Iterator[SandboxServer]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server


def gql(sandbox, query: str, variables: dict | None = None, version: str = "2026-04") -> dict:
    url = f"{sandbox.url}/shopify/admin/api/{version}/graphql.json"
    return httpx.post(url, json={"query": query, "variables": variables or {}}, headers=TOKEN).json()


def item(sandbox, sku: str) -> dict:
    (node,) = gql(sandbox, ITEMS, {"first": 1, "query": f"sku:{sku}"})["data"]["inventoryItems"]["nodes"]
    return node


def available(node: dict, location: str = FR) -> int:
    level = next(lv for lv in node["inventoryLevels"]["nodes"] if lv["location"]["id"] == location)
    return level["quantities"][0]["quantity"]


def set_quantities(sandbox, quantities: list[dict], key: str, **extra) -> dict:
    payload = {"name": "available", "reason": "correction", "quantities": quantities, **extra}
    return gql(sandbox, SET, {"input": payload, "key": key})


def test_items_page_with_levels_per_location(sandbox):
    # Reading the whole catalog in small pages takes more than a Standard bucket: a Plus shop's.
    httpx.post(f"{sandbox.url}/_sandbox/shopify/limits", json={"plan": "plus"}).raise_for_status()
    seen, after = [], None
    while True:
        # 40 items of 19 points (item, variant, 2 + 5 levels of 3) fit under Shopify's 1,000-point cap.
        page = gql(sandbox, ITEMS, {"first": 40, "after": after})["data"]["inventoryItems"]
        seen.extend(page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len({n["id"] for n in seen}) == len(sandbox.hub.catalog.skus)
    assert all(len(n["inventoryLevels"]["nodes"]) == 2 for n in seen)
    assert {n["sku"] for n in seen if n["variant"]["requiresComponents"]} >= {"MN-KIT-06", "MN-KIT-12"}


def test_set_quantities_with_compare_and_swap_and_replay(sandbox):
    node = item(sandbox, "MN-SERUM-001")
    before = available(node)
    quantity = {"inventoryItemId": node["id"], "locationId": FR, "quantity": 42, "changeFromQuantity": before}
    body = set_quantities(sandbox, [quantity], "k-1")
    change = body["data"]["inventorySetQuantities"]["inventoryAdjustmentGroup"]["changes"][0]
    assert (change["delta"], change["quantityAfterChange"]) == (42 - before, 42)
    assert available(item(sandbox, "MN-SERUM-001")) == 42
    # The same key and input replays the first answer (no second change, no stale error).
    assert set_quantities(sandbox, [quantity], "k-1")["data"] == body["data"]
    # The same key with another input is refused.
    other = set_quantities(sandbox, [{**quantity, "quantity": 7}], "k-1")
    assert (
        other["data"]["inventorySetQuantities"]["userErrors"][0]["code"]
        == "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"
    )
    # A stale compare value fails and changes nothing.
    stale = set_quantities(sandbox, [{**quantity, "quantity": 5}], "k-2")
    errors = stale["data"]["inventorySetQuantities"]["userErrors"]
    assert errors[0]["code"] == "CHANGE_FROM_QUANTITY_STALE"
    assert errors[0]["field"] == ["input", "quantities", "0", "changeFromQuantity"]
    assert available(item(sandbox, "MN-SERUM-001")) == 42


def test_2026_04_rules_idempotent_change_from_limits_and_bundle_parents(sandbox):
    node = item(sandbox, "MN-SERUM-001")
    no_key = SET.replace(" @idempotent(key: $key)", "").replace(", $key: String!", "")
    payload = {"name": "available", "reason": "correction", "quantities": []}
    body = gql(sandbox, no_key, {"input": payload})
    assert "@idempotent directive is required" in body["errors"][0]["message"]
    missing = set_quantities(
        sandbox, [{"inventoryItemId": node["id"], "locationId": FR, "quantity": 1}], "k-3"
    )
    assert "changeFromQuantity is required" in missing["errors"][0]["message"]
    too_many = [
        {"inventoryItemId": node["id"], "locationId": FR, "quantity": 1, "changeFromQuantity": None}
    ] * 251
    assert (
        set_quantities(sandbox, too_many, "k-4")["errors"][0]["extensions"]["code"]
        == "MAX_INPUT_SIZE_EXCEEDED"
    )
    parent = item(sandbox, "MN-KIT-06")
    good = {"inventoryItemId": node["id"], "locationId": FR, "quantity": 3, "changeFromQuantity": None}
    bad = {"inventoryItemId": parent["id"], "locationId": FR, "quantity": 3, "changeFromQuantity": None}
    errors = set_quantities(sandbox, [good, bad], "k-5")["data"]["inventorySetQuantities"]["userErrors"]
    assert [(e["code"], e["field"][2]) for e in errors] == [("NON_MUTABLE_INVENTORY_ITEM", "1")]
    assert available(item(sandbox, "MN-SERUM-001")) == available(node)  # all-or-nothing
    negative = set_quantities(sandbox, [{**good, "quantity": -1}], "k-6")
    assert negative["data"]["inventorySetQuantities"]["userErrors"][0]["code"] == "INVALID_QUANTITY_NEGATIVE"
    duplicate = set_quantities(sandbox, [good, good], "k-7")
    codes = [e["code"] for e in duplicate["data"]["inventorySetQuantities"]["userErrors"]]
    assert codes == ["NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR"]
    reason = set_quantities(sandbox, [good], "k-8", reason="because")
    assert reason["data"]["inventorySetQuantities"]["userErrors"][0]["code"] == "INVALID_REASON"


def test_an_order_lowers_available_and_control_plane_sets_levels(sandbox):
    url = f"{sandbox.url}/_sandbox/shopify/inventory"
    httpx.post(url, json={"levels": [{"sku": "MN-CREAM-002", "location_id": 60000000001, "available": 10}]})
    response = httpx.post(
        f"{sandbox.url}/_sandbox/shopify/orders",
        json={"line_items": [{"sku": "MN-CREAM-002", "quantity": 3}], "email": "a@example.com"},
    )
    assert response.status_code == 201
    assert available(item(sandbox, "MN-CREAM-002")) == 7
    levels = httpx.get(url, params={"sku": "MN-CREAM-002"}).json()["levels"]
    assert {lv["location_id"]: lv["available"] for lv in levels}[60000000001] == 7
    state = httpx.get(f"{sandbox.url}/_sandbox/state").json()["shopify"]["inventory"]["levels"]
    assert any(lv["sku"] == "MN-CREAM-002" and lv["available"] == 7 for lv in state)
