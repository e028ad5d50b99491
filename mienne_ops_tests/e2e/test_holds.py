"""Holds before dispatch end to end, with API faults on: what is held never reaches DCL until it is
released (by time, by a corrected address, by a person), and Shopify's fulfillment-order holds always
say what the ledger says."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from click.testing import CliRunner

from mienne_ops.cli import main
from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.domain.holds import HoldReason
from mienne_ops.resources import shopify_resource
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops.sync import holds as hold_sync

pytestmark = pytest.mark.e2e

SENSORS = ["shopify_orders_sensor", "order_holds_sensor", "netsuite_dispatch_sensor"]
FAULTS = {
    "seed": 5,
    "shopify": {"error_rate": 0.05, "rate_429": 0.03, "burst_length": 2},
    "netsuite": {"error_rate": 0.05, "rate_429": 0.03, "burst_length": 2},
    "dcl": {"error_rate": 0.05, "rate_429": 0.03, "burst_length": 2},
    "stateset": {"error_rate": 0.05, "rate_429": 0.03, "burst_length": 2},
}
WINDOW = pytest.mark.parametrize("stack", [{"hold_edit_window_minutes": 30}], indirect=True)


def _post(url: str, path: str, body: dict) -> dict:
    response = httpx.post(f"{url}{path}", json=body, timeout=30)
    assert response.status_code in (200, 201), response.text
    return response.json()


def _place(stack, seed: int, **changes) -> dict:
    payload = build_order(stack["sandbox"].hub.catalog, random.Random(seed), gift_card=False)
    payload.setdefault("processed_at", (datetime.now(UTC) - timedelta(hours=2)).isoformat())
    payload.update(changes)
    return _post(stack["sandbox"].url, "/_sandbox/shopify/orders", payload)


def _settle(stack, faults: dict = FAULTS) -> None:
    _post(stack["sandbox"].url, "/_sandbox/faults", faults)
    stack["driver"].settle(SENSORS, rounds=6)


def _dcl_order_of(url: str, order_id) -> dict | None:
    external_id = f"shopify-order-{order_id}"
    state = sandbox_state(url)
    so = next((s for s in state["netsuite"]["sales_orders"] if s["externalId"] == external_id), None)
    if so is None:
        return None
    return next((o for o in state["dcl"]["orders"] if o["order_number"] == so["tranId"]), None)


def _shopify_hold_handles(order_id) -> set[str]:
    """The holds on the order's fulfillment orders, read through the Admin API as the merchant sees them."""
    with shopify_resource().process_config_and_initialize_cm() as shopify:
        fulfillment_orders = shopify.client.fulfillment_orders(int(order_id))
    return {h["handle"] for fo in fulfillment_orders for h in fo["holds"]}


def _agree(stack, order_id) -> set[HoldReason]:
    """The order's active holds, after checking Shopify shows exactly the same ones."""
    active = {h.reason for h in stack["ledger"].active_holds([str(order_id)])}
    assert _shopify_hold_handles(order_id) == {hold_sync.shopify_handle(reason) for reason in active}
    return active


@WINDOW
def test_an_order_cancelled_inside_the_edit_window_never_reaches_dcl(stack):
    url = stack["sandbox"].url
    fresh = _place(stack, 1, processed_at=datetime.now(UTC).isoformat())
    settled = _place(stack, 2)  # placed two hours ago: its window is over
    _settle(stack)
    assert _agree(stack, fresh["id"]) == {HoldReason.EDIT_WINDOW}
    assert _dcl_order_of(url, fresh["id"]) is None
    assert _dcl_order_of(url, settled["id"]) is not None and not _agree(stack, settled["id"])

    _post(url, f"/_sandbox/shopify/orders/{fresh['id']}/cancel", {})
    _settle(stack)
    assert stack["ledger"].journey(str(fresh["id"])).stage == "cancelled"
    assert _dcl_order_of(url, fresh["id"]) is None
    assert not [o for o in sandbox_state(url)["dcl"]["orders"] if o.get("is_cancelled")]  # never sent


def _held_for_its_address(stack, seed: int, wrong_zip: str) -> dict:
    """An order whose shipping address (set after it was placed) has a ZIP outside its state."""
    url = stack["sandbox"].url
    placed = _place(stack, seed)
    wrong = {"province_code": "TX", "province": "Texas", "zip": wrong_zip, "country_code": "US"}
    _post(url, f"/_sandbox/shopify/orders/{placed['id']}/edit", {"shipping_address": wrong})
    _settle(stack)
    assert _agree(stack, placed["id"]) == {HoldReason.ADDRESS}
    return placed


def _shipped_to_the_corrected_zip(stack, placed: dict) -> None:
    assert not _agree(stack, placed["id"])
    dcl = _dcl_order_of(stack["sandbox"].url, placed["id"])
    assert dcl is not None and dcl["shipping_address"]["postal_code"] == "78701"


def test_an_address_corrected_during_its_hold_is_dispatched_with_the_new_address(stack):
    url = stack["sandbox"].url
    placed = _held_for_its_address(stack, 3, "10001")
    (hold,) = stack["ledger"].active_holds([str(placed["id"])])
    assert hold.detail == "ZIP 10001 is not in TX"
    assert _dcl_order_of(url, placed["id"]) is None

    _post(url, f"/_sandbox/shopify/orders/{placed['id']}/edit", {"shipping_address": {"zip": "78701"}})
    _settle(stack)
    _shipped_to_the_corrected_zip(stack, placed)


def test_an_address_correction_whose_webhook_is_lost_is_found_by_the_poll(stack):
    url = stack["sandbox"].url
    placed = _held_for_its_address(stack, 6, "94103")
    lost = {**FAULTS, "shopify": {**FAULTS["shopify"], "webhook_drop_rate": 1.0}}
    _post(url, "/_sandbox/faults", lost)
    _post(url, f"/_sandbox/shopify/orders/{placed['id']}/edit", {"shipping_address": {"zip": "78701"}})
    _settle(stack, lost)
    _shipped_to_the_corrected_zip(stack, placed)


def test_a_high_risk_order_waits_for_a_release_from_the_cli(stack):
    url = stack["sandbox"].url
    placed = _place(stack, 4, risk={"level": "HIGH"})
    _settle(stack)
    assert _agree(stack, placed["id"]) == {HoldReason.FRAUD_RISK}
    _settle(stack)  # nothing releases it by itself
    assert _dcl_order_of(url, placed["id"]) is None
    driver = stack["driver"]
    shown = driver.repo.get_job("held_orders_job").execute_in_process(instance=driver.instance)
    (materialized,) = shown.asset_materializations_for_node("held_orders")
    assert materialized.metadata["reason_fraud_risk"].value == 1
    assert all(check.passed for check in shown.get_asset_check_evaluations())  # young: within its SLA

    released = CliRunner().invoke(main, ["holds", "release", str(placed["id"])])
    assert released.exit_code == 0, released.output
    _settle(stack)
    assert not _agree(stack, placed["id"])
    assert _dcl_order_of(url, placed["id"]) is not None
    (hold,) = stack["ledger"].holds_of(str(placed["id"]))
    assert hold.released_by and hold.released_by != "rules"


SHIPS_ON = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()


@pytest.mark.parametrize("stack", [{"hold_pre_order_tags": {"preorder-spring": SHIPS_ON}}], indirect=True)
def test_a_pre_order_is_released_on_its_date(stack, monkeypatch):
    url = stack["sandbox"].url
    placed = _place(stack, 5, tags="preorder-spring")
    _settle(stack)
    assert _agree(stack, placed["id"]) == {HoldReason.PRE_ORDER}
    assert _dcl_order_of(url, placed["id"]) is None

    later = datetime.now(UTC) + timedelta(days=4)
    monkeypatch.setattr(hold_sync, "utc_now", lambda: later)  # the date comes
    _settle(stack)
    assert not _agree(stack, placed["id"])
    assert _dcl_order_of(url, placed["id"]) is not None
