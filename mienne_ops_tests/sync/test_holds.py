"""HoldKeeper against the sandbox: the ledger and Shopify's fulfillment-order holds agree, both ways."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mienne_ops import settings
from mienne_ops.domain.holds import HoldPolicy, HoldReason
from mienne_ops.domain.shopify import ShopifyOrder
from mienne_ops.integrations.http import HttpCore, RetryPolicy
from mienne_ops.integrations.shopify import ShopifyClient
from mienne_ops.sandbox import credentials
from mienne_ops.sync.holds import HoldKeeper, shopify_handle
from mienne_ops_tests.support import new_ledger


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def keeper(sandbox, state_dir):
    core = HttpCore(
        "shopify",
        f"{sandbox.url}/shopify",
        headers={"X-Shopify-Access-Token": credentials.SHOPIFY["access_token"]},
        retry=RetryPolicy(max_attempts=4, base_delay=0.01),
    )
    ledger = new_ledger(settings.ledger_url())
    keeper = HoldKeeper(ShopifyClient(core), ledger, HoldPolicy(fraud_hold_level="HIGH"), clock=Clock())
    yield keeper
    ledger.dispose()
    core.close()


def place(keeper: HoldKeeper, sandbox, **order) -> ShopifyOrder:
    """An order placed in the sandbox, read back as flow A reads it (risk included)."""
    order.setdefault("line_items", [{"sku": "MN-SERUM-001", "quantity": 1}])
    created = httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=order, timeout=30).json()
    return ShopifyOrder.from_graphql(keeper.shopify.get_order(int(created["id"])))


def shopify_handles(keeper: HoldKeeper, key: str) -> set[str]:
    return {h["handle"] for fo in keeper.shopify.fulfillment_orders(int(key)) for h in fo["holds"]}


def test_a_new_risky_order_is_held_in_the_ledger_and_in_shopify_until_each_hold_is_released(keeper, sandbox):
    order = place(keeper, sandbox, risk={"level": "HIGH"})
    key = str(order.id)
    active = keeper.evaluate(key, order)
    assert {h.reason for h in active} == {HoldReason.EDIT_WINDOW, HoldReason.FRAUD_RISK}
    assert shopify_handles(keeper, key) == {shopify_handle(HoldReason.EDIT_WINDOW), "mienne-fraud_risk"}
    assert keeper.evaluate(key, order) == active  # re-evaluated: nothing new, nothing doubled

    keeper.clock.now += timedelta(minutes=31)  # type: ignore[attr-defined]
    (due,) = keeper.release_due()
    assert due.reason == HoldReason.EDIT_WINDOW
    assert shopify_handles(keeper, key) == {"mienne-fraud_risk"}  # a person must release the fraud hold

    # An operator releases it from the CLI (the ledger only): the sync releases it in Shopify.
    keeper.ledger.release_hold(key, HoldReason.FRAUD_RISK, released_by="ana")
    assert keeper.sync_with_shopify()["released_in_shopify"] == 1
    assert shopify_handles(keeper, key) == set()
    assert {fo["status"] for fo in keeper.shopify.fulfillment_orders(int(key))} == {"OPEN"}
    nothing = {"mirrored": 0, "released_in_shopify": 0, "released_from_shopify": 0, "refused": 0}
    assert keeper.sync_with_shopify() == nothing


def test_a_hold_released_in_the_shopify_admin_is_released_in_the_ledger(keeper, sandbox):
    order = place(keeper, sandbox, risk={"level": "HIGH"})
    key = str(order.id)
    keeper.evaluate(key, order)
    keeper.shopify.release_fulfillment_holds(int(key), "mienne-fraud_risk")  # the merchant's click
    assert keeper.sync_with_shopify()["released_from_shopify"] == 1
    (released,) = [h for h in keeper.ledger.holds_of(key) if h.reason == HoldReason.FRAUD_RISK]
    assert released.released_by == "shopify"
    assert [h.reason for h in keeper.ledger.active_holds([key])] == [HoldReason.EDIT_WINDOW]


def test_a_corrected_address_releases_its_hold_and_a_manual_hold_is_mirrored_by_the_sync(keeper, sandbox):
    order = place(
        keeper,
        sandbox,
        processed_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        shipping_address={
            "address1": "1 Main St",
            "city": "Austin",
            "province_code": "TX",
            "zip": "10001",
            "country_code": "US",
        },
    )
    key = str(order.id)
    (hold,) = keeper.evaluate(key, order)
    assert hold.reason == HoldReason.ADDRESS and hold.detail == "ZIP 10001 is not in TX"
    corrected = order.model_copy(
        update={"shipping_address": order.shipping_address.model_copy(update={"zip": "78701"})}
    )
    assert keeper.evaluate(key, corrected) == []
    assert shopify_handles(keeper, key) == set()

    from mienne_ops.domain.holds import HoldDecision

    keeper.ledger.place_hold(key, HoldDecision(HoldReason.MANUAL, "customer asked to wait"), placed_by="ana")
    assert keeper.sync_with_shopify()["mirrored"] == 1
    assert shopify_handles(keeper, key) == {"mienne-manual"}
    assert keeper.evaluate(key, corrected)[0].reason == HoldReason.MANUAL  # the rules never release it


def _force_fo(sandbox, keeper: HoldKeeper, key: str, **status) -> None:
    for fo in keeper.shopify.fulfillment_orders(int(key)):
        fo_id = str(fo["id"]).rsplit("/", 1)[-1]
        forced = httpx.post(f"{sandbox.url}/_sandbox/shopify/fulfillment_orders/{fo_id}/status", json=status)
        assert forced.status_code == 200, forced.text


def test_an_in_progress_fulfillment_order_is_held_and_a_refusal_is_reported_not_hidden(keeper, sandbox):
    from mienne_ops.domain.holds import HoldDecision

    partly = str(place(keeper, sandbox).id)  # merchant-managed, partly fulfilled: Shopify holds it
    _force_fo(sandbox, keeper, partly, status="in_progress")
    keeper.ledger.place_hold(
        partly, HoldDecision(HoldReason.MANUAL, "customer asked to wait"), placed_by="ana"
    )
    assert keeper.sync_with_shopify(read_shopify=False)["mirrored"] == 1
    assert shopify_handles(keeper, partly) == {"mienne-manual"}

    # A fulfillment service accepted it and is working on it: Shopify refuses the hold (assumed).
    taken = str(place(keeper, sandbox).id)
    _force_fo(sandbox, keeper, taken, status="in_progress", request_status="accepted")
    keeper.ledger.place_hold(
        taken, HoldDecision(HoldReason.MANUAL, "customer asked to wait"), placed_by="ana"
    )
    assert keeper.sync_with_shopify(read_shopify=False)["refused"] == 1
    assert shopify_handles(keeper, taken) == set()
    (hold,) = keeper.ledger.active_holds([taken])  # the ledger's hold stands (flow B still keeps it back)
    assert hold.shopify_hold_ids == ()
    (report,) = keeper.ledger.exceptions(statuses=["open"], flow="holds", key=taken)
    assert report.reason == "shopify_hold_refused" and "fulfillment service" in report.message
    assert keeper.sync_with_shopify()["refused"] == 0  # reported once, not retried on every run
    keeper.ledger.release_hold(taken, HoldReason.MANUAL, "ana")
    assert keeper.ledger.exceptions(statuses=["open"], flow="holds") == []
