"""DCL receipts and shipments parse once into typed models; what cannot be read says why."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mienne_ops.domain.dcl_records import (
    DclOrderLine,
    Package,
    Receipt,
    ReceiptLine,
    Shipment,
    ShippedItem,
    parse_dcl_order,
    parse_order_shipments,
    parse_receipt,
    parse_shipment,
)
from mienne_ops.domain.fulfillment import shipment_key
from mienne_ops.domain.inbound import receipt_key, received_at_dcl, unreadable_receipts

# `GET /po_receipts` as the sandbox answers by default (dcl.md §8.2, our design choice) ...
SANDBOX_RECEIPT = {
    "receipt_id": "R500001",
    "dcl_po_number": "9001",
    "reference_transaction_number": "PO77-1",
    "customer_po_number": "PO77",
    "receipt_date": "2026-06-12",
    "receipt_type": "PO",
    "location": "FR",
    "lines": [
        {"line_number": 1, "item_number": "MN-SERUM-001", "quantity_received": 5},
        {"line_number": 2, "item_number": "MN-CREAM-002", "quantity_received": "3", "lot_number": "L7"},
    ],
}
# ... and under the other names an account may use (the fake's ``alternate`` receipt shape).
ALTERNATE_RECEIPT = {
    "receipt_number": "R500001",
    "dcl_po_number": 9001,
    "receipt_date": "2026-06-12",
    "receipt_type": "PO",
    "location": "FR",
    "receipt_lines": [
        {"line_no": "1", "item": "MN-SERUM-001", "received_quantity": "5.0"},
        {"line_no": "2", "item": "MN-CREAM-002", "received_quantity": 3, "lot_number": "L7"},
    ],
}
# `GET /orders` shipments: the model page's shape and the older `shipped_lines` shape (dcl.md §5).
PER_SHIPMENT = {
    "ship_date": "2026-06-17T10:30:00",
    "shipping_carrier": "FEDEX",
    "shipping_service": "2DAY",
    "packages": [
        {
            "carton_id": "C0001234",
            "tracking_number": "7700001",
            "weight": 2.5,
            "shipped_items": [
                {"item_number": "MN-SERUM-001", "quantity": 2, "serial_numbers": ["SN1", "SN2"]}
            ],
        },
        {"carton_id": "C0001235", "tracking_number": "7700002", "weight": "1.25", "shipped_items": []},
    ],
}
SHIPPED_LINES = {
    "ship_date": "2026-06-17",
    "tracking_numbers": ["7700001", "7700002"],
    "shipped_lines": [{"line_number": 1, "item_number": "MN-SERUM-001", "quantity": "2"}],
}
DCL_ORDER = {"order_number": "SO1001", "shipping_carrier": "UPS", "shipping_service": "GROUND"}


def test_both_receipt_shapes_parse_to_the_same_model():
    sandbox, alternate = parse_receipt(SANDBOX_RECEIPT), parse_receipt(ALTERNATE_RECEIPT)
    expected_lines = [
        ReceiptLine(item_number="MN-SERUM-001", quantity_received=5, line_number=1),
        ReceiptLine(item_number="MN-CREAM-002", quantity_received=3, line_number=2, lot_number="L7"),
    ]
    assert sandbox.lines == alternate.lines == expected_lines
    assert (sandbox.receipt_id, sandbox.dcl_po_number, sandbox.receipt_date) == (
        "R500001",
        "9001",
        "2026-06-12",
    )
    assert alternate.dcl_po_number == "9001"  # DCL numbers are ids: text, whatever JSON type came
    assert sandbox.unreadable is None and sandbox.raw == SANDBOX_RECEIPT
    assert receipt_key(SANDBOX_RECEIPT) == receipt_key(ALTERNATE_RECEIPT) == receipt_key(sandbox) == "R500001"
    assert received_at_dcl([SANDBOX_RECEIPT, alternate]) == 16


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        ([{"item_number": "A", "quantity_received": "2.5"}], "'2.5' is not a whole number"),
        ([{"item_number": "A", "quantity_received": "lots"}], "'lots' is not a number"),
        ([{"item_number": "A"}], "quantity is missing"),
        ([{"quantity_received": 2}], "no item number"),
        (["A x2"], "line 1 is not an object"),
        ([], "no line list under any of lines, receipt_lines"),
    ],
)
def test_a_receipt_whose_lines_cannot_be_read_is_unreadable_with_the_reason_and_its_payload(lines, why):
    raw = {**SANDBOX_RECEIPT, "lines": lines}
    receipt = parse_receipt(raw)
    assert receipt.unreadable is not None and why in receipt.unreadable
    assert receipt.lines == [] and receipt.raw == raw
    assert unreadable_receipts([raw, SANDBOX_RECEIPT]) == [receipt]
    assert received_at_dcl([raw]) == 0  # a fractional quantity is never truncated into a count


def test_an_unreadable_receipt_without_an_id_is_keyed_by_its_payload():
    raw = {"dcl_po_number": "9001", "receipt_date": "2026-06-12", "rcpt_dtl": [{"sku_cd": "A"}]}
    key = receipt_key(raw)
    assert key.startswith("U") and key == receipt_key(parse_receipt(raw))


def test_both_shipment_shapes_parse_to_the_same_items_and_key():
    a = parse_shipment(PER_SHIPMENT, DCL_ORDER)
    (b,) = parse_order_shipments({**DCL_ORDER, "shipments": [SHIPPED_LINES]})
    assert a.unreadable is None and b.unreadable is None
    assert a.packages[0] == Package(
        carton_id="C0001234",
        tracking_number="7700001",
        weight=Decimal("2.5"),
        shipped_items=[ShippedItem(item_number="MN-SERUM-001", quantity=2, serial_numbers=["SN1", "SN2"])],
    )
    assert a.packages[1].weight == Decimal("1.25") and a.packages[1].shipped_items == []
    assert [p.tracking_number for p in b.packages] == ["7700001", "7700002"]
    assert b.packages[0].shipped_items == [ShippedItem(item_number="MN-SERUM-001", quantity=2, line_number=1)]
    # The shipment's own carrier when it has one, else the one requested on the order.
    assert (a.shipping_carrier, a.shipping_service) == ("FEDEX", "2DAY")
    assert (b.shipping_carrier, b.shipping_service) == ("UPS", "GROUND")
    assert shipment_key("SO1001", a) == shipment_key("SO1001", PER_SHIPMENT) == "SO1001-2026-06-17-C0001234"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"shipped_lines": [{"item_number": "A", "quantity": "2.5"}]}, "'2.5' is not a whole number"),
        ({"shipped_lines": [{"sku_cd": "A", "qty": 1}]}, "line 1 has no readable item number or quantity"),
        ({}, "no line list under any of shipped_lines, shipped_items, lines"),
    ],
)
def test_a_shipment_whose_items_cannot_be_read_is_unreadable_with_the_reason(change, why):
    raw = {"ship_date": "2026-06-15", "packages": [{"carton_id": "C1", "tracking_number": "1Z1"}], **change}
    shipment = parse_shipment(raw, DCL_ORDER)
    assert shipment.unreadable is not None and why in shipment.unreadable
    assert shipment.raw == raw
    assert all(p.shipped_items == [] for p in shipment.packages)


def test_a_package_weight_that_is_not_a_number_makes_the_shipment_unreadable():
    raw = {**PER_SHIPMENT, "packages": [{**PER_SHIPMENT["packages"][0], "weight": "2 lb"}]}
    assert parse_shipment(raw).unreadable == "package 1 weight '2 lb' is not a number"


@pytest.mark.parametrize("raw", [SANDBOX_RECEIPT, ALTERNATE_RECEIPT, {"dcl_po_number": "1", "odd": []}])
def test_a_receipt_parses_once(raw):
    receipt = parse_receipt(raw)
    assert isinstance(receipt, Receipt)
    assert parse_receipt(receipt) is receipt
    assert receipt.raw == raw  # the payload as DCL sent it, for the quarantine


@pytest.mark.parametrize("raw", [PER_SHIPMENT, SHIPPED_LINES, {"ship_date": "2026-06-15"}])
def test_a_shipment_parses_once(raw):
    shipment = parse_shipment(raw, DCL_ORDER)
    assert isinstance(shipment, Shipment)
    assert parse_shipment(shipment) is shipment
    assert shipment.raw == raw


# `GET /orders` (dcl.md §5), trimmed to what flow C reads: GET-variant lines, stage, shipments.
DCL_ORDER_FULL = {
    **DCL_ORDER,
    "location": "FR",
    "order_stage": 50,
    "lines": [
        {"line_number": 1, "item_number": "MN-SERUM-001", "description": "Serum", "quantity": 2},
        {"line_number": "2", "item_number": "MN-KIT-01", "quantity": "3.0", "is_back_order": False},
    ],
    "shipments": [PER_SHIPMENT],
}


def test_a_dcl_order_parses_once_with_its_lines_stage_and_shipments():
    order = parse_dcl_order(DCL_ORDER_FULL)
    assert (order.order_number, order.location, order.order_stage, order.unreadable) == (
        "SO1001",
        "FR",
        50,
        None,
    )
    assert order.lines == [
        DclOrderLine(line_number=1, item_number="MN-SERUM-001", quantity=2),
        DclOrderLine(line_number=2, item_number="MN-KIT-01", quantity=3),
    ]
    assert order.shipments == [parse_shipment(PER_SHIPMENT, DCL_ORDER)] and order.shipped
    assert parse_dcl_order(order) is order and parse_order_shipments(order) is order.shipments
    assert not parse_dcl_order({**DCL_ORDER, "order_stage": "40"}).shipped


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (
            {"lines": [{"line_number": 1, "item_number": "A", "quantity": "2.5"}]},
            "'2.5' is not a whole number",
        ),
        ({"lines": [{"item_number": "A", "quantity": 1}]}, "line 1: line number or quantity is missing"),
        ({"lines": [{"line_number": 1, "quantity": 1}]}, "line 1 has no line number or item number"),
        ({"order_stage": "shipped"}, "order_stage 'shipped' is not a number"),
    ],
)
def test_a_dcl_order_whose_lines_or_stage_cannot_be_read_is_unreadable_with_the_reason(change, why):
    order = parse_dcl_order({**DCL_ORDER_FULL, **change})
    assert order.unreadable is not None and why in order.unreadable
    assert order.lines == [] and order.raw == {**DCL_ORDER_FULL, **change}
