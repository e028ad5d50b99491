"""``/metrics`` on the real receiver, scraped before and after orders flow through A and B.

The flows run in this process against the sandbox over HTTP, exactly as the other end-to-end tests
do; the receiver serves the scrape from the ledger and the multiprocess directory. Every name it
exposes is documented (catalog and README), and the numbers move the way the orders did.
"""

import random

import httpx
import pytest

from mienne_ops.observability.catalog import EXPOSED_SERIES
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops_tests.e2e.test_order_to_cash import _wait_for_webhooks
from mienne_ops_tests.observability.scrape import names, scrape, value

pytestmark = pytest.mark.e2e

ORDERS = 3


def test_metrics_are_documented_and_move_when_orders_flow(stack):
    sandbox, driver, receiver = stack["sandbox"], stack["driver"], stack["receiver"]
    base = f"http://127.0.0.1:{receiver.port}"
    # Every Shopify webhook delivered twice: the duplicates counter has something to count.
    faults = {"seed": 3, "shopify": {"webhook_duplicate_rate": 1.0}}
    httpx.post(f"{sandbox.url}/_sandbox/faults", json=faults, timeout=30).raise_for_status()
    before = scrape(base)

    rng = random.Random(12)
    for _ in range(ORDERS):
        order = build_order(sandbox.hub.catalog, rng)
        httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=order, timeout=30).raise_for_status()
    _wait_for_webhooks(sandbox.url)
    driver.tick("shopify_orders_sensor")
    driver.tick("netsuite_dispatch_sensor")
    after = scrape(base)

    assert names(after) <= EXPOSED_SERIES, names(after) - EXPOSED_SERIES
    # The ledger's gauges: the orders reached DCL and one of them is the oldest waiting there.
    assert value(after, "mienne_ops_orders", stage="dispatched") == ORDERS
    assert value(before, "mienne_ops_orders", stage="dispatched") == 0
    assert value(after, "mienne_ops_order_oldest_waiting_age_seconds", stage="dispatched") >= 0
    assert ("mienne_ops_order_oldest_waiting_age_seconds", frozenset({("stage", "dispatched")})) in after
    assert value(after, "mienne_ops_inbox_events", source="shopify") >= ORDERS
    # The process counters: API calls to every order-to-cash system, with their latency.
    for system in ("shopify", "netsuite", "dcl", "stateset"):
        grew = value(after, "mienne_ops_api_calls_total", system=system) - value(
            before, "mienne_ops_api_calls_total", system=system
        )
        assert grew > 0, system
        timed = value(after, "mienne_ops_api_request_duration_seconds_count", system=system) - value(
            before, "mienne_ops_api_request_duration_seconds_count", system=system
        )
        assert timed == grew, system
    assert value(after, "mienne_ops_api_cost_points_total", system="shopify") > value(
        before, "mienne_ops_api_cost_points_total", system="shopify"
    )
    # The receiver's counters: each order's webhooks arrived twice, stored once.
    delivered = value(after, "mienne_ops_webhook_deliveries_total", source="shopify") - value(
        before, "mienne_ops_webhook_deliveries_total", source="shopify"
    )
    duplicated = value(after, "mienne_ops_webhook_duplicates_total", source="shopify") - value(
        before, "mienne_ops_webhook_duplicates_total", source="shopify"
    )
    assert delivered >= 2 * ORDERS
    assert duplicated >= ORDERS
    assert delivered - duplicated == value(after, "mienne_ops_inbox_events", source="shopify") - value(
        before, "mienne_ops_inbox_events", source="shopify"
    )
