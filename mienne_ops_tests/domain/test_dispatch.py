"""Flow B mapping: NetSuite sales order (REST header + SuiteQL lines) -> DCL batch order."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mienne_ops.domain.dispatch import DispatchConfig, dcl_order_number, plan_dcl_order
from mienne_ops.errors import InvalidRecordError

CONFIG = DispatchConfig(
    account_number="10501",
    freight_account="00500",
    ship_methods={101: ("UPS", "GROUND"), 102: ("FEDEX", "2DAY"), 103: ("FEDEX", "OVERNIGHT")},
    kit_components={"MN-KIT-01": [("MN-TOOL-070", 4), ("MN-TONER-064", 3)]},
    rush_ship_method_ids={103},
)

# `GET salesOrder/{id}?expandSubResources=true`, trimmed to what flow B reads.
HEADER = {
    "id": "4321",
    "tranId": "SO1001",
    "tranDate": "2026-03-02",
    "otherRefNum": "#1001",
    "email": "jane@example.com",
    "entity": {"id": "110", "refName": "Jane Doe"},
    "shipMethod": {"id": "102", "refName": "Express Shipping"},
    "shippingAddress": {
        "addressee": "Jane Doe",
        "addr1": "1 Main St",
        "addr2": "Apt 4",
        "city": "Austin",
        "state": "TX",
        "zip": "78701",
        "country": {"id": "US", "refName": "United States"},
        "addrPhone": "+1 555 0100",
    },
}

# SuiteQL rows: lower-case keys, every value a string, nulls omitted.
LINES = [
    {"links": [], "line": "1", "sku": "MN-SERUM-001", "itemtype": "InvtPart", "qty": "2", "qty_shipped": "0",
     "isclosed": "F"},
    {"links": [], "line": "2", "sku": "MN-KIT-01", "itemtype": "Kit", "qty": "3", "qty_shipped": "1",
     "isclosed": "F"},
    {"links": [], "line": "3", "sku": "MN-CREAM-002", "itemtype": "InvtPart", "qty": "1", "qty_shipped": "1",
     "isclosed": "F"},
    {"links": [], "line": "4", "sku": "MN-MASK-005", "itemtype": "InvtPart", "qty": "5", "isclosed": "T"},
    {"links": [], "line": "5", "sku": "MN-KIT-99", "itemtype": "Kit", "qty": "1.0"},
]  # fmt: skip


def test_order_header_address_and_carrier():
    order = plan_dcl_order(HEADER, LINES, CONFIG)
    assert order["order_number"] == "SO1001"
    assert order["account_number"] == "10501"
    assert order["freight_account"] == "00500"
    assert order["ordered_date"] == "2026-03-02"
    assert order["po_number"] == "#1001"
    assert order["customer_number"] == "110"
    assert (order["shipping_carrier"], order["shipping_service"]) == ("FEDEX", "2DAY")
    assert order["order_status"] == 1
    assert order["shipping_address"] == {
        "attention": "Jane Doe",
        "address1": "1 Main St",
        "address2": "Apt 4",
        "city": "Austin",
        "state_province": "TX",
        "postal_code": "78701",
        "country_code": "US",
        "phone": "+1 555 0100",
        "email": "jane@example.com",
    }


def test_lines_send_what_is_left_and_explode_configured_kits():
    lines = plan_dcl_order(HEADER, LINES, CONFIG)["lines"]
    assert lines == [
        {"line_number": 1, "item_number": "MN-SERUM-001", "quantity": 2},
        {
            "line_number": 2,
            "item_number": "MN-KIT-01",
            "quantity": 2,
            "bundle_lines": [
                {"item_number": "MN-TOOL-070", "quantity": 4},
                {"item_number": "MN-TONER-064", "quantity": 3},
            ],
        },
        # line 3 fully shipped, line 4 closed; MN-KIT-99 is a kit DCL stocks whole (no bundle_lines)
        {"line_number": 5, "item_number": "MN-KIT-99", "quantity": 1},
    ]


def test_rush_and_default_ship_methods():
    rush = dict(HEADER, shipMethod={"id": "103"})
    assert plan_dcl_order(rush, LINES, CONFIG)["order_status"] == 2
    unknown = dict(HEADER, shipMethod={"id": "999"})
    order = plan_dcl_order(unknown, LINES, CONFIG)
    assert (order["shipping_carrier"], order["shipping_service"]) == ("UPS", "GROUND")
    no_method = {k: v for k, v in HEADER.items() if k != "shipMethod"}
    assert plan_dcl_order(no_method, LINES, CONFIG)["shipping_carrier"] == "UPS"


def test_country_as_plain_string_and_non_item_lines_skipped():
    header = copy.deepcopy(HEADER)
    header["shippingAddress"]["country"] = "US"
    rows = [*LINES, {"line": "9", "sku": "Shipping Discount", "itemtype": "Discount", "qty": "1"}]
    order = plan_dcl_order(header, rows, CONFIG)
    assert order["shipping_address"]["country_code"] == "US"
    assert 9 not in [line["line_number"] for line in order["lines"]]


def test_nothing_left_to_ship():
    shipped = [dict(row, qty_shipped=row["qty"]) for row in LINES]
    with pytest.raises(InvalidRecordError) as caught:
        plan_dcl_order(HEADER, shipped, CONFIG)
    assert caught.value.reason == "nothing_to_ship"
    assert "SO1001" in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("addr1", ""), ("addr1", "x" * 41), ("addr2", "y" * 41), ("addressee", "z" * 41), ("city", ""),
     ("state", ""), ("zip", ""), ("country", {"id": ""})],
)  # fmt: skip
def test_invalid_address(field, value):
    header = copy.deepcopy(HEADER)
    header["shippingAddress"][field] = value
    with pytest.raises(InvalidRecordError) as caught:
        plan_dcl_order(header, LINES, CONFIG)
    assert caught.value.reason == "invalid_address"
    assert "Main St" not in str(caught.value) and "Jane" not in str(caught.value)


def test_state_and_postal_code_only_required_for_us_and_canada():
    header = copy.deepcopy(HEADER)
    header["shippingAddress"].update(country={"id": "GB"}, state="", zip="")
    assert plan_dcl_order(header, LINES, CONFIG)["shipping_address"]["country_code"] == "GB"
    header["shippingAddress"]["country"] = {"id": "CA"}
    with pytest.raises(InvalidRecordError):
        plan_dcl_order(header, LINES, CONFIG)


def test_order_number_sanitising():
    assert dcl_order_number("SO1001") == "SO1001"
    assert dcl_order_number(" SO 1001/A ") == "SO-1001-A"
    assert dcl_order_number("#1001") == "#1001"
    for bad in ("", "///", "S" * 26):
        with pytest.raises(InvalidRecordError) as caught:
            dcl_order_number(bad)
        assert caught.value.reason == "invalid_order_number"


@given(st.text(max_size=40))
def test_order_numbers_are_always_dcl_safe(tran_id):
    try:
        number = dcl_order_number(tran_id)
    except InvalidRecordError:
        return
    assert 1 <= len(number) <= 25
    assert all(ch.isascii() and (ch.isalnum() or ch in "#-") for ch in number)


# What an unfiltered `SELECT … tl.kitmemberof …` returns for an SO with two kits: each kit line is
# followed by its hidden member lines (kit qty x member qty, `kitmemberof` = the kit line's id).
KIT_ORDER_LINES = [
    {"links": [], "line": "1", "sku": "MN-SERUM-001", "itemtype": "InvtPart", "qty": "1", "qty_shipped": "0",
     "isclosed": "F"},
    {"links": [], "line": "2", "sku": "MN-KIT-01", "itemtype": "Kit", "qty": "2", "qty_shipped": "0",
     "isclosed": "F"},
    {"links": [], "line": "3", "sku": "MN-TOOL-070", "itemtype": "InvtPart", "qty": "8", "qty_shipped": "0",
     "isclosed": "F", "kitmemberof": "2"},
    {"links": [], "line": "4", "sku": "MN-TONER-064", "itemtype": "InvtPart", "qty": "6", "qty_shipped": "0",
     "isclosed": "F", "kitmemberof": "2"},
    {"links": [], "line": "5", "sku": "MN-KIT-04", "itemtype": "Kit", "qty": "1", "qty_shipped": "0",
     "isclosed": "F"},
    {"links": [], "line": "6", "sku": "MN-CREAM-132", "itemtype": "InvtPart", "qty": "4", "qty_shipped": "0",
     "isclosed": "F", "kitmemberof": "5"},
]  # fmt: skip


def test_a_kit_goes_to_dcl_once_as_its_sku_or_its_components_never_with_its_member_lines():
    lines = plan_dcl_order(HEADER, KIT_ORDER_LINES, CONFIG)["lines"]
    assert lines == [
        {"line_number": 1, "item_number": "MN-SERUM-001", "quantity": 1},
        {
            "line_number": 2,
            "item_number": "MN-KIT-01",
            "quantity": 2,
            "bundle_lines": [
                {"item_number": "MN-TOOL-070", "quantity": 4},
                {"item_number": "MN-TONER-064", "quantity": 3},
            ],
        },
        {"line_number": 5, "item_number": "MN-KIT-04", "quantity": 1},  # DCL stocks it pre-packed
    ]


def test_company_goes_to_dcl_as_company_with_the_person_as_attention():
    header = {**HEADER, "shippingAddress": {**HEADER["shippingAddress"], "addressee": "Mienne Studio LLC",
                                             "attention": "Jane Doe"}}  # fmt: skip
    address = plan_dcl_order(header, LINES, CONFIG)["shipping_address"]
    assert (address["company"], address["attention"]) == ("Mienne Studio LLC", "Jane Doe")


def test_the_dcl_quantity_flow_a_recorded_caps_what_is_sent():
    """`custcol_dcl_quantity`: 0 for a line fulfilled elsewhere, part of it, or empty (older orders)."""
    row = {"itemtype": "InvtPart", "qty_shipped": "0"}
    lines = [
        {**row, "line": "1", "sku": "MN-SERUM-001", "qty": "3", "dcl_qty": "0"},
        {**row, "line": "2", "sku": "MN-CREAM-002", "qty": "3", "dcl_qty": "1"},
        {**row, "line": "3", "sku": "MN-MASK-005", "qty": "2"},
    ]
    sent = plan_dcl_order(HEADER, lines, CONFIG)["lines"]
    assert [(line["item_number"], line["quantity"]) for line in sent] == [
        ("MN-CREAM-002", 1),
        ("MN-MASK-005", 2),
    ]
    with pytest.raises(InvalidRecordError) as caught:
        plan_dcl_order(HEADER, lines[:1], CONFIG)
    assert caught.value.reason == "nothing_to_ship"


@pytest.mark.parametrize(
    ("column", "value", "why"),
    [
        ("qty", "2.5", "line 1 quantity '2.5' is not a whole number"),
        ("qty_shipped", "0.5", "line 1 quantity shipped '0.5' is not a whole number"),
        ("dcl_qty", "1.5", "line 1 DCL quantity '1.5' is not a whole number"),
        ("qty", "two", "line 1 quantity 'two' is not a number"),
    ],
)
def test_a_fractional_or_unreadable_suiteql_quantity_is_refused_never_truncated(column, value, why):
    row = {**LINES[0], column: value}
    with pytest.raises(InvalidRecordError) as raised:
        plan_dcl_order(HEADER, [row], CONFIG)
    assert raised.value.reason == "invalid_quantity"
    assert (raised.value.record, raised.value.detail) == ("SO SO1001", why)


def test_suiteql_decimal_strings_and_omitted_null_columns_read_as_whole_units():
    # SuiteQL's quantity columns come back as "2.0"; a NULL column (nothing shipped) is left out.
    row = {"links": [], "line": "7", "sku": "MN-SERUM-001", "itemtype": "InvtPart", "qty": "3.0"}
    assert plan_dcl_order(HEADER, [row], CONFIG)["lines"] == [
        {"line_number": 7, "item_number": "MN-SERUM-001", "quantity": 3}
    ]


def test_an_order_dcl_cancelled_is_sent_again_under_the_switchs_number():
    from mienne_ops.domain.dispatch import resend_order_number

    assert resend_order_number("SO1001", "SO1001", "suffix") == "SO1001-R1"
    assert resend_order_number("SO1001", "SO1001-R1", "suffix") == "SO1001-R2"
    assert resend_order_number("SO1001", "SO1001-R9", "suffix") == "SO1001-R10"
    # A tranId that itself ends like a resend is still the base.
    assert resend_order_number("INV-R2", "INV-R2", "suffix") == "INV-R2-R1"
    assert resend_order_number("SO1001", "SO1001", "same_number") == "SO1001"
    with pytest.raises(InvalidRecordError, match="more than 25"):
        resend_order_number("A" * 24, "A" * 24, "suffix")
    with pytest.raises(ValueError, match="dcl_resend_cancelled_as"):
        resend_order_number("SO1", "SO1", "renumber")


def test_resend_numbers_are_recognised():
    from mienne_ops.domain.dispatch import is_resend_number

    assert is_resend_number("SO1001-R1") and is_resend_number("SO1001-R12")
    assert not is_resend_number("SO1001") and not is_resend_number("SO1001-RX")
