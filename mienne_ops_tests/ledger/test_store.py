"""The ledger's guarantees: once-only inbox, conflict-checked bindings, exception lifecycle."""

import threading

import pytest

from mienne_ops.ledger.store import EXCEPTION_OPEN, EXCEPTION_RESOLVED, EXCEPTION_RETRYING, BindingConflict
from mienne_ops_tests.support import new_ledger


@pytest.fixture
def ledger(tmp_path):
    store = new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield store
    store.dispose()


def test_inbox_stores_each_event_once(ledger):
    assert ledger.store_event("shopify", "evt-1", "orders/create", {"id": 1}, resource_id="1")
    assert not ledger.store_event("shopify", "evt-1", "orders/create", {"id": 1}, resource_id="1")
    assert ledger.store_event("shopify", "evt-2", "orders/paid", {"id": 1}, resource_id="1")
    events = ledger.events_after("shopify", 0)
    assert [e.event_id for e in events] == ["evt-1", "evt-2"]
    assert ledger.events_after("shopify", events[0].id)[0].topic == "orders/paid"


def test_binding_is_idempotent_and_rejects_a_second_remote_record(ledger):
    assert ledger.bind("order", "42", "netsuite", "1001") == "1001"
    assert ledger.bind("order", "42", "netsuite", "1001") == "1001"
    with pytest.raises(BindingConflict, match="already bound"):
        ledger.bind("order", "42", "netsuite", "1002")
    assert ledger.key_for("order", "netsuite", "1001") == "42"
    assert ledger.bindings_of("order", "netsuite", ["42", "43"]) == {"42": "1001"}


def test_concurrent_binders_agree_on_one_remote_id(ledger):
    outcomes: list[str] = []

    def bind(remote_id: str) -> None:
        try:
            outcomes.append(ledger.bind("order", "7", "dcl", remote_id))
        except BindingConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=bind, args=(f"SO{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winner = ledger.binding("order", "7", "dcl")
    assert outcomes.count(winner) == 1
    assert outcomes.count("conflict") == 7


def test_exception_lifecycle_counts_attempts_and_resolves(ledger):
    ledger.quarantine("A", "order", "9", "unknown_sku", "SKU MN-X is not in NetSuite")
    ledger.quarantine("A", "order", "9", "unknown_sku", "SKU MN-X is not in NetSuite")
    (row,) = ledger.exceptions(statuses=[EXCEPTION_OPEN])
    assert (row.reason, row.attempts) == ("unknown_sku", 2)
    ledger.set_exception_status(row.id, EXCEPTION_RETRYING)
    assert ledger.keys_with_exceptions("A", "order", [EXCEPTION_OPEN]) == set()
    assert ledger.resolve("A", "order", "9")
    assert ledger.exceptions()[0].status == EXCEPTION_RESOLVED
    assert not ledger.resolve("A", "order", "9")


def test_order_journey_by_id_or_name(ledger):
    ledger.record_order("5001", "#1001", "received", lines=[{"sku": "MN-SERUM-001", "quantity": 2}])
    ledger.record_order("5001", None, "in_netsuite")
    assert ledger.find_order("#1001")["stage"] == "in_netsuite"
    assert ledger.find_order("1001")["lines"] == [{"sku": "MN-SERUM-001", "quantity": 2}]
    assert ledger.order_stages(["5001", "5002"]) == {"5001": "in_netsuite"}


def test_bindings_of_many_keys_at_once(ledger):
    for index in range(0, 1200, 3):
        ledger.bind("shipment", f"S{index}", "shopify", f"F{index}")
    found = ledger.bindings_of("shipment", "shopify", [f"S{index}" for index in range(1200)])
    assert len(found) == 400 and found["S999"] == "F999" and "S1000" not in found
