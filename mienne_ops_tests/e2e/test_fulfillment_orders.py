"""Flow C against Shopify's fulfillment orders, through the real definitions and the sandbox.

A held (or scheduled) fulfillment order makes a shipped order wait as a *retrying* exception and go
through by itself once released; an order routed to two locations gets one fulfillment per location.
Every step is a sensor tick the test drives itself: nothing waits on a clock.
"""

from datetime import timedelta

import httpx
import pytest

from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.sandbox import credentials

pytestmark = pytest.mark.e2e

FR, LA = 60_000_000_001, 60_000_000_002
TRACKING = ["1Z999AA10123456784", "1Z999AA10123456795"]
HOLD = """mutation($id: ID!) { fulfillmentOrderHold(id: $id, fulfillmentHold: {reason: INCORRECT_ADDRESS,
  handle: "address-check"}) { fulfillmentHold { id } fulfillmentOrder { status } userErrors { message } } }"""
RELEASE = """mutation($id: ID!) { fulfillmentOrderReleaseHold(id: $id) {
  fulfillmentOrder { status } userErrors { message } } }"""
FULFILLMENT_ORDERS = (
    """query($id: ID!) { order(id: $id) { fulfillmentOrders(first: 5) { nodes { id status } } } }"""
)


def admin_api(url: str, query: str, variables: dict) -> dict:
    """A merchant (or another app) acting on the store through the Admin API."""
    response = httpx.post(
        f"{url}/shopify/admin/api/2026-04/graphql.json",
        json={"query": query, "variables": variables},
        headers={"X-Shopify-Access-Token": credentials.SHOPIFY["access_token"]},
        timeout=30,
    )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def place(url: str, **order) -> dict:
    order.setdefault("email", "fo-test@example.com")
    order.setdefault(
        "shipping_address",
        {"first_name": "Ada", "last_name": "Byron", "address1": "1 Main St", "city": "Austin",
         "province_code": "TX", "zip": "78701", "country_code": "US", "country": "United States"},
    )  # fmt: skip
    order.setdefault("shipping_lines", [{"code": "Standard", "title": "Standard", "price": "0.00"}])
    response = httpx.post(f"{url}/_sandbox/shopify/orders", json=order, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def to_dcl_and_ship(stack) -> None:
    """Flows A and B, then DCL ships every order it holds with the two tracking numbers."""
    url, driver = stack["sandbox"].url, stack["driver"]
    driver.tick("shopify_orders_sensor")
    driver.tick("netsuite_dispatch_sensor")
    dcl_orders = sandbox_state(url)["dcl"]["orders"]
    assert dcl_orders, [r.success for r in driver.runs]
    for order in dcl_orders:
        shipped = httpx.post(
            f"{url}/_sandbox/dcl/orders/{order['order_number']}/ship",
            json={"carrier": "UPS", "service": "GROUND", "tracking_numbers": TRACKING},
            timeout=30,
        )
        assert shipped.status_code == 200, shipped.text


def shopify_order(url: str, order_id: int) -> dict:
    return next(o for o in sandbox_state(url)["shopify"]["orders"] if o["id"] == order_id)


def flow_c_exceptions(ledger) -> list:
    return [e for e in ledger.exceptions() if e.flow == "C"]


def test_a_held_fulfillment_order_waits_as_a_retrying_exception_and_goes_through_once_released(stack):
    url, driver, ledger = stack["sandbox"].url, stack["driver"], stack["ledger"]
    created = place(url, line_items=[{"sku": "MN-SERUM-001", "quantity": 2}])
    [fo] = admin_api(url, FULFILLMENT_ORDERS, {"id": created["admin_graphql_api_id"]})["order"][
        "fulfillmentOrders"
    ]["nodes"]
    held = admin_api(url, HOLD, {"id": fo["id"]})["fulfillmentOrderHold"]
    assert held["userErrors"] == [] and held["fulfillmentOrder"]["status"] == "ON_HOLD"

    to_dcl_and_ship(stack)
    for _ in range(2):  # DCL shipped; Shopify refuses while on hold, however often we come back
        driver.tick("dcl_shipments_sensor")
        assert shopify_order(url, created["id"])["fulfillments"] == []
        [waiting] = flow_c_exceptions(ledger)
        assert (waiting.status, waiting.reason) == ("retrying", "fulfillment_order_on_hold")
    assert len(sandbox_state(url)["netsuite"]["item_fulfillments"]) == 1  # the rest of flow C went on

    released = admin_api(url, RELEASE, {"id": fo["id"]})["fulfillmentOrderReleaseHold"]
    assert released["fulfillmentOrder"]["status"] == "OPEN"
    driver.tick("dcl_shipments_sensor")  # no retry command: the sensor picks the exception up
    for _ in range(2):
        driver.tick("dcl_shipments_sensor")
    order = shopify_order(url, created["id"])
    [fulfillment] = order["fulfillments"]
    assert fulfillment["tracking_numbers"] == TRACKING
    assert order["fulfillment_status"] == "fulfilled"
    assert [e.status for e in flow_c_exceptions(ledger)] == ["resolved"]


def test_a_scheduled_fulfillment_order_waits_until_shopify_opens_it(stack):
    url, driver, ledger = stack["sandbox"].url, stack["driver"], stack["ledger"]
    world = stack["sandbox"].hub.world
    later = (world.now() + timedelta(days=2)).isoformat()
    created = place(url, fulfill_at=later, line_items=[{"sku": "MN-SERUM-001", "quantity": 2}])
    to_dcl_and_ship(stack)
    driver.tick("dcl_shipments_sensor")
    [waiting] = flow_c_exceptions(ledger)
    assert (waiting.status, waiting.reason) == ("retrying", "fulfillment_order_scheduled")
    assert shopify_order(url, created["id"])["fulfillments"] == []
    try:
        world.clock_offset = timedelta(days=3)  # Shopify opens it by itself when fulfill_at comes
        driver.tick("dcl_shipments_sensor")
    finally:
        world.clock_offset = timedelta(0)
    [fulfillment] = shopify_order(url, created["id"])["fulfillments"]
    assert fulfillment["tracking_numbers"] == TRACKING
    assert [e.status for e in flow_c_exceptions(ledger)] == ["resolved"]


def test_an_order_over_two_locations_gets_one_fulfillment_per_location(stack):
    url, driver = stack["sandbox"].url, stack["driver"]
    created = place(
        url,
        line_items=[
            {"sku": "MN-SERUM-001", "quantity": 2, "assigned_location_id": FR},
            {"sku": "MN-CREAM-002", "quantity": 1, "assigned_location_id": LA},
            {"sku": "MN-TONER-004", "quantity": 1, "assigned_location_id": FR},
        ],
    )
    to_dcl_and_ship(stack)
    for _ in range(3):  # the first tick does the work; the others must create nothing
        driver.tick("dcl_shipments_sensor")
    order = shopify_order(url, created["id"])
    by_location = {f["location_id"]: f for f in order["fulfillments"]}
    assert len(order["fulfillments"]) == 2 and set(by_location) == {FR, LA}
    skus = {location: sorted(line["sku"] for line in f["line_items"]) for location, f in by_location.items()}
    assert skus == {FR: ["MN-SERUM-001", "MN-TONER-004"], LA: ["MN-CREAM-002"]}
    assert all(f["tracking_numbers"] == TRACKING for f in order["fulfillments"])
    assert {fo["status"] for fo in order["fulfillment_orders"]} == {"closed"}
    assert order["fulfillment_status"] == "fulfilled"
    assert flow_c_exceptions(stack["ledger"]) == []


def test_a_rerun_after_one_location_was_fulfilled_sends_only_the_other(stack):
    """As if the first of two fulfillmentCreate calls went through and the answer to the second was
    lost: the units already on Shopify with this shipment's tracking are not sent again."""
    url, driver = stack["sandbox"].url, stack["driver"]
    created = place(
        url,
        line_items=[
            {"sku": "MN-SERUM-001", "quantity": 1, "assigned_location_id": FR},
            {"sku": "MN-CREAM-002", "quantity": 1, "assigned_location_id": LA},
        ],
    )
    to_dcl_and_ship(stack)
    query = """query($id: ID!) { order(id: $id) { fulfillmentOrders(first: 5) { nodes { id
      assignedLocation { location { id } } } } } }"""
    nodes = admin_api(url, query, {"id": created["admin_graphql_api_id"]})["order"]["fulfillmentOrders"][
        "nodes"
    ]
    fremont = next(n for n in nodes if n["assignedLocation"]["location"]["id"].endswith(str(FR)))
    first_call = admin_api(
        url,
        """mutation($input: FulfillmentInput!) { fulfillmentCreate(fulfillment: $input) {
          fulfillment { id } userErrors { message } } }""",
        {"input": {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fremont["id"]}],
                   "trackingInfo": {"company": "UPS", "numbers": TRACKING}}},
    )["fulfillmentCreate"]  # fmt: skip
    assert first_call["userErrors"] == []
    driver.tick("dcl_shipments_sensor")
    driver.tick("dcl_shipments_sensor")
    order = shopify_order(url, created["id"])
    assert sorted(f["location_id"] for f in order["fulfillments"]) == [FR, LA]
    assert order["fulfillment_status"] == "fulfilled"
