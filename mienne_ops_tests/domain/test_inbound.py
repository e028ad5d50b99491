"""Flow D transforms: PO / TO -> DCL PO notification, DCL receipt -> NetSuite item receipt."""

import pytest

from mienne_ops.domain.inbound import (
    OVER_RECEIPT,
    UNKNOWN_ITEM,
    InboundOrder,
    item_receipt_external_id,
    notification_digest,
    plan_item_receipt,
    plan_po_notification,
    receipt_key,
    reference_transaction_number,
)
from mienne_ops.errors import InvalidRecordError

WAREHOUSES = {1: "FR", 2: "LA"}


def _po(status="B", lines=None, **header) -> InboundOrder:
    row = {
        "id": "5001",
        "type": "PurchOrd",
        "tranid": "PO1001",
        "status": status,
        "location": "1",
        "trandate": "2026-05-01",
        "duedate": "2026-05-10",
        "entity": "77",
        "custbody_sent_to_3pl": "F",
        **header,
    }
    lines = lines or [
        {"line": "1", "sku": "SERUM-001", "qty": "10", "qty_received": "0", "isclosed": "F"},
        {"line": "2", "sku": "CREAM-002", "qty": "5", "qty_received": "0", "isclosed": "F"},
    ]
    return InboundOrder.from_suiteql(row, [{"itemtype": "InvtPart", **line} for line in lines])


def test_po_becomes_notification_with_line_numbers_vendor_and_dates():
    notification = plan_po_notification(_po(), WAREHOUSES)
    assert notification == {
        "location": "FR",
        "reference_order_number": "PO1001",
        "order_date": "2026-05-01",
        "expected_delivery_date": "2026-05-10",
        "supplier_reference": "VENDOR-77",
        "lines": [
            {"line_number": 1, "item_number": "SERUM-001", "quantity": 10},
            {"line_number": 2, "item_number": "CREAM-002", "quantity": 5},
        ],
    }
    assert reference_transaction_number(_po(), 1) == "PO1001-1"
    assert reference_transaction_number(_po(), 12) == "PO1001-12"


def test_transfer_order_is_announced_at_its_destination_with_its_source():
    order = InboundOrder.from_suiteql(
        {
            "id": "6001",
            "type": "TrnfrOrd",
            "tranid": "TO1001",
            "status": "F",
            "location": "2",
            "transferlocation": "1",
            "trandate": "2026-05-01",
        },
        [{"line": "1", "sku": "SERUM-001", "qty": "4", "itemtype": "InvtPart"}],
    )
    notification = plan_po_notification(order, WAREHOUSES)
    assert notification["location"] == "FR"
    assert notification["supplier_reference"] == "TO-FROM-LA"
    assert notification["expected_delivery_date"] == "2026-05-01"  # no due date: the order date
    assert order.record_type == "transferOrder" and order.pending_receipt


def test_digest_changes_with_lines_not_with_receipts_or_reference():
    base = notification_digest(plan_po_notification(_po(), WAREHOUSES))
    partly = _po(
        status="D",
        lines=[
            {"line": "1", "sku": "SERUM-001", "qty": "10", "qty_received": "4"},
            {"line": "2", "sku": "CREAM-002", "qty": "5", "qty_received": "0"},
        ],
    )
    assert notification_digest(plan_po_notification(partly, WAREHOUSES)) == base
    with_ref = {**plan_po_notification(_po(), WAREHOUSES), "reference_transaction_number": "PO1001-3"}
    assert notification_digest(with_ref) == base
    edited = _po(
        lines=[
            {"line": "1", "sku": "SERUM-001", "qty": "12"},
            {"line": "2", "sku": "CREAM-002", "qty": "5"},
            {"line": "3", "sku": "MASK-003", "qty": "1"},
        ]
    )
    assert notification_digest(plan_po_notification(edited, WAREHOUSES)) != base


def test_closed_lines_are_not_announced_and_closed_orders_are_not_pending():
    order = _po(
        lines=[
            {"line": "1", "sku": "SERUM-001", "qty": "10", "isclosed": "T"},
            {"line": "2", "sku": "CREAM-002", "qty": "5"},
        ]
    )
    assert [line["line_number"] for line in plan_po_notification(order, WAREHOUSES)["lines"]] == [2]
    assert not _po(status="H").pending_receipt
    assert not _po(status="C").pending_receipt
    assert not _po(status="A").pending_receipt


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"location": "9"}, "not_a_dcl_location"),
        ({"tranid": "P" * 30}, "invalid_reference"),
        ({"trandate": None, "duedate": None}, "missing_date"),
    ],
)
def test_unannounceable_orders_name_their_reason(header, reason):
    with pytest.raises(InvalidRecordError) as error:
        plan_po_notification(_po(**header), WAREHOUSES)
    assert error.value.reason == reason


def _receipt(lines, receipt_id="R500001"):
    return {
        "receipt_id": receipt_id,
        "dcl_po_number": 182000,
        "receipt_date": "2026-05-09",
        "location": "FR",
        "lines": lines,
    }


def test_partial_receipt_posts_received_lines_and_skips_the_others():
    receipt = _receipt([{"line_number": 1, "item_number": "SERUM-001", "quantity_received": 6}])
    external_id = item_receipt_external_id(182000, receipt_key(receipt))
    assert external_id == "dcl-receipt-182000-R500001"
    plan = plan_item_receipt(receipt, _po(), 1, external_id)
    assert plan.excess == []
    assert plan.posted == {1: 6}
    assert plan.body is not None
    assert plan.body["externalId"] == external_id
    assert plan.body["tranDate"] == "2026-05-09"
    assert plan.body["item"]["items"] == [
        {"orderLine": 1, "itemReceive": True, "quantity": 6, "location": {"id": "1"}},
        {"orderLine": 2, "itemReceive": False},
    ]


def test_over_receipt_and_unknown_item_are_reported_while_known_quantities_post():
    order = _po(
        status="D",
        lines=[
            {"line": "1", "sku": "SERUM-001", "qty": "10", "qty_received": "6"},
            {"line": "2", "sku": "CREAM-002", "qty": "5", "qty_received": "0"},
        ],
    )
    receipt = _receipt(
        [
            {"line_number": 1, "item_number": "SERUM-001", "quantity_received": 7},
            {"line_number": 2, "item_number": "CREAM-002", "quantity_received": 5},
            {"item_number": "OIL-009", "quantity_received": 2},
        ]
    )
    plan = plan_item_receipt(receipt, order, 1, "x")
    assert plan.posted == {1: 4, 2: 5}
    assert {(e.reason, e.item_number, e.quantity) for e in plan.excess} == {
        (OVER_RECEIPT, "SERUM-001", 3),
        (UNKNOWN_ITEM, "OIL-009", 2),
    }
    assert plan.reason == "over_receipt+unknown_item"
    assert "SERUM-001" in plan.describe_excess()


def test_receipt_line_without_line_number_is_matched_by_sku():
    receipt = _receipt([{"item_number": "CREAM-002", "quantity_received": 2}])
    plan = plan_item_receipt(receipt, _po(), 2, "x")
    assert plan.posted == {2: 2}


def test_nothing_postable_gives_no_body():
    order = _po(
        status="F",
        lines=[{"line": "1", "sku": "SERUM-001", "qty": "10", "qty_received": "10"}],
    )
    plan = plan_item_receipt(
        _receipt([{"line_number": 1, "item_number": "SERUM-001", "quantity_received": 1}]), order, 1, "x"
    )
    assert plan.body is None and plan.excess[0].reason == OVER_RECEIPT
    assert order.fully_received and not order.pending_receipt


def test_receipt_key_without_receipt_id_is_a_stable_fingerprint():
    receipt = _receipt([{"line_number": 1, "item_number": "SERUM-001", "quantity_received": 1}], None)
    assert receipt_key(receipt) == receipt_key(dict(receipt))
    assert receipt_key(receipt).startswith("H")


@pytest.mark.parametrize(
    ("column", "value", "why"),
    [
        ("qty", "2.5", "line 1 quantity '2.5' is not a whole number"),
        ("qty_received", "1.25", "line 1 received '1.25' is not a whole number"),
        ("qty", "n/a", "line 1 quantity 'n/a' is not a number"),
    ],
)
def test_a_fractional_or_unreadable_line_quantity_is_refused_with_its_reason(column, value, why):
    line = {"line": "1", "sku": "SERUM-001", "qty": "10", "qty_received": "0", "isclosed": "F", column: value}
    with pytest.raises(InvalidRecordError) as raised:
        _po(lines=[line])
    assert raised.value.reason == "invalid_quantity"
    assert raised.value.detail == f"PurchOrd 5001: {why}"


def test_signed_and_decimal_suiteql_quantities_read_as_whole_units():
    # transactionline.quantity is signed (a transfer order's lines) and decimal-formatted; a NULL
    # quantity received is left out of the row.
    order = _po(lines=[{"line": "1", "sku": "SERUM-001", "qty": "-4.0", "isclosed": "F"}])
    (line,) = order.lines
    assert (line.quantity, line.received, line.open_quantity) == (4, 0, 4)
