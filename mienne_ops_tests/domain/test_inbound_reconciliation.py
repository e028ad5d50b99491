"""The inbound reconciliation rows: stuck receipts (DCL Pacific day), unannounced and edited orders."""

from datetime import UTC, datetime, timedelta

from mienne_ops.domain.inbound import InboundOrder
from mienne_ops.domain.inbound_reconciliation import (
    COLUMNS,
    InboundProblem,
    excess_by_po,
    reconcile,
    with_problems,
)
from mienne_ops.domain.reports import table_records


def _order(order_id: str, received: str = "0") -> InboundOrder:
    return InboundOrder.from_suiteql(
        {"id": order_id, "type": "PurchOrd", "tranid": f"PO{order_id}", "status": "B", "location": "1"},
        [{"line": "1", "sku": "A", "qty": "10", "qty_received": received, "itemtype": "InvtPart"}],
    )


RECEIPT = {
    "receipt_id": "R1",
    "dcl_po_number": 7,
    "receipt_date": "2026-05-01",
    "lines": [{"line_number": 1, "item_number": "A", "quantity_received": 4}],
}


def test_receipt_not_posted_is_stuck_only_after_the_threshold():
    args = ([_order("1")], {"1": 10}, {"1": "7"}, {"7": [RECEIPT]}, {}, set())
    late = datetime(2026, 5, 2, 12, tzinfo=UTC)  # more than 4 h after the start of May 1 in Pacific
    early = datetime(2026, 5, 1, 8, tzinfo=UTC)  # 1 a.m. Pacific
    stuck = reconcile(*args, late, timedelta(hours=4)).iloc[0]
    assert "not in NetSuite" in stuck["problems"]
    assert stuck[InboundProblem.RECEIVED_NOT_POSTED] and stuck["unposted_receipts"] == 1
    assert reconcile(*args, early, timedelta(hours=4)).iloc[0]["problems"] == ""
    posted = reconcile(*args[:5], {"7-R1"}, late, timedelta(hours=4)).iloc[0]
    assert posted["received_dcl"] == 4 and "DCL received more" in posted["problems"]
    assert posted[InboundProblem.DCL_RECEIVED_MORE] and not posted[InboundProblem.RECEIVED_NOT_POSTED]
    # Excess already reported as an exception is not counted again.
    excess = excess_by_po([{"dcl_po_number": 7, "excess": [{"quantity": "4"}]}, None])
    assert reconcile(*args[:4], excess, {"7-R1"}, late, timedelta(hours=4)).iloc[0]["problems"] == ""


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
    assert rows.iloc[0]["problems"] == "announced differs from ordered"
    assert rows.iloc[1]["problems"] == "not announced"
    assert list(with_problems(rows, [InboundProblem.NOT_ANNOUNCED])["netsuite_id"]) == ["2"]
    assert list(with_problems(rows, [InboundProblem.ANNOUNCED_DIFFERS])["netsuite_id"]) == ["1"]
    assert with_problems(rows, [InboundProblem.RECEIVED_NOT_POSTED]).empty


def test_the_operators_table_shows_plain_values_with_blanks_for_unknowns():
    rows = reconcile(
        [_order("1"), _order("2", received="3")],
        {"1": 10, "2": None},
        {"1": "7"},
        {"7": [RECEIPT]},
        {},
        set(),
        datetime(2026, 5, 1, 8, tzinfo=UTC),
        timedelta(hours=4),
    )
    records = table_records(rows[COLUMNS])
    assert records == [
        {
            "order": "purchaseOrder PO1",
            "netsuite_id": "1",
            "dcl_po_number": "7",
            "ordered": 10,
            "announced": 10,
            "received_dcl": 4,
            "received_netsuite": 0,
            "unposted_receipts": 1,
            "problems": "",
        },
        {
            "order": "purchaseOrder PO2",
            "netsuite_id": "2",
            "dcl_po_number": "",
            "ordered": 10,
            "announced": "",
            "received_dcl": 0,
            "received_netsuite": 3,
            "unposted_receipts": 0,
            "problems": "not announced",
        },
    ]
    assert all(type(v) in (str, int) for record in records for v in record.values())


def test_no_open_order_is_an_empty_table():
    rows = reconcile([], {}, {}, {"7": [RECEIPT]}, {}, set(), datetime.now(UTC), timedelta(hours=4))
    assert rows.empty and list(rows.columns) == [*COLUMNS, *InboundProblem]
    assert with_problems(rows).empty
