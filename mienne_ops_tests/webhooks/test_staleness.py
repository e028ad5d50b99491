"""Stale webhook deliveries are told apart by ``X-Shopify-Triggered-At``, never by arrival order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mienne_ops.webhooks.staleness import newest_by_resource, parse_triggered_at, split_stale
from mienne_ops_tests.support import new_ledger


@dataclass(frozen=True)
class Event:
    name: str
    resource_id: str | None
    triggered_at: str | None


def test_triggered_at_is_read_in_any_iso_form():
    utc = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    assert parse_triggered_at("2026-06-15T12:00:00Z") == utc
    assert parse_triggered_at("2026-06-15T08:00:00-04:00") == utc
    assert parse_triggered_at("2026-06-15T12:00:00.000+00:00") == utc
    assert parse_triggered_at("yesterday") is None and parse_triggered_at(None) is None


def test_an_older_delivery_after_a_newer_one_is_stale():
    known = newest_by_resource([("1", "2026-06-15T12:05:00Z"), ("1", "2026-06-15T12:01:00Z")])
    events = [
        Event("retry of orders/paid", "1", "2026-06-15T12:00:00Z"),  # older than the known 12:05
        Event("orders/updated", "2", "2026-06-15T12:10:00Z"),
        Event("orders/updated again", "2", "2026-06-15T12:12:00Z"),
        Event("late retry", "2", "2026-06-15T12:11:00Z"),  # older than 12:12, stored after it
        Event("no stamp", "2", None),
        Event("no resource", None, "2026-06-15T11:00:00Z"),
    ]
    fresh, stale = split_stale(events, known)
    assert [e.name for e in stale] == ["retry of orders/paid", "late retry"]
    assert [e.name for e in fresh] == ["orders/updated", "orders/updated again", "no stamp", "no resource"]


def test_the_ledger_returns_the_stamps_already_held(tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.store_event(
        "shopify", "e1", "orders/paid", {"id": 1}, resource_id="1", triggered_at="2026-06-15T12:05:00Z"
    )
    ledger.store_event(
        "shopify", "e2", "orders/paid", {"id": 2}, resource_id="2", triggered_at="2026-06-15T12:00:00Z"
    )
    ledger.store_event(
        "shopify", "e3", "orders/paid", {"id": 1}, resource_id="1", triggered_at="2026-06-15T12:09:00Z"
    )
    stamps = ledger.event_stamps("shopify", ["1"], up_to_id=2)
    assert stamps == [("1", "2026-06-15T12:05:00Z")]
    assert newest_by_resource(ledger.event_stamps("shopify", ["1", "2"], up_to_id=3)) == {
        "1": datetime(2026, 6, 15, 12, 9, tzinfo=UTC),
        "2": datetime(2026, 6, 15, 12, 0, tzinfo=UTC),
    }
    ledger.dispose()
