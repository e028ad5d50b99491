"""The DCL client and readers under each undocumented account behaviour the fake can play.

DCL leaves open: the shipment shape, the receipt line fields, a top-level code on partial batches and
how "no records" is answered (dcl.md §4, §5, §8.2). Each test switches the fake's account setting
(``/_sandbox/dcl/account``) and checks that the product reads the answer correctly.
"""

from __future__ import annotations

import httpx
import pytest

from mienne_ops.domain.dcl_records import ReceiptLine, parse_order_shipments, parse_receipt
from mienne_ops.domain.fulfillment import shipment_key, tracking_info
from mienne_ops.domain.inbound import receipt_key, received_at_dcl
from mienne_ops.sandbox import credentials
from mienne_ops_tests.integrations.test_dcl_client import make_client, order, ship
from mienne_ops_tests.support import single_system_server

server = single_system_server("dcl")


@pytest.fixture
def sandbox_url(server):
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    httpx.post(f"{server.url}/_sandbox/dcl/limits", json={"requests_per_second": 1000}).raise_for_status()
    return server.url


def account(url: str, **settings) -> dict:
    response = httpx.post(f"{url}/_sandbox/dcl/account", json=settings)
    assert response.status_code == 200, response.text
    return response.json()


def test_partial_batch_with_a_top_level_code_is_read_per_order(sandbox_url):
    account(sandbox_url, partial_batch_error_code=True)
    raw = httpx.post(
        f"{sandbox_url}/dcl/api/v1/batches",
        auth=(credentials.DCL["username"], credentials.DCL["password"]),
        json={
            "allow_partial": True,
            "orders": [
                {
                    **order("PB-0"),
                    "account_number": credentials.DCL["account_number"],
                    "freight_account": "00500",
                },
                {
                    **order("PB-X", sku="NO-SUCH-SKU"),
                    "account_number": credentials.DCL["account_number"],
                    "freight_account": "00500",
                },
            ],
        },
    ).json()
    assert raw["error_code"] != 0  # the fake plays the undocumented top-level failure
    client = make_client(sandbox_url)
    results = client.submit_batch([order("PB-1"), order("PB-2", sku="NO-SUCH-SKU"), order("PB-3")])
    assert [(r.order_number, r.accepted) for r in results] == [
        ("PB-1", True),
        ("PB-2", False),
        ("PB-3", True),
    ]
    assert {o["order_number"] for o in client.get_orders(["PB-1", "PB-2", "PB-3"])} == {"PB-1", "PB-3"}


def test_no_records_code_is_an_empty_list(sandbox_url):
    account(sandbox_url, no_records_code=True)
    auth = (credentials.DCL["username"], credentials.DCL["password"])
    raw = httpx.get(f"{sandbox_url}/dcl/api/v1/orders", params={"order_numbers": "NONE-1"}, auth=auth)
    assert raw.status_code == 200 and raw.json()["error_code"] != 0 and "orders" not in raw.json()
    client = make_client(sandbox_url)
    assert client.get_orders(["NONE-1"]) == []
    assert list(client.iter_po_receipts()) == []
    assert list(client.iter_items(item_numbers=["NO-SUCH-SKU"])) == []
    # A duplicate is still confirmed by the follow-up GET (which now answers a code when empty).
    client.submit_batch([order("NR-1")])
    (again,) = client.submit_batch([order("NR-1")])
    assert again.already_exists and again.ok


def test_both_shipment_shapes_read_the_same(sandbox_url):
    client = make_client(sandbox_url)
    client.submit_batch([order("SS-1", quantity=3)])
    ship(sandbox_url, "SS-1", carrier="FEDEX", service="2DAY", tracking_numbers=["7700001", "7700002"])
    (per_shipment,) = client.get_orders(["SS-1"])
    account(sandbox_url, shipment_shape="shipped_lines")
    (shipped_lines,) = client.get_orders(["SS-1"])
    raw = shipped_lines["shipments"][0]
    assert "shipped_lines" in raw and "shipping_carrier" not in raw
    assert all("shipped_items" not in p for p in raw["packages"])
    a, b = parse_order_shipments(per_shipment)[0], parse_order_shipments(shipped_lines)[0]
    assert not a.unreadable and not b.unreadable
    units = [sum(i.quantity for p in s.packages for i in p.shipped_items) for s in (a, b)]
    assert units == [3, 3]
    assert shipment_key("SS-1", a) == shipment_key("SS-1", b) == shipment_key("SS-1", raw)
    # The shipment's own carrier when it has one; else the carrier requested on the order (UPS).
    assert (a.shipping_carrier, a.shipping_service) == ("FEDEX", "2DAY")
    assert (b.shipping_carrier, b.shipping_service) == ("UPS", "GROUND")
    assert tracking_info(b).numbers == ["7700001", "7700002"]
    # Parsed at the edge: the client's DclOrder carries the same shipments, read once.
    (parsed,) = client.orders(["SS-1"])
    assert parsed.shipped and parsed.shipments == [b] and parsed.lines[0].quantity == 3
    assert [o.order_number for o in client.iter_parsed_orders() if o.order_number == "SS-1"] == ["SS-1"]


def test_shipment_without_readable_items_is_unreadable():
    dcl_order = {"order_number": "U-1", "shipping_carrier": "UPS", "shipping_service": "GROUND"}
    raw = {"ship_date": "2026-06-15", "packages": [{"carton_id": "C1", "tracking_number": "1Z1"}]}
    (shipment,) = parse_order_shipments({**dcl_order, "shipments": [raw]})
    assert shipment.unreadable and shipment.raw == raw
    odd = {**raw, "shipped_lines": [{"sku_cd": "X", "qty": 1}]}
    assert parse_order_shipments({**dcl_order, "shipments": [odd]})[0].unreadable


def test_receipt_shapes_read_the_same_and_opaque_ones_are_unreadable(sandbox_url):
    auth = (credentials.DCL["username"], credentials.DCL["password"])
    announced = httpx.post(
        f"{sandbox_url}/dcl/api/v1/po_notifications",
        auth=auth,
        json={
            "account_number": credentials.DCL["account_number"],
            "location": "FR",
            "reference_transaction_number": "PO77-1",
            "reference_order_number": "PO77",
            "order_date": "2026-06-01",
            "expected_delivery_date": "2026-06-10",
            "lines": [{"line_number": 1, "item_number": "MN-SERUM-001", "quantity": 5}],
        },
    ).json()
    number = announced["dcl_po_number"]
    httpx.post(f"{sandbox_url}/_sandbox/dcl/po/{number}/receive", json={}).raise_for_status()
    client = make_client(sandbox_url)
    readings = {}
    for shape in ("sandbox", "alternate", "opaque"):
        account(sandbox_url, receipt_shape=shape)
        (raw,) = client.iter_po_receipts(dcl_po_number=number)
        readings[shape] = (raw, parse_receipt(raw))
        assert list(client.iter_receipts(dcl_po_number=number)) == [readings[shape][1]]  # parsed at the edge
    assert "receipt_lines" in readings["alternate"][0] and "lines" not in readings["alternate"][0]
    sandbox, alternate = readings["sandbox"][1], readings["alternate"][1]
    assert (
        sandbox.lines
        == alternate.lines
        == [ReceiptLine(item_number="MN-SERUM-001", quantity_received=5, line_number=1)]
    )
    assert receipt_key(readings["sandbox"][0]) == receipt_key(readings["alternate"][0])
    raw_opaque, opaque = readings["opaque"]
    assert opaque.unreadable and opaque.raw == raw_opaque and opaque.lines == []
    assert received_at_dcl([raw_opaque]) == 0 and received_at_dcl([readings["alternate"][0]]) == 5
    assert receipt_key(raw_opaque) == receipt_key(readings["sandbox"][0])  # the same receipt
