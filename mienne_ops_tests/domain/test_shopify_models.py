"""ShopifyOrder parsing from the real REST example payloads and the GraphQL `OrderFields` shape."""

from __future__ import annotations

import json
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest
from graphql import FieldNode, FragmentSpreadNode, parse

from mienne_ops.domain.shopify import ShopifyOrder, gid_to_int

DATA = Path(__file__).parent / "data"


def rest_examples(shopify_fixtures: Path) -> dict[str, dict]:
    doc = json.loads((shopify_fixtures / "rest_examples_2024-04" / "order.json").read_text())
    return {example["test"]: example["response"] for example in doc["examples"]}


def graphql_node() -> dict:
    return json.loads((DATA / "order_450789469_graphql.json").read_text())


def test_rest_example_order_parses_money_lines_and_addresses(shopify_fixtures):
    order = ShopifyOrder.from_rest(rest_examples(shopify_fixtures)["test_8"])

    assert order.id == 450789469
    assert order.gid == "gid://shopify/Order/450789469"
    assert order.name == "#1001"
    assert order.financial_status == "partially_refunded"
    assert order.fulfillment_status is None
    assert order.tags == []
    assert order.total_price == Decimal("598.94")
    assert order.total_tax == Decimal("11.94")
    assert [line.sku for line in order.line_items] == ["IPOD2008GREEN", "IPOD2008RED", "IPOD2008BLACK"]
    # `total_discount` says 0.00 in the payload; the allocations (3.34/3.33/3.33) are what was charged.
    assert [line.total_discount for line in order.line_items] == [
        Decimal("3.34"),
        Decimal("3.33"),
        Decimal("3.33"),
    ]
    assert [line.current_quantity for line in order.line_items] == [0, 1, 0]
    assert order.line_items[0].tax_lines[0].rate == Decimal("0.06")
    assert order.shipping_lines[0].code == "Free Shipping"
    assert order.shipping_address.province_code == "KY"
    assert order.shipping_address.is_shippable
    assert order.customer.id == 207119551


def test_wrapped_and_bare_rest_payloads_are_the_same_order(shopify_fixtures):
    wrapped = rest_examples(shopify_fixtures)["test_8"]
    assert ShopifyOrder.from_rest(wrapped) == ShopifyOrder.from_rest(wrapped["order"])


def test_rest_tags_string_is_split_and_trimmed(shopify_fixtures):
    payload = dict(rest_examples(shopify_fixtures)["test_8"]["order"], tags="vip, wholesale ,, gift")
    assert ShopifyOrder.from_rest(payload).tags == ["vip", "wholesale", "gift"]


def test_old_python_client_fixture_without_set_bags_parses(shopify_fixtures):
    order = ShopifyOrder.from_rest(json.loads((shopify_fixtures / "order.json").read_text()))
    assert order.financial_status == "authorized"
    assert order.total_price == Decimal("409.94")
    assert order.tags == []  # the old fixture has no tags key at all
    assert all(line.current_quantity == line.quantity for line in order.line_items)


@pytest.mark.parametrize("test_name", ["test_6", "test_16", "test_19", "test_23", "test_24"])
def test_every_full_rest_example_order_parses(shopify_fixtures, test_name):
    response = rest_examples(shopify_fixtures)[test_name]
    raw = response["order"] if "order" in response else response["orders"][0]
    order = ShopifyOrder.from_rest(raw)
    assert order.total_price == Decimal(raw["total_price"])
    assert len(order.line_items) == len(raw["line_items"])


def test_graphql_node_and_rest_payload_give_equal_models(shopify_fixtures):
    from_rest = ShopifyOrder.from_rest(rest_examples(shopify_fixtures)["test_8"])
    from_graphql = ShopifyOrder.from_graphql(graphql_node())
    # Order risk is a field of the GraphQL order only (REST serves it at its own endpoint).
    assert from_graphql.risk == {"recommendation": "ACCEPT", "assessments": [{"riskLevel": "LOW"}]}
    assert from_graphql.model_copy(update={"risk": None}) == from_rest


def test_graphql_enums_and_email_fallback():
    node = graphql_node()
    node.update(displayFinancialStatus="PAID", displayFulfillmentStatus="PARTIALLY_FULFILLED", email=None)
    order = ShopifyOrder.from_graphql(node)
    assert order.financial_status == "paid"
    assert order.fulfillment_status == "partial"
    assert order.email == "bob.norman@mail.example.com"  # from customer.defaultEmailAddress

    node["displayFulfillmentStatus"] = "FULFILLED"
    assert ShopifyOrder.from_graphql(node).fulfillment_status == "fulfilled"


def test_gift_card_amount_counts_only_successful_gift_card_sales():
    node = graphql_node()
    money = {"shopMoney": {"amount": "25.00", "currencyCode": "USD"}}
    node["transactions"] = [
        {"id": "gid://shopify/OrderTransaction/1", "kind": "SALE", "status": "SUCCESS",
         "gateway": "gift_card", "amountSet": money},
        {"id": "gid://shopify/OrderTransaction/2", "kind": "SALE", "status": "FAILURE",
         "gateway": "gift_card", "amountSet": money},
        {"id": "gid://shopify/OrderTransaction/3", "kind": "SALE", "status": "SUCCESS",
         "gateway": "shopify_payments", "amountSet": money},
    ]  # fmt: skip
    assert ShopifyOrder.from_graphql(node).gift_card_amount == Decimal("25.00")


def test_gid_to_int():
    assert gid_to_int("gid://shopify/LineItem/466157049") == 466157049
    assert gid_to_int("gid://shopify/Order/1?x=y") == 1
    assert gid_to_int(None) is None


def _fragment_fields(document, name: str) -> dict:
    fragments = {d.name.value: d for d in document.definitions}

    def shape(selection_set) -> dict:
        fields: dict = {}
        for selection in selection_set.selections:
            if isinstance(selection, FragmentSpreadNode):
                fields.update(shape(fragments[selection.name.value].selection_set))
            elif isinstance(selection, FieldNode):
                sub = selection.selection_set
                fields[selection.name.value] = shape(sub) if sub else None
        return fields

    return shape(fragments[name].selection_set)


def _assert_matches_selection(value, selection: dict | None, path: str) -> None:
    if selection is None or value is None:
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _assert_matches_selection(item, selection, f"{path}[{i}]")
        return
    assert set(value) == set(selection), f"{path}: keys differ from the OrderFields selection"
    for key, sub in selection.items():
        _assert_matches_selection(value[key], sub, f"{path}.{key}")


def test_graphql_test_node_is_exactly_the_order_fields_selection():
    """Keeps the hand-built GraphQL node honest: same keys as the fragment the client sends."""
    text = resources.files("mienne_ops.integrations.graphql").joinpath("order_fields.graphql").read_text()
    _assert_matches_selection(graphql_node(), _fragment_fields(parse(text), "OrderFields"), "order")
