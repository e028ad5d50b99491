"""The ledger's guarantees: once-only inbox, conflict-checked bindings, exception lifecycle."""

import threading

import pytest

from mienne_ops.domain.journey import Entity, Stage, System
from mienne_ops.ledger.store import BindingConflict, ExceptionStatus
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
    assert ledger.bind(Entity.CUSTOMER, "shopify-customer-42", System.NETSUITE, "1001") == "1001"
    assert ledger.bind(Entity.CUSTOMER, "shopify-customer-42", System.NETSUITE, "1001") == "1001"
    with pytest.raises(BindingConflict, match="already bound"):
        ledger.bind(Entity.CUSTOMER, "shopify-customer-42", System.NETSUITE, "1002")
    assert ledger.remote_id(Entity.CUSTOMER, "shopify-customer-42", System.NETSUITE) == "1001"
    assert ledger.remote_id(Entity.CUSTOMER, "shopify-customer-43", System.NETSUITE) is None


def test_a_journey_binds_each_remote_record_once_and_is_found_by_any_of_them(ledger):
    ledger.record_order("42", "#1042", Stage.RECEIVED, lines=[{"sku": "A", "quantity": 1}])
    assert ledger.bind_sales_order("42", "1001") == "1001"
    assert ledger.bind_sales_order("42", "1001", tranid="SO1001") == "1001"
    with pytest.raises(BindingConflict, match="already bound"):
        ledger.bind_sales_order("42", "1002")
    ledger.record_order("43", "#1043", Stage.RECEIVED)
    with pytest.raises(BindingConflict, match="another record"):
        ledger.bind_sales_order("43", "1001")  # one sales order, one journey: the database refuses
    journey = ledger.record_dispatch("1001", "SO1001", shopify_order_id="42")
    assert (journey.stage, journey.dcl_order_number, journey.netsuite_tranid) == (
        Stage.DISPATCHED,
        "SO1001",
        "SO1001",
    )
    assert ledger.journey_by_dcl_order("SO1001").shopify_order_id == "42"
    assert ledger.journey_by_sales_order("1001").name == "#1042"
    assert ledger.find_journey("SO1001").id == ledger.find_journey("#1042").id == journey.id
    assert set(ledger.journeys(["42", "43", "44"])) == {"42", "43"}


def test_a_sales_order_not_from_shopify_gets_a_journey_of_its_own_when_dispatched(ledger):
    journey = ledger.record_dispatch("2001", "SO2001", tranid="SO2001")
    assert journey.shopify_order_id is None and journey.name == "SO2001"
    assert ledger.record_dispatch("2001", "SO2001").id == journey.id  # a re-run writes nothing new
    ledger.bind_cash_sale(journey.id, "9001")
    ledger.mark_shipments_complete(journey.id, 2)
    ledger.mark_shipments_complete(journey.id, 1)  # never backwards
    done = ledger.journey_by_dcl_order("SO2001")
    assert done.cash_sale_id == "9001" and done.complete_for(2) and not done.complete_for(3)


def test_concurrent_binders_agree_on_one_remote_id(ledger):
    ledger.record_order("7", "#1007", Stage.RECEIVED)
    outcomes: list[str] = []

    def bind(remote_id: str) -> None:
        try:
            outcomes.append(ledger.bind_sales_order("7", remote_id))
        except BindingConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=bind, args=(f"SO{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winner = ledger.journey("7").netsuite_sales_order_id
    assert outcomes.count(winner) == 1
    assert outcomes.count("conflict") == 7


def test_exception_lifecycle_counts_attempts_and_resolves(ledger):
    ledger.quarantine("A", "order", "9", "unknown_sku", "SKU MN-X is not in NetSuite")
    ledger.quarantine("A", "order", "9", "unknown_sku", "SKU MN-X is not in NetSuite")
    (row,) = ledger.exceptions(statuses=[ExceptionStatus.OPEN])
    assert (row.reason, row.attempts) == ("unknown_sku", 2)
    ledger.set_exception_status(row.id, ExceptionStatus.RETRYING)
    assert ledger.keys_with_exceptions("A", "order", [ExceptionStatus.OPEN]) == set()
    assert ledger.resolve("A", "order", "9")
    assert ledger.exceptions()[0].status == ExceptionStatus.RESOLVED
    assert not ledger.resolve("A", "order", "9")


def test_order_journey_by_id_or_name(ledger):
    ledger.record_order("5001", "#1001", Stage.RECEIVED, lines=[{"sku": "MN-SERUM-001", "quantity": 2}])
    ledger.record_order("5001", None, Stage.IN_NETSUITE)
    assert ledger.find_journey("#1001").stage == Stage.IN_NETSUITE
    assert ledger.find_journey("1001").lines == [{"sku": "MN-SERUM-001", "quantity": 2}]
    assert {k: j.stage for k, j in ledger.journeys(["5001", "5002"]).items()} == {"5001": "in_netsuite"}


def test_shipments_settled_on_shopify_for_many_keys_at_once(ledger):
    for index in range(0, 1200, 3):
        ledger.record_on_shopify(f"S{index}", "SO1", f"F{index}")
    ledger.bind_item_fulfillment("S1", "SO1", "IF1")  # in NetSuite, not yet on Shopify
    settled = ledger.shipments_on_shopify([f"S{index}" for index in range(1200)])
    assert len(settled) == 400 and "S999" in settled and "S1" not in settled and "S1000" not in settled
    ledger.record_on_shopify("S1", "SO1", None)  # nothing left to fulfil: settled, no fulfillment id
    assert ledger.shipment("S1").on_shopify and ledger.shipment("S1").shopify_fulfillment_id is None
    assert ledger.shipment("S999").shopify_fulfillment_id == "F999"


def test_shipments_of_many_orders_are_read_together_as_each_order_reads_alone(ledger):
    for order in range(600):  # more than one chunk of 500
        for shipment in range(order % 3):
            ledger.bind_item_fulfillment(f"DCL{order}-{shipment}", f"DCL{order}", f"IF{order}-{shipment}")
    numbers = [f"DCL{order}" for order in range(600)] + ["DCL-unknown"]
    together = ledger.shipments_of_orders(numbers)
    assert together == {number: ledger.shipments_of(number) for number in numbers}
    assert [s.shipment_key for s in together["DCL5"]] == ["DCL5-0", "DCL5-1"] and together[
        "DCL-unknown"
    ] == []
