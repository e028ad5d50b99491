"""Alert incidents in the ledger: opened once, re-opened after they cleared, each message due once
per destination; and the reads the stuck-order check makes, leg by leg."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mienne_ops.domain.alerts import AlertKind, Incident, StuckLeg
from mienne_ops.domain.holds import HoldDecision, HoldReason
from mienne_ops.domain.journey import Stage
from mienne_ops.domain.returns import ReturnLine
from mienne_ops.ledger.alerts import AlertIncidents, Notice, new_exceptions, waiting_orders
from mienne_ops_tests.support import new_ledger

SPIKE = Incident(
    key="exception_spike:A:unknown_sku", kind=AlertKind.EXCEPTION_SPIKE, title="3 new", facts={"n": "3"}
)


@pytest.fixture
def ledger(tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield ledger
    ledger.dispose()


def test_an_incident_opens_once_and_reopens_after_it_was_resolved(ledger):
    book = AlertIncidents(ledger.engine)
    assert book.open(SPIKE) is True
    assert book.open(SPIKE) is False  # still open: a second tick opens nothing
    assert book.open_keys() == {SPIKE.key}
    assert book.resolve(SPIKE.key) is True
    assert book.resolve(SPIKE.key) is False
    assert book.open_keys() == set()
    assert book.open(SPIKE) is True  # it happens again: a new occurrence, announced again
    (row,) = book.incidents()
    assert row.occurrences == 2 and row.sent == {} and row.incident == SPIKE


def test_each_destination_gets_the_alert_once_and_the_resolution_once(ledger):
    book = AlertIncidents(ledger.engine)
    book.open(SPIKE)
    assert [(d, n) for _, d, n in book.unsent(["slack", "email"])] == [
        ("slack", Notice.OPENED),
        ("email", Notice.OPENED),
    ]
    book.mark_sent(SPIKE.key, "slack", Notice.OPENED)
    assert [(d, n) for _, d, n in book.unsent(["slack", "email"])] == [("email", Notice.OPENED)]
    book.resolve(SPIKE.key)
    # email never had the alert (its delivery kept failing): it is not told of the resolution either
    assert [(d, n) for _, d, n in book.unsent(["slack", "email"])] == [("slack", Notice.RESOLVED)]
    book.mark_sent(SPIKE.key, "slack", Notice.RESOLVED)
    assert book.unsent(["slack", "email"]) == []


def _ago(ledger, table, column, where, minutes: int) -> None:
    """Move a row's timestamp into the past (tests never wait for the clock)."""
    moment = datetime.now(UTC) - timedelta(minutes=minutes)
    with ledger.engine.begin() as conn:
        conn.execute(table.update().where(where).values({column: moment}))


def test_the_stuck_order_reads_use_each_legs_own_timestamps(ledger):
    from mienne_ops.ledger import schema

    journeys, shipments = schema.order_journeys, schema.shipments
    for order in ("1", "2", "3", "4"):
        ledger.record_order(order, f"#100{order}", Stage.IN_NETSUITE)
    _ago(ledger, journeys, "created_at", journeys.c.shopify_order_id.in_(["1", "3", "4"]), 300)
    ledger.record_dispatch("so-3", "DCL-3", shopify_order_id="3")  # at DCL: not waiting
    ledger.place_hold("4", HoldDecision(reason=HoldReason.FRAUD_RISK, detail="review"), "test")  # on purpose
    ledger.bind_item_fulfillment("DCL-3:1", "DCL-3", "if-1")
    _ago(ledger, shipments, "created_at", shipments.c.shipment_key == "DCL-3:1", 300)
    ret, _ = ledger.record_return(
        "k", request_id=1, shopify_order_id="9", order_name="#1009",
        lines=[ReturnLine(sku="S", quantity=1, unit_price=Decimal("1"))],
        currency="USD", value=Decimal("1"), country="US",
    )  # fmt: skip
    ledger.update_return(ret.id, received_at=datetime.now(UTC) - timedelta(hours=30))

    cutoff = datetime.now(UTC) - timedelta(minutes=60)
    found = waiting_orders(ledger.engine, {leg: cutoff for leg in StuckLeg})
    assert sorted((w.leg, w.order) for w in found) == [
        (StuckLeg.PAID_TO_DCL, "#1001"),  # old, not at DCL; #1002 is recent, #1003 at DCL, #1004 held
        (StuckLeg.RECEIVED_TO_REFUNDED, "#1009"),
        (StuckLeg.SHIPPED_TO_TRACKING, "#1003"),
    ]
    ledger.record_on_shopify("DCL-3:1", "DCL-3", "gid://shopify/Fulfillment/1")
    ledger.update_return(ret.id, refunded_at=datetime.now(UTC))
    assert [(w.leg, w.order) for w in waiting_orders(ledger.engine, {leg: cutoff for leg in StuckLeg})] == [
        (StuckLeg.PAID_TO_DCL, "#1001")
    ]


def test_new_exceptions_are_the_unresolved_ones_first_seen_since(ledger):
    ledger.quarantine("A", "order", "1", "unknown_sku", "m")
    ledger.quarantine("A", "order", "2", "unknown_sku", "m")
    ledger.resolve("A", "order", "2")
    since = datetime.now(UTC) - timedelta(minutes=5)
    assert [(e.flow, e.key) for e in new_exceptions(ledger.engine, since)] == [("A", "1")]
    assert new_exceptions(ledger.engine, datetime.now(UTC) + timedelta(minutes=1)) == []


def test_a_resolution_undeliverable_for_days_is_dropped_and_old_incidents_are_not_reread(ledger):
    from mienne_ops.ledger import schema

    book = AlertIncidents(ledger.engine)
    book.open(SPIKE)
    book.mark_sent(SPIKE.key, "slack", Notice.OPENED)
    book.resolve(SPIKE.key)
    assert [n for _, _, n in book.unsent(["slack"])] == [Notice.RESOLVED]
    table = schema.alert_incidents
    _ago(ledger, table, "resolved_at", table.c.incident_key == SPIKE.key, 3 * 24 * 60)
    assert book.unsent(["slack"]) == []
