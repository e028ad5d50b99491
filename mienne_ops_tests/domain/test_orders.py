"""Flow A mapping: Shopify order -> NetSuite sales order plan, on the real REST example payloads."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mienne_ops.domain.orders import (
    OrderMappingConfig,
    customer_external_id,
    customer_record,
    plan_sales_order,
    sales_order_external_id,
    validate_order,
)
from mienne_ops.domain.shopify import ShopifyOrder
from mienne_ops.errors import InvalidRecordError, PermanentError

CONFIG = OrderMappingConfig(
    sku_item_ids={"IPOD2008GREEN": 101, "IPOD2008RED": 102, "IPOD2008BLACK": 103, "IPOD2009BLACK": 104},
    ship_methods={"Free Shipping": 7, "express": 9},
    location_id=1,
    tax_item_id=-8,
    gift_card_item_id=55,
    gift_card_sale_item_id=56,
    tip_item_id=57,
    duty_item_id=58,
    rounding_item_id=59,
    total_tolerance=Decimal("0.01"),
)


def rest_order(shopify_fixtures: Path, test_name: str = "test_8") -> dict:
    doc = json.loads((shopify_fixtures / "rest_examples_2024-04" / "order.json").read_text())
    response = next(e["response"] for e in doc["examples"] if e["test"] == test_name)
    return copy.deepcopy(response["order"])


def paid_full_order(shopify_fixtures: Path) -> dict:
    """Order #1001 as placed: paid, every line still at its ordered quantity."""
    payload = rest_order(shopify_fixtures)
    payload["financial_status"] = "paid"
    for line in payload["line_items"]:
        line["current_quantity"] = line["quantity"]
        line["fulfillable_quantity"] = line["quantity"]
    # As placed: Shopify's current totals are the original ones (the real #1001 was refunded later).
    for name in ("total_price", "total_tax"):
        payload[f"current_{name}"] = payload[name]
        payload[f"current_{name}_set"] = copy.deepcopy(payload[f"{name}_set"])
    return payload


def reason_of(payload: dict, config: OrderMappingConfig = CONFIG) -> str:
    with pytest.raises(InvalidRecordError) as caught:
        plan_sales_order(ShopifyOrder.from_rest(payload), config)
    return caught.value.reason


def test_ids_are_stable_and_guest_ids_hash_the_email(shopify_fixtures):
    assert sales_order_external_id(450789469) == "shopify-order-450789469"
    payload = paid_full_order(shopify_fixtures)
    assert customer_external_id(ShopifyOrder.from_rest(payload)) == "shopify-customer-207119551"

    payload["customer"] = None
    guest = customer_external_id(ShopifyOrder.from_rest(payload))
    payload["email"] = "  BOB.Norman@mail.example.com "
    assert customer_external_id(ShopifyOrder.from_rest(payload)) == guest
    assert guest.startswith("shopify-guest-") and len(guest) == len("shopify-guest-") + 16
    assert "bob" not in guest


def test_plan_carries_discount_allocations_and_shopify_tax(shopify_fixtures):
    plan = plan_sales_order(ShopifyOrder.from_rest(paid_full_order(shopify_fixtures)), CONFIG)

    assert plan.external_id == "shopify-order-450789469"
    assert [(line.sku, line.item_id, line.quantity) for line in plan.lines] == [
        ("IPOD2008GREEN", 101, 1),
        ("IPOD2008RED", 102, 1),
        ("IPOD2008BLACK", 103, 1),
    ]
    assert [line.amount for line in plan.lines] == [Decimal("195.66"), Decimal("195.67"), Decimal("195.67")]
    assert plan.tax_total == Decimal("11.94")  # Shopify's order tax, not 6% recomputed
    assert plan.shipping_total == Decimal("0.00")
    assert plan.expected_total == Decimal("598.94")
    assert plan.ship_method_id == 7
    assert plan.customer.first_name == "Bob"


def test_record_is_the_netsuite_sales_order_body(shopify_fixtures):
    plan = plan_sales_order(ShopifyOrder.from_rest(paid_full_order(shopify_fixtures)), CONFIG)
    body = plan.record("110")

    json.dumps(body)  # must be plain JSON
    assert body["entity"] == {"id": "110"}
    assert body["tranDate"] == "2008-01-10"
    assert body["otherRefNum"] == "#1001"
    assert body["orderStatus"] == {"id": "B"}
    assert body["location"] == {"id": "1"}
    assert body["shipMethod"] == {"id": "7"}
    assert body["shippingCost"] == 0.0
    assert body["custbody_sent_to_3pl"] is False
    assert body["custbody_shopify_order_id"] == "450789469"
    assert body["shippingAddress"] == {
        "addressee": "Bob Norman",
        "attention": "",
        "addr1": "Chestnut Street 92",
        "addr2": "",
        "city": "Louisville",
        "state": "KY",
        "zip": "40202",
        "country": {"id": "US"},
        "addrPhone": "+1(502)-459-2181",
    }
    items = body["item"]["items"]
    assert items[0] == {
        "item": {"id": "101"},
        "quantity": 1,
        "rate": 195.66,
        "amount": 195.66,
        "location": {"id": "1"},
        "custcol_shopify_line_id": "466157049",
        "custcol_dcl_quantity": 1,
    }
    assert items[-1]["item"] == {"id": "-8"} and items[-1]["amount"] == 11.94
    assert round(sum(i["amount"] for i in items) + body["shippingCost"], 2) == 598.94


def test_customer_record(shopify_fixtures):
    plan = plan_sales_order(ShopifyOrder.from_rest(paid_full_order(shopify_fixtures)), CONFIG)
    assert customer_record(plan.customer) == {
        "email": "bob.norman@mail.example.com",
        "firstName": "Bob",
        "lastName": "Norman",
        "isPerson": True,
    }


def test_removed_quantities_reconcile_with_the_current_total(shopify_fixtures):
    """The real #1001 has two of three lines refunded away (current_quantity 0)."""
    config = CONFIG.model_copy(update={"paid_statuses": {"paid", "partially_refunded"}})
    payload = rest_order(shopify_fixtures)
    plan = plan_sales_order(ShopifyOrder.from_rest(payload), config)

    assert [line.sku for line in plan.lines] == ["IPOD2008RED"]
    assert plan.tax_total == Decimal("3.98")
    # Shopify's own current_total_price for this order after the refunds.
    assert plan.expected_total == Decimal(payload["current_total_price"])


def test_gift_card_is_a_negative_payment_line(shopify_fixtures):
    payload = paid_full_order(shopify_fixtures)
    payload["transactions"] = [
        {"kind": "sale", "status": "success", "gateway": "gift_card", "amount": "50.00"},
        {"kind": "sale", "status": "success", "gateway": "bogus", "amount": "548.94"},
    ]
    plan = plan_sales_order(ShopifyOrder.from_rest(payload), CONFIG)
    assert plan.gift_card_total == Decimal("50.00")
    assert plan.expected_total == Decimal("548.94")
    gift_line = plan.record("1")["item"]["items"][-1]
    assert gift_line["item"] == {"id": "55"} and gift_line["amount"] == -50.0


def test_rate_times_quantity_is_the_amount_and_the_remainder_is_a_rounding_line(shopify_fixtures):
    payload = rest_order(shopify_fixtures, "test_23")  # paid, 199.00 less a 17.91 allocation
    payload["line_items"][0].update(quantity=3, current_quantity=3, fulfillable_quantity=3)
    payload["line_items"][0]["price_set"]["shop_money"]["amount"] = "60.00"
    payload["line_items"][0]["discount_allocations"][0]["amount_set"]["shop_money"]["amount"] = "20.00"
    payload["current_total_price_set"]["shop_money"]["amount"] = "160.00"
    payload["shipping_lines"] = [{"code": "express", "title": "Express", "price": "0.00"}]
    plan = plan_sales_order(ShopifyOrder.from_rest(payload), CONFIG)
    line = plan.lines[0]
    # NetSuite keeps rate × quantity: 53.33 × 3 = 159.99, and the cent is on the rounding line.
    assert (line.rate, line.quantity, line.amount) == (Decimal("53.33"), 3, Decimal("159.99"))
    assert plan.rounding == Decimal("0.01")
    items = plan.record("1")["item"]["items"]
    assert items[-1] == {"item": {"id": "59"}, "quantity": 1, "rate": 0.01, "amount": 0.01}
    assert round(sum(i["amount"] for i in items), 2) == 160.00


def test_taxes_included_lines_are_net_of_their_tax(shopify_fixtures):
    payload = paid_full_order(shopify_fixtures)
    payload["taxes_included"] = True
    payload["current_total_price_set"]["shop_money"]["amount"] = "587.00"  # 597 − 10, tax inside
    plan = plan_sales_order(ShopifyOrder.from_rest(payload), CONFIG)
    assert [line.amount for line in plan.lines] == [Decimal("191.68"), Decimal("191.69"), Decimal("191.69")]
    assert plan.expected_total == Decimal("587.00")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda o: o.update(cancelled_at="2008-01-11T11:00:00-05:00"), "cancelled"),
        (lambda o: o.update(financial_status="pending"), "not_paid"),
        (lambda o: o.update(fulfillment_status="fulfilled"), "already_fulfilled"),
        (lambda o: o.update(shipping_address=None), "missing_shipping_address"),
        (lambda o: o["shipping_address"].update(address1=""), "missing_shipping_address"),
        (
            lambda o: (o.update(email=None, contact_email=None), o["customer"].update(email=None)),
            "missing_email",
        ),
        (lambda o: [li.update(current_quantity=0) for li in o["line_items"]], "zero_quantity"),
        (lambda o: [li.update(requires_shipping=False) for li in o["line_items"]], "no_shippable_lines"),
        (lambda o: o["line_items"][1].update(sku=None), "missing_sku"),
        (lambda o: o["current_total_price_set"]["shop_money"].update(amount="598.96"), "total_mismatch"),
    ],
)
def test_validation_reasons(shopify_fixtures, change, reason):
    payload = paid_full_order(shopify_fixtures)
    change(payload)
    assert reason_of(payload) == reason


def test_unknown_sku_lists_the_skus_and_names_the_order_without_pii(shopify_fixtures):
    payload = paid_full_order(shopify_fixtures)
    payload["line_items"][0]["sku"] = "NOT-IN-NETSUITE"
    payload["line_items"][2]["sku"] = "ALSO-MISSING"
    with pytest.raises(InvalidRecordError) as caught:
        plan_sales_order(ShopifyOrder.from_rest(payload), CONFIG)
    error = caught.value
    assert isinstance(error, PermanentError)
    assert error.reason == "unknown_sku"
    assert "ALSO-MISSING" in str(error) and "NOT-IN-NETSUITE" in str(error)
    assert "#1001" in str(error)
    assert "bob" not in str(error).lower() and "Chestnut" not in str(error)


def test_total_mismatch_names_both_amounts(shopify_fixtures):
    """The old python-client fixture has lines worth 597.00 but a total of 409.94."""
    payload = json.loads((shopify_fixtures / "order.json").read_text())
    payload["order"]["financial_status"] = "paid"
    with pytest.raises(InvalidRecordError) as caught:
        validate_order(ShopifyOrder.from_rest(payload), CONFIG)
    assert caught.value.reason == "total_mismatch"
    assert "608.94" in str(caught.value) and "409.94" in str(caught.value)


def test_gift_card_only_order_has_no_shippable_lines(shopify_fixtures):
    payload = paid_full_order(shopify_fixtures)
    for line in payload["line_items"]:
        line["gift_card"] = True
    assert reason_of(payload) == "no_shippable_lines"


def test_ship_method_by_lower_cased_title_and_an_unmapped_one_is_an_exception(shopify_fixtures):
    payload = paid_full_order(shopify_fixtures)
    payload["shipping_lines"][0].update(code="EXP-2D", title="Express")
    assert plan_sales_order(ShopifyOrder.from_rest(payload), CONFIG).ship_method_id == 9
    payload["shipping_lines"][0].update(code="other", title="Other")
    assert reason_of(payload) == "unmapped_ship_method"  # never a silent default method


# --- property: any internally consistent order reconciles ---------------------------------------

money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500"), places=2)


@st.composite
def consistent_orders(draw) -> dict:
    taxes_included = draw(st.booleans())
    lines, grand = [], Decimal("0")
    for index in range(draw(st.integers(1, 5))):
        quantity = draw(st.integers(1, 7))
        price = draw(money)
        gross = price * quantity
        discount = draw(st.decimals(min_value=0, max_value=gross, places=2))
        tax = draw(st.decimals(min_value=0, max_value=Decimal("40"), places=2))
        lines.append({
            "id": 1000 + index, "sku": f"SKU-{index}", "title": "x", "quantity": quantity,
            "current_quantity": quantity, "price": str(price), "requires_shipping": True,
            "discount_allocations": [{"amount": str(discount)}],
            "tax_lines": [{"title": "Tax", "rate": 0.1, "price": str(tax)}],
        })  # fmt: skip
        grand += gross - discount + (Decimal(0) if taxes_included else tax)
    shipping = draw(st.decimals(min_value=0, max_value=Decimal("30"), places=2))
    gift = draw(st.decimals(min_value=0, max_value=grand, places=2))
    tax_total = sum(Decimal(line["tax_lines"][0]["price"]) for line in lines)
    return {
        "id": 42, "name": "#42", "email": "a@example.com", "created_at": "2026-01-01T00:00:00Z",
        "financial_status": "paid", "taxes_included": taxes_included, "currency": "USD",
        "shipping_address": {"address1": "1 Main St", "city": "Austin", "country_code": "US"},
        "line_items": lines, "total_tax": str(tax_total), "total_price": str(grand + shipping),
        "shipping_lines": [{"code": "std", "title": "Standard", "price": str(shipping), "tax_lines": []}],
        "transactions": [{"kind": "sale", "status": "success", "gateway": "gift_card", "amount": str(gift)}],
    }  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(consistent_orders())
def test_consistent_orders_always_reconcile(payload):
    config = OrderMappingConfig(
        sku_item_ids={line["sku"]: i for i, line in enumerate(payload["line_items"])},
        ship_methods={"std": 1},
        location_id=1,
        tax_item_id=2,
        gift_card_item_id=3,
        gift_card_sale_item_id=4,
        tip_item_id=5,
        duty_item_id=6,
        rounding_item_id=7,
        total_tolerance=Decimal("0"),
    )
    plan = plan_sales_order(ShopifyOrder.from_rest(payload), config)
    gift = Decimal(payload["transactions"][0]["amount"])
    assert plan.expected_total + gift == Decimal(payload["total_price"])
    for line in plan.lines:
        assert line.rate * line.quantity == line.amount  # what NetSuite recomputes
    body = plan.record("1")
    amounts = [Decimal(str(item["amount"])) for item in body["item"]["items"]]
    booked = sum(amounts) + Decimal(str(body["shippingCost"]))
    assert booked == plan.expected_total
