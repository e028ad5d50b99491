"""A handful of orders through A -> B -> C without faults: the shortest proof the spine works."""

import random

import httpx

from mienne_ops.sandbox.order_factory import build_order
from mienne_ops_tests.e2e.harness import sandbox_state


def test_orders_flow_from_shopify_to_shipped(stack):
    sandbox, driver = stack["sandbox"], stack["driver"]
    rng = random.Random(5)
    ids = []
    for _ in range(3):
        created = httpx.post(
            f"{sandbox.url}/_sandbox/shopify/orders", json=build_order(sandbox.hub.catalog, rng)
        ).json()
        ids.append(created["id"])
    driver.tick("shopify_orders_sensor")
    state = sandbox_state(sandbox.url)
    assert len(state["netsuite"]["sales_orders"]) == 3, [r.success for r in driver.runs]
    driver.tick("netsuite_dispatch_sensor")
    state = sandbox_state(sandbox.url)
    assert len(state["dcl"]["orders"]) == 3
    for order in state["dcl"]["orders"]:
        httpx.post(
            f"{sandbox.url}/_sandbox/dcl/orders/{order['order_number']}/ship", json={}
        ).raise_for_status()
    driver.tick("dcl_shipments_sensor")
    state = sandbox_state(sandbox.url)
    assert len(state["netsuite"]["item_fulfillments"]) == 3
    assert all(o["fulfillments"] for o in state["shopify"]["orders"])
