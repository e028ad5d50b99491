"""`mienne-ops order status` after a split shipment: two parcels, each with its carrier and tracking
numbers, its NetSuite item fulfillment and its Shopify fulfillment, all read from the ledger."""

import random

import httpx
import pytest
from click.testing import CliRunner

from mienne_ops.cli import main
from mienne_ops.devtools.harness import ORDER_TO_CASH_SENSORS, sandbox_state
from mienne_ops.sandbox.order_factory import build_order

pytestmark = pytest.mark.e2e


def _ship(url: str, order_number: str, body: dict) -> None:
    response = httpx.post(f"{url}/_sandbox/dcl/orders/{order_number}/ship", json=body, timeout=30)
    assert response.status_code == 200, response.text


def test_a_split_shipment_shows_as_two_shipments_with_their_tracking_and_fulfillments(stack):
    sandbox, driver, ledger = stack["sandbox"], stack["driver"], stack["ledger"]
    url = sandbox.url
    payload = build_order(sandbox.hub.catalog, random.Random(7), line_count=2, gift_card=False)
    placed = httpx.post(f"{url}/_sandbox/shopify/orders", json=payload, timeout=30)
    placed.raise_for_status()
    name = placed.json()["name"]
    driver.settle(ORDER_TO_CASH_SENSORS[:2])
    (dcl_order,) = sandbox_state(url)["dcl"]["orders"]
    number, first = dcl_order["order_number"], dcl_order["lines"][0]
    # First parcel: the first line, one tracking number; then the rest in two packages.
    _ship(url, number, {"lines": [{"line_number": first["line_number"], "quantity": first["quantity"]}]})
    driver.settle(ORDER_TO_CASH_SENSORS[2:])
    rest = sum(line["quantity"] for line in dcl_order["lines"][1:])
    _ship(url, number, {"tracking_numbers": ["1ZSPLITREST1", "1ZSPLITREST2"][: min(2, rest)]})
    driver.settle(ORDER_TO_CASH_SENSORS[2:])

    shipped = sandbox_state(url)["dcl"]["orders"][0]["shipments"]
    assert len(shipped) == 2
    printed = CliRunner().invoke(main, ["order", "status", name])
    assert printed.exit_code == 0, printed.output
    output = printed.output
    assert "shipments (2):  split" in output
    progress = ledger.shipments_of(number)
    assert len(progress) == 2
    for index, (shipment, row) in enumerate(zip(shipped, progress, strict=True), start=1):
        numbers = [package["tracking_number"] for package in shipment["packages"]]
        assert list(row.tracking_numbers or []) == numbers
        assert row.carrier and row.item_fulfillment_id and row.shopify_fulfillment_id
        assert f"    {index}. {row.shipment_key}" in output
        assert f"tracking {row.carrier} {', '.join(numbers)}" in output
        written = f"item fulfillment {row.item_fulfillment_id}, on Shopify as {row.shopify_fulfillment_id}"
        assert written in output
    # Each Shopify fulfillment carries its own parcel's numbers.
    (order,) = [o for o in sandbox_state(url)["shopify"]["orders"] if o["name"] == name]
    on_shopify = sorted(sorted(f["tracking_numbers"]) for f in order["fulfillments"])
    assert on_shopify == sorted(sorted(row.tracking_numbers or []) for row in progress)
