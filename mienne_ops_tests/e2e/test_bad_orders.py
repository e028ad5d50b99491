"""The bad-order corpus (issue 13): orders no shop should book, placed in the Shopify fake, through flow
A and B as the daemon runs them.

Each bad order must be quarantined under its own reason — never booked in NetSuite, never sent to DCL
— and none may hold up the good orders placed beside it. The orders go in through the fake's control
plane as REST/webhook JSON (the order factory), so flow A reads them back through GraphQL the way it
reads a real store's.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mienne_ops.devtools.harness import ORDER_TO_CASH_SENSORS, sandbox_state
from mienne_ops.sandbox.order_factory import build_order

pytestmark = pytest.mark.e2e

IMPORT, DISPATCH = ORDER_TO_CASH_SENSORS[:1], ORDER_TO_CASH_SENSORS[1:2]
Order = dict[str, Any]


def _money(bag_owner: dict, field: str, amount: str, currency: str = "USD") -> None:
    """Set a REST money field and its `_set` twin, as Shopify reports both."""
    bag_owner[field] = amount
    money = {"amount": amount, "currency_code": currency}
    bag_owner[f"{field}_set"] = {"shop_money": money, "presentment_money": dict(money)}


def _negative_price(order: Order) -> None:
    _money(order["line_items"][0], "price", "-40.00")


def _negative_shipping(order: Order) -> None:
    shipping = order["shipping_lines"][0]
    _money(shipping, "price", "-5.95")
    _money(shipping, "discounted_price", "-5.95")


def _units(count: int) -> Callable[[Order], None]:
    def spoil(order: Order) -> None:
        line = order["line_items"][0]
        line["quantity"] = line["current_quantity"] = line["fulfillable_quantity"] = count

    return spoil


def _euro(order: Order) -> None:
    order["currency"] = order["presentment_currency"] = "EUR"
    for line in order["line_items"]:
        _money(line, "price", line["price"], "EUR")
    _money(order, "total_price", order["total_price"], "EUR")


def _field(path: str, value: Any) -> Callable[[Order], None]:
    def spoil(order: Order) -> None:
        *parents, leaf = path.split(".")
        target: Any = order
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[leaf] = value

    return spoil


def _no_email(order: Order) -> None:
    order["email"] = None
    order["customer"]["email"] = None
    order.pop("contact_email", None)


def _unmapped_ship_method(order: Order) -> None:
    shipping = order["shipping_lines"][0]
    shipping["code"], shipping["title"] = "dhl-express", "DHL Express Worldwide"


def _gift_card_only(order: Order) -> None:
    for line in order["line_items"]:
        line["gift_card"] = True
        line["requires_shipping"] = False


#: (case, how the good order is spoilt, the reason flow A must give)
CORPUS: list[tuple[str, Callable[[Order], None], str]] = [
    ("negative line price", _negative_price, "negative_amount"),
    ("negative shipping", _negative_shipping, "negative_amount"),
    ("a billion units", _units(1_000_000_000), "absurd_quantity"),
    ("101 units on a line", _units(101), "absurd_quantity"),
    ("an order in euros", _euro, "unexpected_currency"),
    ("unknown SKU", _field("line_items.0.sku", "MN-NOT-A-REAL-SKU"), "unknown_sku"),
    ("line without a SKU", _field("line_items.0.sku", None), "missing_sku"),
    ("no shipping address", _field("shipping_address", None), "missing_shipping_address"),
    ("no email", _no_email, "missing_email"),
    ("not paid", _field("financial_status", "pending"), "not_paid"),
    ("ships to Germany", _field("shipping_address.country_code", "DE"), "unsupported_destination"),
    ("unmapped ship method", _unmapped_ship_method, "unmapped_ship_method"),
    ("gift cards only", _gift_card_only, "no_shippable_lines"),
]


def _place(url: str, payload: Order) -> int:
    response = httpx.post(f"{url}/_sandbox/shopify/orders", json=payload, timeout=30)
    response.raise_for_status()
    return int(response.json()["id"])


def _good_order(sandbox, seed: int) -> Order:
    return build_order(sandbox.hub.catalog, random.Random(seed), line_count=1, gift_card=False)


def test_every_bad_order_is_quarantined_with_its_reason_and_the_good_ones_ship(stack):
    sandbox, driver, ledger = stack["sandbox"], stack["driver"], stack["ledger"]
    good = [_place(sandbox.url, _good_order(sandbox, seed)) for seed in (1, 2)]
    bad: dict[int, tuple[str, str]] = {}
    for seed, (case, spoil, reason) in enumerate(CORPUS, start=100):
        payload = _good_order(sandbox, seed)
        spoil(payload)
        bad[_place(sandbox.url, payload)] = (case, reason)

    driver.settle(IMPORT)
    driver.settle(DISPATCH)

    exceptions = {int(e.key): e for e in ledger.exceptions(flow="A") if e.status == "open"}
    got = {order_id: exceptions[order_id].reason if order_id in exceptions else None for order_id in bad}
    assert got == {order_id: reason for order_id, (_, reason) in bad.items()}, [
        (case, got[order_id]) for order_id, (case, reason) in bad.items() if got[order_id] != reason
    ]
    state = sandbox_state(sandbox.url)
    booked = {so["externalId"] for so in state["netsuite"]["sales_orders"]}
    assert not {f"shopify-order-{order_id}" for order_id in bad} & booked
    assert {f"shopify-order-{order_id}" for order_id in good} <= booked
    shipped_units = [int(line["quantity"]) for order in state["dcl"]["orders"] for line in order["lines"]]
    assert len(state["dcl"]["orders"]) == len(good) and max(shipped_units) <= 100
