"""SuiteQL rows of flows B, C and D parse once into models; a row that does not fit says why."""

from __future__ import annotations

import pytest

from mienne_ops.domain.dispatch import DispatchConfig, plan_dcl_order
from mienne_ops.domain.inbound import InboundOrder
from mienne_ops.domain.suiteql_rows import (
    InboundOrderHeader,
    InboundOrderLine,
    PendingSalesOrder,
    SalesOrderLine,
    UnreadableRow,
    parse_row,
    parse_rows,
)
from mienne_ops.errors import InvalidRecordError

# Rows as SuiteQL answers them: lower-case keys, every value a string, NULL columns left out, an
# empty `links` array on each (netsuite.md §10.1).
PENDING = {
    "links": [],
    "id": "4321",
    "tranid": "SO1001",
    "externalid": "shopify-order-7",
    "trandate": "2026-03-02",
}
SO_LINES = [
    {"links": [], "transaction": "4321", "line": "1", "sku": "MN-SERUM-001", "itemtype": "InvtPart",
     "qty": "2", "qty_shipped": "0", "isclosed": "F", "shopify_line_id": "11", "dcl_qty": "2"},
    # A kit line: its member lines are not selected (kitmemberof IS NULL); quantities as decimals.
    {"links": [], "transaction": "4321", "line": "2", "sku": "MN-KIT-01", "itemtype": "Kit",
     "qty": "3.0", "qty_shipped": "1.0", "isclosed": "F", "shopify_line_id": "12"},
    # Fulfilled elsewhere (custcol_dcl_quantity 0), nothing shipped yet: quantityshiprecv omitted.
    {"links": [], "transaction": "4321", "line": "3", "sku": "MN-GIFT-CARD", "itemtype": "InvtPart",
     "qty": "1", "isclosed": "F", "dcl_qty": "0"},
]  # fmt: skip
PO_HEADER = {
    "links": [], "id": "5001", "type": "PurchOrd", "tranid": "PO1001", "status": "B", "entity": "77",
    "location": "1", "trandate": "2026-05-01", "duedate": "2026-05-10", "custbody_sent_to_3pl": "F",
    "lastmodifieddate": "2026-05-01 10:00:00",
}  # fmt: skip
TO_LINES = [
    # A transfer order's line quantity is signed (flow D selects it without ABS()).
    {"links": [], "transaction": "5001", "line": "1", "sku": "SERUM-001", "itemtype": "InvtPart",
     "qty": "-10", "qty_received": "-4", "isclosed": "F"},
    {"links": [], "transaction": "5001", "line": "2", "sku": "SHIPPING", "itemtype": "ShipItem",
     "qty": "n/a"},
]  # fmt: skip
CONFIG = DispatchConfig(
    account_number="10501",
    freight_account="00500",
    ship_methods={},
    kit_components={"MN-KIT-01": [("MN-TOOL-070", 4)]},
)
HEADER = {
    "tranId": "SO1001",
    "tranDate": "2026-03-02",
    "entity": {"id": "110"},
    "shippingAddress": {
        "addr1": "1 Main St",
        "city": "Austin",
        "state": "TX",
        "zip": "78701",
        "country": "US",
    },
}


def test_sales_order_rows_read_into_types():
    assert parse_row(PendingSalesOrder, PENDING) == PendingSalesOrder(
        id="4321", tranid="SO1001", externalid="shopify-order-7", trandate="2026-03-02"
    )
    parsed = parse_rows(SalesOrderLine, SO_LINES)
    assert parsed.unreadable == []
    serum, kit, gift = parsed.rows
    assert (serum.line, serum.qty, serum.qty_shipped, serum.isclosed, serum.dcl_qty) == (1, 2, 0, False, 2)
    assert (kit.itemtype, kit.qty, kit.qty_shipped, kit.dcl_qty) == ("Kit", 3, 1, None)
    assert kit.shopify_line_id == "12"
    assert (gift.qty_shipped, gift.dcl_qty) == (0, 0)


def test_parsed_rows_plan_the_same_dcl_order_as_raw_ones():
    parsed = parse_rows(SalesOrderLine, SO_LINES).rows
    assert plan_dcl_order(HEADER, parsed, CONFIG) == plan_dcl_order(HEADER, SO_LINES, CONFIG)
    assert plan_dcl_order(HEADER, parsed, CONFIG)["lines"] == [
        {"line_number": 1, "item_number": "MN-SERUM-001", "quantity": 2},
        {
            "line_number": 2,
            "item_number": "MN-KIT-01",
            "quantity": 2,
            "bundle_lines": [{"item_number": "MN-TOOL-070", "quantity": 4}],
        },
    ]


@pytest.mark.parametrize(
    ("change", "reason", "problem"),
    [
        ({"qty": "2.5"}, "invalid_quantity", "line 1 quantity '2.5' is not a whole number"),
        ({"qty_shipped": "abc"}, "invalid_quantity", "line 1 quantity shipped 'abc' is not a number"),
        ({"dcl_qty": "0.5"}, "invalid_quantity", "line 1 DCL quantity '0.5' is not a whole number"),
        ({"line": "1.5"}, "unreadable_row", "column line '1.5' is not a whole number"),
        ({"line": None}, "unreadable_row", "column line is missing"),
    ],
)
def test_a_sales_order_line_that_does_not_fit_is_unreadable_with_the_reason(change, reason, problem):
    raw = {k: v for k, v in {**SO_LINES[0], **change}.items() if v is not None}
    row = parse_row(SalesOrderLine, raw)
    assert row == UnreadableRow(reason=reason, problem=problem, raw=raw)
    assert parse_row(SalesOrderLine, row) is row  # parsed once: handing it on does not re-read it
    with pytest.raises(InvalidRecordError) as raised:
        plan_dcl_order(HEADER, [row, *SO_LINES[1:]], CONFIG)  # the order is quarantined, not shipped short
    assert (raised.value.reason, raised.value.detail) == (reason, problem)


def test_an_unreadable_line_that_would_never_ship_does_not_hold_its_order():
    closed = {**SO_LINES[0], "isclosed": "T", "qty": "2.5"}
    assert plan_dcl_order(HEADER, [closed, SO_LINES[1]], CONFIG)["lines"][0]["line_number"] == 2


def test_inbound_rows_read_into_types_and_the_same_order_raw_or_parsed():
    header = parse_row(InboundOrderHeader, PO_HEADER)
    assert isinstance(header, InboundOrderHeader)
    assert (header.id, header.entity, header.custbody_sent_to_3pl, header.custbody_dcl_po_number) == (
        "5001",
        "77",
        False,
        None,
    )
    line = parse_row(InboundOrderLine, TO_LINES[0])
    assert isinstance(line, InboundOrderLine) and (line.qty, line.qty_received) == (-10, -4)
    from_raw = InboundOrder.from_suiteql(PO_HEADER, TO_LINES)
    assert from_raw == InboundOrder.from_suiteql(header, [line, TO_LINES[1]])
    (only,) = from_raw.lines  # the shipping line is no inventory item: never read
    assert (only.quantity, only.received, only.open_quantity) == (10, 4, 6)


def test_an_inbound_header_without_an_id_refuses_the_order():
    raw = {k: v for k, v in PO_HEADER.items() if k != "id"}
    with pytest.raises(InvalidRecordError) as raised:
        InboundOrder.from_suiteql(raw, TO_LINES)
    assert (raised.value.reason, raised.value.detail) == (
        "unreadable_row",
        "PurchOrd None: column id is missing",
    )
