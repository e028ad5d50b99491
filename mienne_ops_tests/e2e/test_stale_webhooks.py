"""A stale webhook retry (older ``X-Shopify-Triggered-At`` than the order's newest event) starts no work.

Shopify retries with the original payload for hours and does not order deliveries (shopify.md §7.4).
The orders sensor decides by the trigger time: an event older than what the inbox already holds for
that order is ignored, a newer one is acted on.
"""

import pytest

pytestmark = pytest.mark.e2e

SENSOR = "shopify_orders_sensor"
ORDER = "424242"  # not in the Shopify fake: each run the sensor asks for quarantines it (not found)


def test_stale_retry_is_ignored_and_a_newer_event_is_not(stack):
    driver, ledger = stack["driver"], stack["ledger"]

    def deliver(event_id: str, topic: str, triggered_at: str) -> None:
        assert ledger.store_event(
            "shopify", event_id, topic, {"id": int(ORDER)}, resource_id=ORDER, triggered_at=triggered_at
        )

    deliver("evt-updated", "orders/updated", "2026-06-15T12:05:00Z")
    assert driver.tick(SENSOR) == 1
    (problem,) = ledger.exceptions(statuses=["open"], key=ORDER)
    deliver("evt-paid-retry", "orders/paid", "2026-06-15T12:00:00Z")  # fired before orders/updated
    assert driver.tick(SENSOR) == 0
    assert ledger.exceptions(statuses=["open"], key=ORDER)[0].attempts == problem.attempts
    deliver("evt-updated-2", "orders/updated", "2026-06-15T12:30:00Z")  # newer: acted on
    assert driver.tick(SENSOR) == 1
