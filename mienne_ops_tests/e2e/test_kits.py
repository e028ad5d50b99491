"""A kit order through A -> B -> C on NetSuite's real kit rows: one DCL line set, a complete fulfillment.

On a NetSuite sales order a kit is its kit line plus one hidden member line per BOM component
(``kitmemberof`` = the kit line). The order here holds a kit DCL picks as components, a kit DCL stocks
pre-packed and a plain item. Flow B must send each kit once (exploded into ``bundle_lines`` or as its
own SKU) and never its member lines; flow C must map the components DCL ships back to the kit line,
and the item fulfillment NetSuite builds from it must carry the kit lines and every member line in
full. A second pass of every sensor creates nothing. It runs under two account date preferences
(SuiteQL dates as ``M/D/YYYY`` and as ``D/M/YYYY``).
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

import httpx
import pytest

from mienne_ops.devtools.harness import ORDER_TO_CASH_SENSORS, sandbox_state
from mienne_ops.sandbox.order_factory import build_order

pytestmark = pytest.mark.e2e


def _kit_order(catalog) -> dict:
    """A Shopify order for one exploded kit, one pre-packed kit and one plain item (none a component)."""
    exploded = next(b for b in catalog.bundles if b.ship_as_components)
    prepacked = next(b for b in catalog.bundles if not b.ship_as_components)
    components = {c.component_sku for b in (exploded, prepacked) for c in b.components}
    by_sku = catalog.by_sku()
    plain = next(
        s
        for s in catalog.sellable_skus()
        if s.item_type == "InvtPart" and s.sku not in components and catalog.bundle_for(s.sku) is None
    )
    chosen = (by_sku[exploded.sku], by_sku[prepacked.sku], plain)
    only_these = dataclasses.replace(catalog, skus=chosen, bundles=())
    return build_order(only_these, random.Random(8), line_count=len(chosen))


def _counts(state: dict) -> Counter:
    return Counter(
        {
            "sales_orders": len(state["netsuite"]["sales_orders"]),
            "item_fulfillments": len(state["netsuite"]["item_fulfillments"]),
            "cash_sales": len(state["netsuite"]["cash_sales"]),
            "dcl_orders": len(state["dcl"]["orders"]),
            "stateset_orders": len(state["stateset"]["orders"]),
            "shopify_fulfillments": sum(len(o.get("fulfillments") or []) for o in state["shopify"]["orders"]),
        }
    )


@pytest.mark.parametrize("date_format", ["M/D/YYYY", "D/M/YYYY"])
def test_a_kit_order_goes_to_dcl_once_and_comes_back_as_a_complete_fulfillment(stack, date_format):
    sandbox, driver = stack["sandbox"], stack["driver"]
    catalog = sandbox.hub.catalog
    preference = httpx.post(
        f"{sandbox.url}/_sandbox/netsuite/preferences", json={"date_format": date_format}, timeout=30
    )
    assert preference.json() == {"date_format": date_format}
    placed = httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=_kit_order(catalog), timeout=30)
    placed.raise_for_status()

    driver.settle(ORDER_TO_CASH_SENSORS[:1])
    (sales_order,) = sandbox_state(sandbox.url)["netsuite"]["sales_orders"]
    kit_lines = {line["line"]: line for line in sales_order["lines"] if catalog.bundle_for(line["sku"])}
    assert len(kit_lines) == 2
    members = sales_order["kitMemberLines"]
    assert {m["kitMemberOf"] for m in members} == set(kit_lines)
    for line in kit_lines.values():
        bom = {c.component_sku: c.quantity for c in catalog.bundle_for(line["sku"]).components}
        mine = {m["sku"]: m["quantity"] for m in members if m["kitMemberOf"] == line["line"]}
        assert mine == {sku: per_kit * line["quantity"] for sku, per_kit in bom.items()}

    # Flow B: one DCL line per sales order line; the member lines are never sent.
    driver.settle(ORDER_TO_CASH_SENSORS[1:2])
    (dcl_order,) = sandbox_state(sandbox.url)["dcl"]["orders"]
    assert dcl_order["order_number"] == sales_order["tranId"]
    sent = {line["line_number"]: line for line in dcl_order["lines"]}
    products = catalog.by_sku()  # the SO also has service lines (tax, discount) DCL never sees
    assert set(sent) == {line["line"] for line in sales_order["lines"] if line["sku"] in products}
    assert not {m["line"] for m in members} & set(sent)
    for number, line in kit_lines.items():
        bundle = catalog.bundle_for(line["sku"])
        assert sent[number]["item_number"] == line["sku"]
        parts = [(c.component_sku, c.quantity) for c in bundle.components]
        expected = parts if bundle.ship_as_components else []
        exploded = [(b["item_number"], b["quantity"]) for b in sent[number].get("bundle_lines") or []]
        assert exploded == expected

    # Flow C: DCL ships everything; NetSuite gets one fulfillment with the kits and all their members.
    ship_url = f"{sandbox.url}/_sandbox/dcl/orders/{dcl_order['order_number']}/ship"
    ship = httpx.post(ship_url, json={}, timeout=30)
    assert ship.status_code == 200, ship.text
    driver.settle(ORDER_TO_CASH_SENSORS[2:])
    state = sandbox_state(sandbox.url)
    (fulfillment,) = state["netsuite"]["item_fulfillments"]
    assert fulfillment["createdFrom"] == sales_order["id"] and fulfillment["status"] == "C"
    # Every SO line in full (the non-inventory tax line too: the account fulfils lines by default).
    assert {(line["orderLine"], line["quantity"]) for line in fulfillment["lines"]} == {
        (line["line"], line["quantity"]) for line in sales_order["lines"]
    }
    kit_line_on_fulfillment = {line["orderLine"]: line["line"] for line in fulfillment["lines"]}
    assert sorted(
        (m["orderLine"], m["quantity"], m["kitMemberOf"]) for m in fulfillment["kitMemberLines"]
    ) == sorted((m["line"], m["quantity"], kit_line_on_fulfillment[m["kitMemberOf"]]) for m in members)
    (after,) = state["netsuite"]["sales_orders"]
    every_line = after["lines"] + after["kitMemberLines"]
    assert all(line["quantityFulfilled"] == line["quantity"] for line in every_line)
    assert after["status"] == "G" and len(state["netsuite"]["cash_sales"]) == 1
    (shopify_order,) = state["shopify"]["orders"]
    assert len(shopify_order["fulfillments"]) == 1
    assert not stack["ledger"].exceptions(statuses=["open", "retrying"])

    # Re-runs create nothing.
    before = _counts(state)
    driver.settle(ORDER_TO_CASH_SENSORS)
    assert _counts(sandbox_state(sandbox.url)) == before


def test_a_kit_shipped_in_two_parts_is_fulfilled_in_two_parts_with_its_members(stack):
    sandbox, driver = stack["sandbox"], stack["driver"]
    catalog = sandbox.hub.catalog
    kit = next(b for b in catalog.bundles if b.ship_as_components)
    only_kit = dataclasses.replace(catalog, skus=(catalog.by_sku()[kit.sku],), bundles=())
    order = build_order(only_kit, random.Random(3), line_count=1)
    (kit_quantity,) = [line["quantity"] for line in order["line_items"]]
    assert kit_quantity == 3  # the seed's choice: ship one kit, then two
    httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=order, timeout=30).raise_for_status()
    driver.settle(ORDER_TO_CASH_SENSORS[:2])
    (dcl_order,) = sandbox_state(sandbox.url)["dcl"]["orders"]
    (kit_line,) = [line["line_number"] for line in dcl_order["lines"]]
    ship_url = f"{sandbox.url}/_sandbox/dcl/orders/{dcl_order['order_number']}/ship"

    httpx.post(
        ship_url, json={"lines": [{"line_number": kit_line, "quantity": 1}]}, timeout=30
    ).raise_for_status()
    driver.settle(ORDER_TO_CASH_SENSORS[2:])
    httpx.post(ship_url, json={}, timeout=30).raise_for_status()
    driver.settle(ORDER_TO_CASH_SENSORS[2:])

    state = sandbox_state(sandbox.url)
    fulfillments = state["netsuite"]["item_fulfillments"]
    # (The order's service lines, tax and shipping, ride with the first fulfillment by default.)
    kit_lines = [
        [line["quantity"] for line in f["lines"] if line["orderLine"] == kit_line] for f in fulfillments
    ]
    assert kit_lines == [[1], [2]]
    for fulfillment, kits in zip(fulfillments, (1, 2), strict=True):
        shipped = sorted((m["sku"], m["quantity"]) for m in fulfillment["kitMemberLines"])
        assert shipped == sorted((c.component_sku, c.quantity * kits) for c in kit.components)
    (sales_order,) = state["netsuite"]["sales_orders"]
    every_line = sales_order["lines"] + sales_order["kitMemberLines"]
    assert all(line["quantityFulfilled"] == line["quantity"] for line in every_line)
    assert sales_order["status"] == "G"
    assert not stack["ledger"].exceptions(statuses=["open", "retrying"])

    before = _counts(state)
    driver.settle(ORDER_TO_CASH_SENSORS)
    assert _counts(sandbox_state(sandbox.url)) == before
