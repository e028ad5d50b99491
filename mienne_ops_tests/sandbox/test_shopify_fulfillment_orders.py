"""Fulfillment orders in the Shopify fake, over real HTTP: routing per location, holds, schedules,
moves, splits, and the fulfillments Shopify refuses. Every document runs through the real schema."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.server import SandboxServer
from mienne_ops_tests.support import single_system_server

TOKEN = {"X-Shopify-Access-Token": credentials.SHOPIFY["access_token"]}
FR, LA = 60_000_000_001, 60_000_000_002  # the seed catalog's two locations
server = single_system_server("shopify")

FO_FIELDS = """id status fulfillAt supportedActions { action }
  assignedLocation { name location { id } }
  fulfillmentHolds { id reason handle }
  lineItems(first: 10) { nodes { id sku totalQuantity remainingQuantity lineItem { id } } }"""
ORDER_FOS = f"""query($id: ID!) {{ order(id: $id) {{ displayFulfillmentStatus
  lineItems(first: 10) {{ nodes {{ id sku }} }}
  fulfillmentOrders(first: 10) {{ nodes {{ {FO_FIELDS} }} }} }} }}"""
HOLD = f"""mutation($id: ID!, $hold: FulfillmentOrderHoldInput!) {{
  fulfillmentOrderHold(id: $id, fulfillmentHold: $hold) {{
    fulfillmentHold {{ id reason handle }}
    fulfillmentOrder {{ {FO_FIELDS} }}
    remainingFulfillmentOrder {{ {FO_FIELDS} }}
    userErrors {{ field message code }} }} }}"""
RELEASE = f"""mutation($id: ID!, $holdIds: [ID!]) {{
  fulfillmentOrderReleaseHold(id: $id, holdIds: $holdIds) {{
    fulfillmentOrder {{ {FO_FIELDS} }} userErrors {{ field message code }} }} }}"""
OPEN = f"""mutation($id: ID!) {{ fulfillmentOrderOpen(id: $id) {{
  fulfillmentOrder {{ {FO_FIELDS} }} userErrors {{ field message }} }} }}"""
RESCHEDULE = f"""mutation($id: ID!, $at: DateTime!) {{ fulfillmentOrderReschedule(id: $id, fulfillAt: $at) {{
  fulfillmentOrder {{ {FO_FIELDS} }} userErrors {{ field message code }} }} }}"""
MOVE = f"""mutation($id: ID!, $to: ID!, $lines: [FulfillmentOrderLineItemInput!]) {{
  fulfillmentOrderMove(id: $id, newLocationId: $to, fulfillmentOrderLineItems: $lines) {{
    movedFulfillmentOrder {{ {FO_FIELDS} }} originalFulfillmentOrder {{ {FO_FIELDS} }}
    userErrors {{ field message code }} }} }}"""
SPLIT = f"""mutation($splits: [FulfillmentOrderSplitInput!]!) {{
  fulfillmentOrderSplit(fulfillmentOrderSplits: $splits) {{
  fulfillmentOrderSplits {{ fulfillmentOrder {{ {FO_FIELDS} }} remainingFulfillmentOrder {{ {FO_FIELDS} }} }}
  userErrors {{ field message code }} }} }}"""
FULFILL = """mutation($input: FulfillmentInput!) { fulfillmentCreate(fulfillment: $input) {
  fulfillment { id location { id } trackingInfo { number } } userErrors { field message } } }"""


@pytest.fixture
def sandbox(server) -> Iterator[SandboxServer]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server
    server.hub.world.clock_offset = timedelta(0)


def data(sandbox, query: str, variables: dict | None = None) -> dict:
    url = f"{sandbox.url}/shopify/admin/api/2026-04/graphql.json"
    body = httpx.post(url, json={"query": query, "variables": variables or {}}, headers=TOKEN).json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def inject(sandbox, **order) -> dict:
    response = httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=order)
    assert response.status_code == 201, response.text
    return response.json()


def two_location_order(sandbox) -> dict:
    return inject(
        sandbox,
        line_items=[
            {"sku": "MN-SERUM-001", "quantity": 2, "assigned_location_id": FR},
            {"sku": "MN-CREAM-002", "quantity": 1, "assigned_location_id": "LA"},
            {"sku": "MN-TONER-004", "quantity": 3, "assigned_location_id": FR},
        ],
    )


def fulfillment_orders(sandbox, created) -> list[dict]:
    return data(sandbox, ORDER_FOS, {"id": created["admin_graphql_api_id"]})["order"]["fulfillmentOrders"][
        "nodes"
    ]


def actions(fo: dict) -> list[str]:
    return [a["action"] for a in fo["supportedActions"]]


def hold(sandbox, fo_id: str, fulfillment_hold: dict) -> dict:
    return data(sandbox, HOLD, {"id": fo_id, "hold": fulfillment_hold})["fulfillmentOrderHold"]


def fulfil(sandbox, groups: list[dict], number: str = "1Z999AA10123456784") -> dict:
    tracking = {"numbers": [number], "company": "UPS"}
    variables = {"input": {"lineItemsByFulfillmentOrder": groups, "trackingInfo": tracking}}
    return data(sandbox, FULFILL, variables)["fulfillmentCreate"]


def lines(fo: dict, quantity: int | None = None) -> list[dict]:
    return [
        {"id": n["id"], "quantity": quantity or n["remainingQuantity"]}
        for n in fo["lineItems"]["nodes"]
        if n["remainingQuantity"]
    ]


def available(sandbox, sku: str) -> dict[int, int]:
    levels = httpx.get(f"{sandbox.url}/_sandbox/shopify/inventory", params={"sku": sku}).json()["levels"]
    return {level["location_id"]: level["available"] for level in levels}


def test_an_order_gets_one_fulfillment_order_per_assigned_location(sandbox):
    before = available(sandbox, "MN-CREAM-002")
    created = two_location_order(sandbox)
    # Shopify lowers `available` where each line is assigned.
    assert available(sandbox, "MN-CREAM-002") == {FR: before[FR], LA: before[LA] - 1}
    fos = fulfillment_orders(sandbox, created)
    by_location = {fo["assignedLocation"]["location"]["id"]: fo for fo in fos}
    assert set(by_location) == {f"gid://shopify/Location/{FR}", f"gid://shopify/Location/{LA}"}
    fremont = by_location[f"gid://shopify/Location/{FR}"]
    assert sorted(n["sku"] for n in fremont["lineItems"]["nodes"]) == ["MN-SERUM-001", "MN-TONER-004"]
    assert [n["sku"] for n in by_location[f"gid://shopify/Location/{LA}"]["lineItems"]["nodes"]] == [
        "MN-CREAM-002"
    ]
    assert all(fo["status"] == "OPEN" and "CREATE_FULFILLMENT" in actions(fo) for fo in fos)
    order = data(sandbox, ORDER_FOS, {"id": created["admin_graphql_api_id"]})["order"]
    order_line_ids = {n["id"] for n in order["lineItems"]["nodes"]}
    fo_line_ids = {n["id"] for fo in fos for n in fo["lineItems"]["nodes"]}
    assert fo_line_ids.isdisjoint(order_line_ids)
    assert {n["lineItem"]["id"] for fo in fos for n in fo["lineItems"]["nodes"]} == order_line_ids

    unknown = httpx.post(
        f"{sandbox.url}/_sandbox/shopify/orders",
        json={"line_items": [{"sku": "MN-SERUM-001", "assigned_location_id": 42}]},
    )
    assert unknown.status_code == 400 and "unknown location" in unknown.text


def test_fulfillment_create_takes_one_location_per_call_and_closes_what_it_completes(sandbox):
    created = two_location_order(sandbox)
    fos = fulfillment_orders(sandbox, created)
    fremont, los_angeles = sorted(fos, key=lambda fo: len(fo["lineItems"]["nodes"]), reverse=True)
    mixed = fulfil(
        sandbox, [{"fulfillmentOrderId": fremont["id"]}, {"fulfillmentOrderId": los_angeles["id"]}]
    )
    assert mixed["fulfillment"] is None
    assert mixed["userErrors"] == [
        {"field": ["fulfillment"], "message": "All fulfillment orders must be assigned to the same location."}
    ]
    first = fulfil(sandbox, [{"fulfillmentOrderId": fremont["id"]}])
    assert (
        first["userErrors"] == [] and first["fulfillment"]["location"]["id"] == f"gid://shopify/Location/{FR}"
    )
    second = fulfil(sandbox, [{"fulfillmentOrderId": los_angeles["id"]}], "1Z999AA10123456795")
    assert second["fulfillment"]["location"]["id"] == f"gid://shopify/Location/{LA}"
    order = data(sandbox, ORDER_FOS, {"id": created["admin_graphql_api_id"]})["order"]
    assert order["displayFulfillmentStatus"] == "FULFILLED"
    assert {fo["status"] for fo in order["fulfillmentOrders"]["nodes"]} == {"CLOSED"}
    closed = fulfil(sandbox, [{"fulfillmentOrderId": fremont["id"]}])
    number = fremont["id"].rsplit("/", 1)[1]
    assert closed["userErrors"] == [
        {
            "field": ["fulfillment"],
            "message": f"Fulfillment order {number} has an unfulfillable status= closed.",
        }
    ]


def test_a_hold_blocks_fulfillment_until_every_hold_is_released(sandbox):
    created = inject(sandbox, line_items=[{"sku": "MN-SERUM-001", "quantity": 2}])
    [fo] = fulfillment_orders(sandbox, created)
    held = hold(sandbox, fo["id"], {"reason": "INCORRECT_ADDRESS", "handle": "address"})
    assert held["userErrors"] == [] and held["remainingFulfillmentOrder"] is None
    assert held["fulfillmentOrder"]["status"] == "ON_HOLD"
    assert actions(held["fulfillmentOrder"]) == ["RELEASE_HOLD", "HOLD", "MOVE"]
    second = hold(sandbox, fo["id"], {"reason": "OTHER", "handle": "fraud-check"})
    duplicate = hold(sandbox, fo["id"], {"reason": "OTHER", "handle": "address"})
    assert duplicate["userErrors"][0]["code"] == "DUPLICATE_FULFILLMENT_HOLD_HANDLE"
    order = data(sandbox, ORDER_FOS, {"id": created["admin_graphql_api_id"]})["order"]
    assert order["displayFulfillmentStatus"] == "ON_HOLD"

    refused = fulfil(sandbox, [{"fulfillmentOrderId": fo["id"]}])
    assert refused["fulfillment"] is None
    assert refused["userErrors"][0]["message"].endswith("has an unfulfillable status= on_hold.")

    one = data(sandbox, RELEASE, {"id": fo["id"], "holdIds": [held["fulfillmentHold"]["id"]]})
    assert one["fulfillmentOrderReleaseHold"]["fulfillmentOrder"]["status"] == "ON_HOLD"  # one hold left
    both = data(sandbox, RELEASE, {"id": fo["id"], "holdIds": [second["fulfillmentHold"]["id"]]})
    released = both["fulfillmentOrderReleaseHold"]["fulfillmentOrder"]
    assert released["status"] == "OPEN" and released["fulfillmentHolds"] == []
    not_held = data(sandbox, RELEASE, {"id": fo["id"]})["fulfillmentOrderReleaseHold"]
    assert not_held["fulfillmentOrder"] is None and not_held["userErrors"]
    assert fulfil(sandbox, [{"fulfillmentOrderId": fo["id"]}])["userErrors"] == []


def test_a_hold_on_some_lines_leaves_the_rest_open_in_a_new_fulfillment_order(sandbox):
    created = inject(
        sandbox,
        line_items=[{"sku": "MN-SERUM-001", "quantity": 2}, {"sku": "MN-CREAM-002", "quantity": 1}],
    )
    [fo] = fulfillment_orders(sandbox, created)
    serum = next(n for n in fo["lineItems"]["nodes"] if n["sku"] == "MN-SERUM-001")
    partial = {
        "reason": "INVENTORY_OUT_OF_STOCK",
        "fulfillmentOrderLineItems": [{"id": serum["id"], "quantity": 1}],
    }
    held = data(sandbox, HOLD, {"id": fo["id"], "hold": partial})["fulfillmentOrderHold"]
    assert held["userErrors"] == []
    kept, rest = held["fulfillmentOrder"], held["remainingFulfillmentOrder"]
    assert kept["id"] == fo["id"] and kept["status"] == "ON_HOLD"
    assert [(n["sku"], n["remainingQuantity"]) for n in kept["lineItems"]["nodes"]] == [("MN-SERUM-001", 1)]
    assert rest["status"] == "OPEN"
    assert sorted((n["sku"], n["remainingQuantity"]) for n in rest["lineItems"]["nodes"]) == [
        ("MN-CREAM-002", 1),
        ("MN-SERUM-001", 1),
    ]
    again = data(sandbox, HOLD, {"id": fo["id"], "hold": {**partial, "handle": "second"}})[
        "fulfillmentOrderHold"
    ]
    assert again["userErrors"][0]["code"] == "FULFILLMENT_ORDER_NOT_SPLITTABLE"
    over = {
        "reason": "OTHER",
        "fulfillmentOrderLineItems": [{"id": rest["lineItems"]["nodes"][0]["id"], "quantity": 9}],
    }
    assert data(sandbox, HOLD, {"id": rest["id"], "hold": over})["fulfillmentOrderHold"]["userErrors"][0][
        "code"
    ] == ("INVALID_LINE_ITEM_QUANTITY")
    missing = data(sandbox, HOLD, {"id": "gid://shopify/FulfillmentOrder/1", "hold": {"reason": "OTHER"}})
    assert missing["fulfillmentOrderHold"]["userErrors"][0]["code"] == "FULFILLMENT_ORDER_NOT_FOUND"


def test_a_scheduled_fulfillment_order_opens_by_mutation_or_when_its_time_comes(sandbox):
    later = (sandbox.hub.world.now() + timedelta(days=3)).isoformat()
    first = inject(sandbox, fulfill_at=later, line_items=[{"sku": "MN-SERUM-001", "quantity": 1}])
    second = inject(sandbox, fulfill_at=later, line_items=[{"sku": "MN-SERUM-001", "quantity": 1}])
    [fo] = fulfillment_orders(sandbox, first)
    assert fo["status"] == "SCHEDULED" and actions(fo) == ["MARK_AS_OPEN"] and fo["fulfillAt"]
    order = data(sandbox, ORDER_FOS, {"id": first["admin_graphql_api_id"]})["order"]
    assert order["displayFulfillmentStatus"] == "SCHEDULED"
    refused = fulfil(sandbox, [{"fulfillmentOrderId": fo["id"]}])
    assert refused["userErrors"][0]["message"].endswith("has an unfulfillable status= scheduled.")

    past = data(sandbox, RESCHEDULE, {"id": fo["id"], "at": "2020-01-01T00:00:00Z"})[
        "fulfillmentOrderReschedule"
    ]
    assert past["fulfillmentOrder"] is None and past["userErrors"][0]["field"] == ["fulfillAt"]
    opened = data(sandbox, OPEN, {"id": fo["id"]})["fulfillmentOrderOpen"]
    assert opened["userErrors"] == [] and opened["fulfillmentOrder"]["status"] == "OPEN"
    assert data(sandbox, OPEN, {"id": fo["id"]})["fulfillmentOrderOpen"]["userErrors"]  # not scheduled now
    assert fulfil(sandbox, [{"fulfillmentOrderId": fo["id"]}])["userErrors"] == []

    [waiting] = fulfillment_orders(sandbox, second)
    assert waiting["status"] == "SCHEDULED"
    sandbox.hub.world.clock_offset = timedelta(days=4)  # the sandbox clock, not a sleep
    [due] = fulfillment_orders(sandbox, second)
    assert due["status"] == "OPEN"


def test_move_relocates_a_whole_fulfillment_order_or_carves_out_the_moved_lines(sandbox):
    created = inject(
        sandbox,
        line_items=[{"sku": "MN-SERUM-001", "quantity": 2}, {"sku": "MN-CREAM-002", "quantity": 1}],
    )
    [fo] = fulfillment_orders(sandbox, created)
    to_la = f"gid://shopify/Location/{LA}"
    whole = data(sandbox, MOVE, {"id": fo["id"], "to": to_la})["fulfillmentOrderMove"]
    assert whole["userErrors"] == []
    assert whole["movedFulfillmentOrder"]["id"] == fo["id"]
    assert whole["movedFulfillmentOrder"]["assignedLocation"]["location"]["id"] == to_la

    serum = next(n for n in fo["lineItems"]["nodes"] if n["sku"] == "MN-SERUM-001")
    to_fr = f"gid://shopify/Location/{FR}"
    one_serum = [{"id": serum["id"], "quantity": 1}]
    part = data(sandbox, MOVE, {"id": fo["id"], "to": to_fr, "lines": one_serum})["fulfillmentOrderMove"]
    moved, original = part["movedFulfillmentOrder"], part["originalFulfillmentOrder"]
    assert moved["id"] != fo["id"] and moved["assignedLocation"]["location"]["id"] == to_fr
    assert [(n["sku"], n["remainingQuantity"]) for n in moved["lineItems"]["nodes"]] == [("MN-SERUM-001", 1)]
    assert original["status"] == "OPEN"
    assert sum(n["remainingQuantity"] for n in original["lineItems"]["nodes"]) == 2
    assert len(fulfillment_orders(sandbox, created)) == 2

    same = data(sandbox, MOVE, {"id": moved["id"], "to": to_fr})["fulfillmentOrderMove"]
    assert same["movedFulfillmentOrder"] is None and same["userErrors"][0]["field"] == ["newLocationId"]
    nowhere = data(sandbox, MOVE, {"id": moved["id"], "to": "gid://shopify/Location/9"})[
        "fulfillmentOrderMove"
    ]
    assert nowhere["userErrors"][0]["field"] == ["newLocationId"]
    assert fulfil(sandbox, [{"fulfillmentOrderId": moved["id"]}])["userErrors"] == []
    closed = data(sandbox, MOVE, {"id": moved["id"], "to": to_la})["fulfillmentOrderMove"]
    assert closed["movedFulfillmentOrder"] is None and "closed" in closed["userErrors"][0]["message"]


def test_split_moves_the_given_units_into_a_new_fulfillment_order(sandbox):
    created = inject(sandbox, line_items=[{"sku": "MN-SERUM-001", "quantity": 3}])
    [fo] = fulfillment_orders(sandbox, created)
    assert "SPLIT" in actions(fo)
    line = fo["lineItems"]["nodes"][0]

    def split(fo_id, items):
        variables = {"splits": [{"fulfillmentOrderId": fo_id, "fulfillmentOrderLineItems": items}]}
        return data(sandbox, SPLIT, variables)["fulfillmentOrderSplit"]

    assert split(fo["id"], [])["userErrors"][0]["code"] == "NO_LINE_ITEMS_PROVIDED_TO_SPLIT"
    assert split(fo["id"], [{"id": line["id"], "quantity": 0}])["userErrors"][0]["code"] == "GREATER_THAN"
    assert split(fo["id"], [{"id": line["id"], "quantity": 3}])["userErrors"][0]["code"] == (
        "INVALID_LINE_ITEM_QUANTITY"
    )
    missing = split("gid://shopify/FulfillmentOrder/1", [{"id": line["id"], "quantity": 1}])
    assert missing["userErrors"][0]["code"] == "FULFILLMENT_ORDER_NOT_FOUND"

    done = split(fo["id"], [{"id": line["id"], "quantity": 1}])
    assert done["userErrors"] == []
    [result] = done["fulfillmentOrderSplits"]
    assert result["fulfillmentOrder"]["id"] == fo["id"]
    assert result["fulfillmentOrder"]["lineItems"]["nodes"][0]["remainingQuantity"] == 2
    new = result["remainingFulfillmentOrder"]
    assert new["id"] != fo["id"] and new["status"] == "OPEN"
    assert new["lineItems"]["nodes"][0]["remainingQuantity"] == 1
    assert new["lineItems"]["nodes"][0]["id"] != line["id"]
    both = fulfil(sandbox, [{"fulfillmentOrderId": fo["id"]}, {"fulfillmentOrderId": new["id"]}])
    assert both["userErrors"] == []  # same order, same location: one fulfillment may take both


def test_cancelled_and_incomplete_fulfillment_orders_are_not_fulfillable(sandbox):
    created = inject(sandbox, line_items=[{"sku": "MN-SERUM-001", "quantity": 1}])
    [fo] = fulfillment_orders(sandbox, created)
    number = fo["id"].rsplit("/", 1)[1]
    for status in ("cancelled", "incomplete"):
        forced = httpx.post(
            f"{sandbox.url}/_sandbox/shopify/fulfillment_orders/{number}/status", json={"status": status}
        )
        assert forced.status_code == 200, forced.text
        refused = fulfil(sandbox, [{"fulfillmentOrderId": fo["id"]}])
        assert refused["userErrors"] == [
            {
                "field": ["fulfillment"],
                "message": f"Fulfillment order {number} has an unfulfillable status= {status}.",
            }
        ]
