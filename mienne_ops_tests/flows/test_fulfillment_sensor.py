"""Which retrying flow C orders the shipments sensor takes up again, and when (no clock is waited on:
the test passes its own `now`)."""

from datetime import UTC, datetime, timedelta

from mienne_ops.flows.fulfillment import retrying_orders_due
from mienne_ops.flows.sensor_kit import read_exceptions
from mienne_ops.sync.fulfillment import ENTITY, FLOW
from mienne_ops_tests.support import new_ledger


def test_shipments_waiting_on_a_held_fulfillment_order_are_rechecked_at_the_configured_pace(tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.quarantine(FLOW, ENTITY, "SO-1", "fulfillment_order_on_hold", "held", retrying=True)
    ledger.quarantine(FLOW, ENTITY, "SO-2", "fulfillment_order_scheduled", "scheduled", retrying=True)
    ledger.quarantine(FLOW, ENTITY, "SO-3", "shopify_THROTTLED", "throttled", retrying=True)
    ledger.quarantine(FLOW, ENTITY, "SO-4", "unexpected_item", "bad", retrying=False)
    ledger.quarantine("B", ENTITY, "SO-5", "dcl_timeout", "other flow", retrying=True)
    exceptions = read_exceptions(ledger, FLOW, ENTITY)
    just_now = datetime.now(UTC)
    five_minutes = timedelta(minutes=5)
    assert retrying_orders_due(exceptions, just_now, five_minutes) == {"SO-3"}  # others retry at once
    assert retrying_orders_due(exceptions, just_now + timedelta(minutes=6), five_minutes) == {
        "SO-1",
        "SO-2",
        "SO-3",
    }
    assert retrying_orders_due(exceptions, just_now, timedelta(0)) == {"SO-1", "SO-2", "SO-3"}
    ledger.dispose()
