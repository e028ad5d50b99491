"""Flows A and B against the sandbox for the orders that break naive mappings (issue 7, items 5-6).

Each order goes in through the Shopify fake's control plane as REST/webhook JSON (the order factory),
flow A reads it back through GraphQL, and the sensors run as the daemon would. Checked: a partially
fulfilled order reaches DCL with only its unfulfilled lines; a test order is skipped; an order edited
before dispatch updates its sales order and ships the edited lines; an edit after dispatch is an
exception with both versions; NetSuite's own total is compared with Shopify's after the upsert.
"""

from __future__ import annotations

import random
from decimal import Decimal

import httpx
import pytest

from mienne_ops import settings
from mienne_ops.business_rules import BusinessRules
from mienne_ops.devtools.harness import ORDER_TO_CASH_SENSORS, sandbox_state
from mienne_ops.domain.journey import Stage
from mienne_ops.resources import build_resources
from mienne_ops.sandbox.order_factory import build_order, money
from mienne_ops.sync.catalog import NetSuiteCatalog
from mienne_ops.sync.orders import OrderIngestor, mapping_config
from mienne_ops_tests.support import new_ledger

pytestmark = pytest.mark.e2e

IMPORT, DISPATCH = ORDER_TO_CASH_SENSORS[:1], ORDER_TO_CASH_SENSORS[1:2]


def _place(url: str, payload: dict) -> dict:
    response = httpx.post(f"{url}/_sandbox/shopify/orders", json=payload, timeout=30)
    response.raise_for_status()
    return response.json()


def _sales_order(url: str, order_id: int) -> dict | None:
    external_id = f"shopify-order-{order_id}"
    return next(
        (so for so in sandbox_state(url)["netsuite"]["sales_orders"] if so["externalId"] == external_id), None
    )


def _dcl_order(url: str, order_number: str) -> dict | None:
    return next((o for o in sandbox_state(url)["dcl"]["orders"] if o["order_number"] == order_number), None)


def _quantities(lines: list[dict], sku_key: str, quantity_key: str) -> dict[str, int]:
    return {line[sku_key]: int(float(line[quantity_key])) for line in lines if line.get(sku_key)}


def _open_exception(ledger, key: str):
    return next((e for e in ledger.exceptions(flow="A") if e.key == key and e.status == "open"), None)


def test_partially_fulfilled_order_reaches_dcl_with_only_its_unfulfilled_lines(stack):
    sandbox, driver = stack["sandbox"], stack["driver"]
    payload = build_order(sandbox.hub.catalog, random.Random(71), line_count=3, gift_card=False,
                          fulfilled_elsewhere=1)  # fmt: skip
    placed = _place(sandbox.url, payload)
    skus = [line["sku"] for line in payload["line_items"]]

    driver.settle(IMPORT)
    driver.settle(DISPATCH)

    so = _sales_order(sandbox.url, placed["id"])
    assert so is not None and so["custbody_sent_to_3pl"] is True
    # All three lines are sold and booked; the one fulfilled at the POS stays on the sales order.
    assert set(_quantities(so["lines"], "sku", "quantity")) >= set(skus)
    dcl = _dcl_order(sandbox.url, so["tranId"])
    assert {line["item_number"] for line in dcl["lines"]} == set(skus[1:])


def test_test_orders_are_skipped_and_never_reach_netsuite(stack):
    sandbox, driver, ledger = stack["sandbox"], stack["driver"], stack["ledger"]
    placed = _place(sandbox.url, build_order(sandbox.hub.catalog, random.Random(3), test=True))

    driver.settle(IMPORT)

    assert _sales_order(sandbox.url, placed["id"]) is None
    assert ledger.journey(str(placed["id"])).stage == Stage.TEST_SKIPPED
    assert _open_exception(ledger, str(placed["id"])) is None  # skipped on purpose, not a problem


def test_edit_before_dispatch_updates_the_sales_order_and_dcl_ships_the_edit(stack):
    sandbox, driver, ledger = stack["sandbox"], stack["driver"], stack["ledger"]
    catalog = sandbox.hub.catalog
    payload = build_order(catalog, random.Random(5), line_count=2, gift_card=False)
    for line in payload["line_items"]:
        line.update(quantity=2, current_quantity=2, fulfillable_quantity=2)
    _fix_totals(payload)
    placed = _place(sandbox.url, payload)
    driver.settle(IMPORT)
    before = _sales_order(sandbox.url, placed["id"])
    assert before is not None

    order = httpx.get(f"{sandbox.url}/_sandbox/state", timeout=60).json()["shopify"]["orders"]
    stored = next(o for o in order if o["id"] == placed["id"])
    first, second = stored["line_items"]
    added = next(s for s in catalog.sellable_skus() if s.sku not in {first["sku"], second["sku"]})
    edit = {"line_items": [{"id": first["id"], "quantity": 1}, {"id": second["id"], "quantity": 0}],
            "add": [{"sku": added.sku, "quantity": 1}]}  # fmt: skip
    httpx.post(
        f"{sandbox.url}/_sandbox/shopify/orders/{placed['id']}/edit", json=edit, timeout=30
    ).raise_for_status()

    driver.settle(IMPORT)
    after = _sales_order(sandbox.url, placed["id"])
    assert after["id"] == before["id"]  # the same sales order, upserted by external id
    booked = _quantities(after["lines"], "sku", "quantity")
    assert booked.get(first["sku"]) == 1 and second["sku"] not in booked and booked.get(added.sku) == 1
    assert _open_exception(ledger, str(placed["id"])) is None

    driver.settle(DISPATCH)
    dcl = _dcl_order(sandbox.url, after["tranId"])
    assert second["sku"] not in {line["item_number"] for line in dcl["lines"]}


def test_edit_after_dispatch_is_an_exception_with_old_and_new_lines(stack):
    sandbox, driver, ledger = stack["sandbox"], stack["driver"], stack["ledger"]
    payload = build_order(sandbox.hub.catalog, random.Random(9), line_count=2, gift_card=False)
    placed = _place(sandbox.url, payload)
    driver.settle(IMPORT)
    driver.settle(DISPATCH)
    so = _sales_order(sandbox.url, placed["id"])
    assert so["custbody_sent_to_3pl"] is True

    first = payload["line_items"][0]
    stored = next(o for o in sandbox_state(sandbox.url)["shopify"]["orders"] if o["id"] == placed["id"])
    edit = {"line_items": [{"id": stored["line_items"][0]["id"], "quantity": 0}]}
    httpx.post(
        f"{sandbox.url}/_sandbox/shopify/orders/{placed['id']}/edit", json=edit, timeout=30
    ).raise_for_status()
    driver.settle(IMPORT)

    problem = _open_exception(ledger, str(placed["id"]))
    assert problem is not None and problem.reason == "edited_after_dispatch"
    assert "old lines" in problem.message and first["sku"] in problem.message
    # The sales order DCL is shipping is left as it was.
    assert _quantities(_sales_order(sandbox.url, placed["id"])["lines"], "sku", "quantity") == _quantities(
        so["lines"], "sku", "quantity"
    )


def test_netsuite_total_is_compared_with_shopifys_after_the_upsert(sandbox, state_dir, monkeypatch):
    """A misnamed shipping-cost field is dropped by NetSuite: its total then lacks the shipping."""
    monkeypatch.setenv("MIENNE_SANDBOX_URL", sandbox.url)
    payload = build_order(sandbox.hub.catalog, random.Random(12), line_count=1, gift_card=False)
    payload["shipping_lines"][0].update(price="7.00", discounted_price="7.00", tax_lines=[])
    _fix_totals(payload)
    placed = _place(sandbox.url, payload)
    resources = build_resources(retry_base_delay_seconds=0.02, max_attempts=3)
    ledger = new_ledger(settings.ledger_url())
    try:
        with _clients(resources) as (shopify, netsuite, stateset):
            rules = BusinessRules()
            mapping = mapping_config(rules, NetSuiteCatalog.load(netsuite).item_ids)
            misconfigured = mapping.model_copy(update={"shipping_cost_field": "shippingcost"})
            ingestor = OrderIngestor(shopify, netsuite, stateset, ledger, misconfigured)
            with pytest.raises(Exception) as caught:
                ingestor.ingest(str(placed["id"]))
    finally:
        ledger.dispose()
    assert getattr(caught.value, "reason", None) == "netsuite_total_mismatch"
    assert "Shopify's current total" in str(caught.value)


# --- helpers ---------------------------------------------------------------------------------------


def _fix_totals(payload: dict) -> None:
    """Recompute an order factory payload's totals after its lines were changed by a test."""
    lines, zero = payload["line_items"], Decimal(0)
    subtotal = sum((Decimal(li["price"]) * li["quantity"] for li in lines), zero)
    discounts = sum((Decimal(a["amount"]) for li in lines for a in li["discount_allocations"]), zero)
    tax = sum((Decimal(t["price"]) for li in lines for t in li["tax_lines"]), zero)
    tax += sum(
        (Decimal(t["price"]) for s in payload["shipping_lines"] for t in s.get("tax_lines") or []), zero
    )
    shipping = sum((Decimal(s["price"]) for s in payload["shipping_lines"]), zero)
    total = subtotal - discounts + shipping + (Decimal(0) if payload["taxes_included"] else tax)
    payload.update(
        total_line_items_price=money(subtotal), subtotal_price=money(subtotal - discounts),
        total_discounts=money(discounts), total_tax=money(tax), total_price=money(total),
        total_price_set={"shop_money": {"amount": money(total), "currency_code": "USD"},
                         "presentment_money": {"amount": money(total), "currency_code": "USD"}},
        transactions=[{"kind": "sale", "status": "success", "gateway": "shopify_payments",
                       "amount": money(total)}],
    )  # fmt: skip


class _clients:
    """The three clients flow A uses, from the sandbox resources, closed on exit."""

    def __init__(self, resources: dict) -> None:
        self.resources = resources
        self.managers = []

    def __enter__(self):
        clients = []
        for name in ("shopify", "netsuite", "stateset"):
            manager = self.resources[name].process_config_and_initialize_cm()
            self.managers.append(manager)
            clients.append(manager.__enter__().client)
        return clients

    def __exit__(self, *exc):
        for manager in reversed(self.managers):
            manager.__exit__(*exc)


def test_the_fakes_edit_refuses_quantities_shopify_would_refuse(sandbox):
    payload = build_order(sandbox.hub.catalog, random.Random(4), line_count=2, fulfilled_elsewhere=1)
    placed = _place(sandbox.url, payload)
    stored = next(o for o in sandbox_state(sandbox.url)["shopify"]["orders"] if o["id"] == placed["id"])
    fulfilled, open_line = stored["line_items"]
    url = f"{sandbox.url}/_sandbox/shopify/orders/{placed['id']}/edit"
    below_fulfilled = {"line_items": [{"id": fulfilled["id"], "quantity": 0}]}
    above_ordered = {"line_items": [{"id": open_line["id"], "quantity": open_line["quantity"] + 1}]}
    assert httpx.post(url, json=below_fulfilled, timeout=30).status_code == 422
    assert httpx.post(url, json=above_ordered, timeout=30).status_code == 422
    assert httpx.post(f"{sandbox.url}/_sandbox/shopify/orders/1/edit", json={}, timeout=30).status_code == 404


def test_an_edit_that_cannot_be_booked_holds_the_order_back_from_dcl(stack):
    """Edited to contain a SKU NetSuite does not know: the old sales order must not ship meanwhile."""
    sandbox, driver, ledger = stack["sandbox"], stack["driver"], stack["ledger"]
    placed = _place(sandbox.url, build_order(sandbox.hub.catalog, random.Random(21), line_count=1))
    driver.settle(IMPORT)
    edit = {"add": [{"sku": "MN-NOT-IN-NETSUITE", "title": "Mystery", "price": "10.00", "quantity": 1}]}
    httpx.post(
        f"{sandbox.url}/_sandbox/shopify/orders/{placed['id']}/edit", json=edit, timeout=30
    ).raise_for_status()
    driver.settle(IMPORT)
    problem = _open_exception(ledger, str(placed["id"]))
    assert problem is not None and problem.reason == "unknown_sku"

    driver.settle(DISPATCH)
    so = _sales_order(sandbox.url, placed["id"])
    assert so["custbody_sent_to_3pl"] is False and _dcl_order(sandbox.url, so["tranId"]) is None


def test_an_order_of_55_lines_is_booked_and_shipped_whole(stack):
    """50 paid lines and 5 free gifts: every line is read (paged), booked, and sent to DCL."""
    sandbox, driver, ledger = stack["sandbox"], stack["driver"], stack["ledger"]
    payload = build_order(sandbox.hub.catalog, random.Random(55), line_count=55, gift_card=False)
    for line in payload["line_items"][50:]:  # the gifts: fully discounted, untaxed
        line["discount_allocations"] = [{"amount": money(Decimal(line["price"]) * line["quantity"])}]
        line["tax_lines"] = []
    _fix_totals(payload)
    placed = _place(sandbox.url, payload)

    driver.settle(IMPORT)
    driver.settle(DISPATCH)

    assert _open_exception(ledger, str(placed["id"])) is None
    so = _sales_order(sandbox.url, placed["id"])
    ordered = _quantities(payload["line_items"], "sku", "quantity")
    booked = _quantities(so["lines"], "sku", "quantity")
    assert {sku: booked.get(sku) for sku in ordered} == ordered
    dcl = _dcl_order(sandbox.url, so["tranId"])
    assert _quantities(dcl["lines"], "item_number", "quantity") == ordered
