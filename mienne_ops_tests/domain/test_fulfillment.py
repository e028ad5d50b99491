"""Flow C mapping: DCL shipment -> NetSuite item fulfillment, Shopify tracking and FO split."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mienne_ops.domain.fulfillment import (
    LocationFulfillment,
    fulfillments_with_tracking,
    item_fulfillment_external_id,
    plan_item_fulfillment,
    plan_shopify_fulfillment,
    qty_by_shopify_line,
    shipment_key,
    shipped_by_line,
    should_bill,
    tracking_info,
    units_not_on_shopify,
)
from mienne_ops.errors import InvalidRecordError

KITS = {"MN-KIT-01": [("MN-TOOL-070", 4), ("MN-TONER-064", 3)]}

# The order as DCL returns it from `GET /orders` (lines as we sent them in flow B).
DCL_ORDER = {
    "order_number": "SO1001",
    "order_stage": 50,
    "lines": [
        {"line_number": 1, "item_number": "MN-SERUM-001", "quantity": 2},
        {"line_number": 2, "item_number": "MN-KIT-01", "quantity": 2,
         "bundle_lines": [{"item_number": "MN-TOOL-070", "quantity": 8},
                          {"item_number": "MN-TONER-064", "quantity": 6}]},
        {"line_number": 5, "item_number": "MN-TOOL-070", "quantity": 1},
    ],
}  # fmt: skip

# dcl.md §5 shipment shape, with the sandbox's shipment-level carrier/service and package weight.
SHIPMENT = {
    "ship_date": "2026-03-04",
    "shipping_carrier": "UPS",
    "shipping_service": "GROUND",
    "shipping_address": {"attention": "Jane Doe", "address1": "1 Main St", "city": "Austin",
                         "state_province": "TX", "postal_code": "78701", "country": "US"},
    "packages": [
        {"carton_id": "C0001234", "tracking_number": "1Z999AA10123456784", "weight": 1.2,
         "shipped_items": [{"item_number": "MN-SERUM-001", "description": "Serum", "quantity": 2,
                            "serial_numbers": []},
                           {"item_number": "MN-TOOL-070", "quantity": 5, "serial_numbers": []}]},
        {"carton_id": "C0001235", "tracking_number": "1Z999AA10123456795",
         "shipped_items": [{"item_number": "MN-TONER-064", "quantity": 3, "serial_numbers": []}]},
    ],
}  # fmt: skip


def test_shipment_key_and_external_id_are_stable():
    assert shipment_key("SO1001", SHIPMENT) == "SO1001-2026-03-04-C0001234"
    assert item_fulfillment_external_id("SO1001", SHIPMENT) == "dcl-shipment-SO1001-2026-03-04-C0001234"
    extended = dict(SHIPMENT, ship_date="2026-03-04T15:02:11")
    assert shipment_key("SO1001", extended) == shipment_key("SO1001", SHIPMENT)
    other = copy.deepcopy(SHIPMENT)
    other["packages"][0]["carton_id"] = "C0009999"
    assert shipment_key("SO1001", other) != shipment_key("SO1001", SHIPMENT)


def test_external_id_is_bounded_and_sanitised():
    long = dict(SHIPMENT, packages=[{"carton_id": "C/" + "9" * 80, "shipped_items": []}])
    external_id = item_fulfillment_external_id("SO1001", long)
    assert len(external_id) <= 64 and "/" not in external_id
    assert external_id == item_fulfillment_external_id("SO1001", long)


def test_standalone_lines_first_then_components_roll_up_into_kits():
    # 5 tools: 1 goes to the standalone tool line 5, 4 + 3 toners make one whole kit for line 2.
    assert shipped_by_line(DCL_ORDER, SHIPMENT, KITS) == {1: 2, 5: 1, 2: 1}


def test_already_shipped_caps_the_line():
    shipment = copy.deepcopy(SHIPMENT)
    shipment["packages"][0]["shipped_items"][0]["quantity"] = 1
    assert shipped_by_line(DCL_ORDER, shipment, KITS, already_shipped={1: 1}) == {1: 1, 5: 1, 2: 1}
    with pytest.raises(InvalidRecordError) as caught:
        shipped_by_line(DCL_ORDER, SHIPMENT, KITS, already_shipped={1: 1})
    assert caught.value.reason == "unexpected_item"
    assert "MN-SERUM-001 x1" in str(caught.value)


def test_kit_shipped_as_its_own_sku_counts_for_the_kit_line():
    items = [{"item_number": "MN-KIT-01", "quantity": 2}]
    shipment = {"ship_date": "2026-03-04", "packages": [{"carton_id": "C1", "shipped_items": items}]}
    assert shipped_by_line(DCL_ORDER, shipment, KITS) == {2: 2}


@pytest.mark.parametrize(
    ("item_number", "quantity"),
    [("MN-UNKNOWN-999", 1), ("MN-TONER-064", 2)],  # unknown SKU; kit components short of a whole kit
)
def test_unmatched_items_are_rejected(item_number, quantity):
    shipment = {"ship_date": "2026-03-04",
                "packages": [{"carton_id": "C1", "shipped_items": [{"item_number": item_number,
                                                                    "quantity": quantity}]}]}  # fmt: skip
    with pytest.raises(InvalidRecordError) as caught:
        shipped_by_line(DCL_ORDER, shipment, KITS)
    assert caught.value.reason == "unexpected_item"
    assert item_number in str(caught.value)


@settings(max_examples=150, deadline=None)
@given(
    kit_qty=st.integers(0, 5),
    tools=st.integers(0, 30),
    toners=st.integers(0, 30),
    shipped_before=st.integers(0, 5),
)
def test_kit_roll_up_never_exceeds_what_is_open(kit_qty, tools, toners, shipped_before):
    order = {
        "order_number": "SO7",
        "lines": [{"line_number": 3, "item_number": "MN-KIT-01", "quantity": kit_qty}],
    }
    items = [
        {"item_number": "MN-TOOL-070", "quantity": tools},
        {"item_number": "MN-TONER-064", "quantity": toners},
    ]
    shipment = {"ship_date": "2026-03-04", "packages": [{"carton_id": "C1", "shipped_items": items}]}
    already = {3: min(shipped_before, kit_qty)}
    try:
        result = shipped_by_line(order, shipment, KITS, already_shipped=already)
    except InvalidRecordError as error:
        assert error.reason == "unexpected_item"
        return
    kits = result.get(3, 0)
    assert kits <= kit_qty - already[3]
    assert kits * 4 == tools and kits * 3 == toners  # accepted only when everything rolled up exactly


def test_item_fulfillment_body():
    body = plan_item_fulfillment("SO1001", SHIPMENT, {2: 1, 1: 2, 5: 0}, location_id=1)
    assert body == {
        "externalId": "dcl-shipment-SO1001-2026-03-04-C0001234",
        "tranDate": "2026-03-04",
        "shipStatus": {"id": "C"},
        "item": {"items": [
            {"orderLine": 1, "itemReceive": True, "quantity": 2, "location": {"id": "1"}},
            {"orderLine": 2, "itemReceive": True, "quantity": 1, "location": {"id": "1"}},
        ]},
        "package": {"items": [
            {"packageTrackingNumber": "1Z999AA10123456784", "packageDescr": "UPS GROUND",
             "packageWeight": 1.2},
            {"packageTrackingNumber": "1Z999AA10123456795", "packageDescr": "UPS GROUND"},
        ]},
    }  # fmt: skip
    with pytest.raises(InvalidRecordError) as caught:
        plan_item_fulfillment("SO1001", SHIPMENT, {1: 0}, location_id=1)
    assert caught.value.reason == "nothing_shipped"


@pytest.mark.parametrize(
    ("carrier", "company", "url_start"),
    [
        ("UPS", "UPS", "https://www.ups.com/"),
        ("FEDEX", "FedEx", "https://www.fedex.com/"),
        ("USPS", "USPS", "https://tools.usps.com/"),
        ("CANADAPOST", "Canada Post", "https://www.canadapost-postescanada.ca/"),
        ("DHL", "DHL Express", "https://www.dhl.com/"),
    ],
)
def test_tracking_info_maps_carriers_and_urls(carrier, company, url_start):
    tracking = tracking_info(dict(SHIPMENT, shipping_carrier=carrier))
    assert tracking.company == company
    assert tracking.numbers == ["1Z999AA10123456784", "1Z999AA10123456795"]
    assert len(tracking.urls) == 2
    assert all(url.startswith(url_start) for url in tracking.urls)
    assert tracking.numbers[0] in tracking.urls[0]


def test_tracking_info_unknown_carrier_and_duplicate_numbers():
    shipment = copy.deepcopy(SHIPMENT)
    shipment["shipping_carrier"] = "Speedy Couriers"
    shipment["packages"][1]["tracking_number"] = shipment["packages"][0]["tracking_number"]
    tracking = tracking_info(shipment)
    assert tracking.company == "Speedy Couriers"
    assert tracking.numbers == ["1Z999AA10123456784"]
    assert tracking.urls == []


FULFILLMENT_ORDERS = [
    {"id": "gid://shopify/FulfillmentOrder/1046000798", "status": "CLOSED",
     "line_items": [{"id": "gid://shopify/FulfillmentOrderLineItem/1", "line_item_id": "gid://shopify/LineItem/466157049",
                     "sku": "MN-SERUM-001", "remaining_quantity": 2, "total_quantity": 2}]},
    {"id": "gid://shopify/FulfillmentOrder/1046000799", "status": "OPEN",
     "line_items": [{"id": "gid://shopify/FulfillmentOrderLineItem/1058737525",
                     "line_item_id": "gid://shopify/LineItem/466157049", "sku": "MN-SERUM-001",
                     "remaining_quantity": 1, "total_quantity": 2},
                    {"id": "gid://shopify/FulfillmentOrderLineItem/1058737526",
                     "line_item_id": "gid://shopify/LineItem/518995019", "sku": "MN-KIT-01",
                     "remaining_quantity": 2, "total_quantity": 2}]},
    {"id": "gid://shopify/FulfillmentOrder/1046000800", "status": "in_progress",
     "line_items": [{"id": "gid://shopify/FulfillmentOrderLineItem/1058737527",
                     "line_item_id": "gid://shopify/LineItem/466157049", "sku": "MN-SERUM-001",
                     "remaining_quantity": 5, "total_quantity": 5}]},
]  # fmt: skip


def test_shopify_fulfillment_uses_open_fos_and_caps_by_remaining():
    plan = plan_shopify_fulfillment(
        FULFILLMENT_ORDERS, {"466157049": 2, "gid://shopify/LineItem/518995019": 1}
    )
    assert plan.fulfillments == [
        LocationFulfillment(location_id=None, lines_by_fulfillment_order=[
            ("gid://shopify/FulfillmentOrder/1046000799", [
                ("gid://shopify/FulfillmentOrderLineItem/1058737525", 1),
                ("gid://shopify/FulfillmentOrderLineItem/1058737526", 1),
            ]),
            ("gid://shopify/FulfillmentOrder/1046000800", [
                ("gid://shopify/FulfillmentOrderLineItem/1058737527", 1),
            ]),
        ]),
    ]  # fmt: skip
    assert plan.waiting == {} and plan.unplaced == 0 and plan.waiting_reason is None


def test_shopify_fulfillment_nothing_to_do():
    assert plan_shopify_fulfillment(FULFILLMENT_ORDERS, {}).fulfillments == []
    only_closed = plan_shopify_fulfillment(FULFILLMENT_ORDERS[:1], {"466157049": 2})
    assert only_closed.fulfillments == [] and only_closed.unplaced == 2 and only_closed.waiting == {}


FREMONT, LOS_ANGELES = "gid://shopify/Location/60000000001", "gid://shopify/Location/60000000002"


def fo(number: int, status: str, location: str, *lines: tuple[int, int, int]) -> dict:
    """A fulfillment order as `ShopifyClient.fulfillment_state` returns it: (fo line, order line, left)."""
    return {
        "id": f"gid://shopify/FulfillmentOrder/{number}",
        "status": status,
        "assigned_location_id": location,
        "line_items": [
            {"id": f"gid://shopify/FulfillmentOrderLineItem/{fo_line}",
             "line_item_id": f"gid://shopify/LineItem/{order_line}",
             "sku": None, "remaining_quantity": left, "total_quantity": left}
            for fo_line, order_line, left in lines
        ],
    }  # fmt: skip


def test_shopify_fulfillment_is_one_fulfillment_per_assigned_location():
    fulfillment_orders = [
        fo(1, "OPEN", FREMONT, (11, 101, 2), (12, 103, 3)),
        fo(2, "OPEN", LOS_ANGELES, (21, 102, 1)),
        fo(3, "IN_PROGRESS", FREMONT, (31, 104, 1)),  # split off earlier: same location, one call
    ]
    plan = plan_shopify_fulfillment(fulfillment_orders, {"101": 2, "102": 1, "103": 3, "104": 1})
    assert [
        (f.location_id, [group[0] for group in f.lines_by_fulfillment_order]) for f in plan.fulfillments
    ] == [
        (FREMONT, ["gid://shopify/FulfillmentOrder/1", "gid://shopify/FulfillmentOrder/3"]),
        (LOS_ANGELES, ["gid://shopify/FulfillmentOrder/2"]),
    ]
    assert plan.waiting == {} and plan.unplaced == 0


def test_units_on_a_held_or_scheduled_fulfillment_order_wait():
    fulfillment_orders = [
        fo(1, "ON_HOLD", FREMONT, (11, 101, 2)),
        fo(2, "OPEN", LOS_ANGELES, (21, 102, 1)),
        fo(3, "SCHEDULED", LOS_ANGELES, (31, 103, 1)),
    ]
    plan = plan_shopify_fulfillment(fulfillment_orders, {"101": 2, "102": 1, "103": 1})
    assert [f.location_id for f in plan.fulfillments] == [LOS_ANGELES]  # what can go, goes
    assert plan.waiting == {"on_hold": 2, "scheduled": 1}
    assert plan.waiting_reason == "fulfillment_order_on_hold"
    scheduled_only = plan_shopify_fulfillment(fulfillment_orders, {"103": 1})
    assert scheduled_only.waiting_reason == "fulfillment_order_scheduled" and not scheduled_only.fulfillments


def test_units_already_fulfilled_with_the_shipments_tracking_are_not_sent_again():
    fulfillments = [
        {"id": "gid://shopify/Fulfillment/1", "tracking_numbers": ["1Z999AA10123456784"],
         "line_items": [{"line_item_id": "gid://shopify/LineItem/101", "quantity": 2}]},
        {"id": "gid://shopify/Fulfillment/2", "tracking_numbers": ["9400100000000000000000"],
         "line_items": [{"line_item_id": "gid://shopify/LineItem/102", "quantity": 1}]},
    ]  # fmt: skip
    mine = fulfillments_with_tracking(fulfillments, ["1Z999AA10123456784", "1Z999AA10123456795"])
    assert [f["id"] for f in mine] == ["gid://shopify/Fulfillment/1"]
    assert units_not_on_shopify({"gid://shopify/LineItem/101": 2, "102": 1}, mine) == {"102": 1}
    assert units_not_on_shopify({"101": 3}, mine) == {"101": 1}


def test_qty_by_shopify_line_rekeys_so_lines():
    assert qty_by_shopify_line(
        {1: 2, 2: 1, 5: 0}, {1: "466157049", 2: "gid://shopify/LineItem/518995019"}
    ) == {
        "466157049": 2,
        "518995019": 1,
    }


@pytest.mark.parametrize(
    ("status", "billing", "expected"),
    [
        ("F", "on_full_shipment", True),
        ("SalesOrd:F", "on_full_shipment", True),
        ("Pending Billing", "on_full_shipment", True),
        ("E", "on_full_shipment", False),
        ("D", "on_each_shipment", True),
        ("E", "on_each_shipment", True),
        ("B", "on_each_shipment", False),
        ("G", "on_each_shipment", False),
        ("F", "never", False),
    ],
)
def test_should_bill(status, billing, expected):
    assert should_bill(status, billing) is expected


def test_should_bill_rejects_unknown_mode():
    with pytest.raises(ValueError):
        should_bill("F", "sometimes")


def test_item_fulfillment_puts_tracking_in_the_ship_methods_package_sublist():
    from mienne_ops.domain.fulfillment import plan_item_fulfillment

    shipment = {
        "shipping_carrier": "UPS",
        "shipping_service": "GROUND",
        "packages": [{"tracking_number": "1Z9", "weight": "2.5"}],
    }
    ups = plan_item_fulfillment("SO1", shipment, {1: 1}, 1, package_sublist="packageUps")
    assert "package" not in ups
    assert ups["packageUps"]["items"] == [
        {"packageTrackingNumberUps": "1Z9", "packageDescrUps": "UPS GROUND", "packageWeightUps": 2.5}
    ]
    fedex = plan_item_fulfillment("SO1", shipment, {1: 1}, 1, package_sublist="packageFedEx")
    assert fedex["packageFedEx"]["items"] == [
        {"packageTrackingNumberFedEx": "1Z9", "packageWeightFedEx": 2.5}
    ]
    plain = plan_item_fulfillment("SO1", shipment, {1: 1}, 1)
    assert plain["package"]["items"][0]["packageTrackingNumber"] == "1Z9"
    with pytest.raises(InvalidRecordError):
        plan_item_fulfillment("SO1", shipment, {1: 1}, 1, package_sublist="packageDhl")
