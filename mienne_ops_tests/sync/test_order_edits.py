"""Which `orders/updated` deliveries are edits: a refund lowers a line's current quantity but is no
edit (flow F books it), a removed or added line is (real payload shapes: Shopify's order and refund)."""

from __future__ import annotations

import copy
import json

from mienne_ops.sync.orders import edit_pending


def _order(shopify_fixtures) -> dict:
    data = json.loads((shopify_fixtures / "order.json").read_text())
    return data.get("order", data)


def _recorded(order: dict) -> list[dict]:
    return [{"sku": line["sku"], "quantity": line["quantity"]} for line in order["line_items"]]


def _refund(shopify_fixtures) -> dict:
    return json.loads((shopify_fixtures / "refund.json").read_text())["refund"]


def _after(order: dict, refund: dict) -> dict:
    """The order as `orders/updated` shows it after the refund: current quantities lowered."""
    refunded = {item["line_item_id"]: item["quantity"] for item in refund["refund_line_items"]}
    updated = copy.deepcopy(order)
    for line in updated["line_items"]:
        line["current_quantity"] = line["quantity"] - refunded.get(line["id"], 0)
    updated["refunds"] = [refund]
    return updated


def test_refunded_units_are_not_an_edit(shopify_fixtures):
    order = _order(shopify_fixtures)
    refund = _refund(shopify_fixtures)
    assert len(refund["refund_line_items"]) == 2
    assert not edit_pending(_after(order, refund), _recorded(order))


def test_a_removed_line_is_an_edit_even_beside_a_refund(shopify_fixtures):
    order = _order(shopify_fixtures)
    recorded = _recorded(order)
    updated = copy.deepcopy(order)
    for line in updated["line_items"]:
        line["current_quantity"] = 0 if line["id"] == 466157049 else line["quantity"]
    assert edit_pending(updated, recorded)
    refunded = _after(order, _refund(shopify_fixtures))
    for line in refunded["line_items"]:
        if line["id"] == 518995019:  # not refunded, removed by an edit
            line["current_quantity"] = 0
    assert edit_pending(refunded, recorded)
