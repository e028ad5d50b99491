"""Scrape-time gauges: the ledger's numbers from a constructed ledger, and the sensors' tick ages."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest

from mienne_ops.domain.journey import Flow, Stage
from mienne_ops.ledger import schema
from mienne_ops.ledger.gauges import read_gauges
from mienne_ops.observability.catalog import EXPOSED_SERIES
from mienne_ops.observability.collectors import LedgerCollector, sensor_ages
from mienne_ops_tests.observability.scrape import names, parse, value
from mienne_ops_tests.support import new_ledger

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_ledger_gauges_count_stages_exceptions_and_age_the_oldest_waiting_order(tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    for n in range(3):
        ledger.record_order(f"10{n}", f"#{n}", None)
    ledger.bind_sales_order("100", "500")
    ledger.record_dispatch("500", "SO500", shopify_order_id="100")
    ledger.quarantine(Flow.ORDERS, "order", "101", "unknown_sku", "no such SKU")
    ledger.quarantine(Flow.ORDERS, "order", "102", "unknown_sku", "no such SKU")
    ledger.quarantine(Flow.DISPATCH, "sales_order", "501", "dcl_rejected", "bad address")
    ledger.resolve(Flow.DISPATCH, "sales_order", "501")
    journeys = schema.order_journeys
    with ledger.engine.begin() as conn:  # the oldest received order came in two hours before NOW
        conn.execute(
            sa.update(journeys)
            .where(journeys.c.shopify_order_id == "101")
            .values(created_at=NOW - timedelta(hours=2))
        )
        conn.execute(
            sa.update(journeys)
            .where(journeys.c.shopify_order_id == "100")
            .values(dispatched_at=NOW - timedelta(minutes=5))
        )
    registry = CollectorRegistry()
    registry.register(LedgerCollector(ledger, clock=lambda: NOW))
    samples = parse(generate_latest(registry).decode())
    ledger.dispose()

    assert names(samples) <= EXPOSED_SERIES
    assert value(samples, "mienne_ops_orders", stage=str(Stage.RECEIVED)) == 2
    assert value(samples, "mienne_ops_orders", stage=str(Stage.DISPATCHED)) == 1
    assert value(samples, "mienne_ops_exceptions_open", flow="A", reason="unknown_sku") == 2
    assert value(samples, "mienne_ops_exceptions_open", flow="B") == 0  # resolved ones are not open
    assert value(samples, "mienne_ops_order_oldest_waiting_age_seconds", stage="received") == 7200
    assert value(samples, "mienne_ops_order_oldest_waiting_age_seconds", stage="dispatched") == 300


def test_an_empty_ledger_reports_zeros_for_known_stages_and_no_ages(tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    gauges = read_gauges(ledger.engine)
    ledger.dispose()
    assert set(gauges.orders) == {str(stage) for stage in Stage} and not any(gauges.orders.values())
    assert gauges.returns_pending == {"opening": 0, "awaiting_parcel": 0, "in_transit": 0, "received": 0}
    assert gauges.waiting_since == {}
    assert gauges.refunds_pending == {"request": 0, "return": 0}


def test_sensor_ages_come_from_each_sensors_last_tick():
    def state(name, last):
        return SimpleNamespace(
            instigator_name=name, instigator_data=SimpleNamespace(last_tick_timestamp=last)
        )

    never = SimpleNamespace(instigator_name="new_sensor", instigator_data=None)
    ages = sensor_ages(
        [state("shopify_orders_sensor", 970.0), state("dcl_shipments_sensor", 400.0), never], 1000
    )
    assert ages == {"shopify_orders_sensor": 30.0, "dcl_shipments_sensor": 600.0}
