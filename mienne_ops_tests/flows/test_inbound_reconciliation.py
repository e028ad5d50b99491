"""The inbound reconciliation rows: stuck receipts (DCL Pacific day), unannounced and edited orders."""

from datetime import UTC, datetime, timedelta

from mienne_ops.domain.inbound import InboundOrder
from mienne_ops.flows.inbound import reconcile


def _order(order_id: str, received: str = "0") -> InboundOrder:
    return InboundOrder.from_suiteql(
        {"id": order_id, "type": "PurchOrd", "tranid": f"PO{order_id}", "status": "B", "location": "1"},
        [{"line": "1", "sku": "A", "qty": "10", "qty_received": received, "itemtype": "InvtPart"}],
    )


def test_receipt_not_posted_is_stuck_only_after_the_threshold():
    receipt = {
        "receipt_id": "R1",
        "dcl_po_number": 7,
        "receipt_date": "2026-05-01",
        "lines": [{"line_number": 1, "item_number": "A", "quantity_received": 4}],
    }
    args = ([_order("1")], {"1": 10}, {"1": "7"}, {"7": [receipt]}, {}, set())
    late = datetime(2026, 5, 2, 12, tzinfo=UTC)  # more than 4 h after the start of May 1 in Pacific
    early = datetime(2026, 5, 1, 8, tzinfo=UTC)  # 1 a.m. Pacific
    assert "not in NetSuite" in reconcile(*args, late, timedelta(hours=4))[0]["problems"]
    assert reconcile(*args, early, timedelta(hours=4))[0]["problems"] == ""
    posted = reconcile(*args[:5], {"7-R1"}, late, timedelta(hours=4))[0]
    assert posted["received_dcl"] == 4 and "DCL received more" in posted["problems"]


def test_unannounced_and_edited_orders_are_flagged():
    rows = reconcile(
        [_order("1"), _order("2")],
        {"1": 8, "2": None},
        {"1": "7"},
        {},
        {},
        set(),
        datetime.now(UTC),
        timedelta(hours=4),
    )
    assert rows[0]["problems"] == "announced differs from ordered"
    assert rows[1]["problems"] == "not announced"
