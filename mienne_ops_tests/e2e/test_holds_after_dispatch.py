"""A hold placed after dispatch, end to end with API faults on: DCL's order is cancelled while DCL
allows it and sent again when the hold is released (under both `dcl_resend_cancelled_as` answers,
each against the DCL fake playing the matching account), or reported too late once DCL is picking.
Nothing ships twice, nothing is lost, and Shopify's holds keep saying what the ledger says."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from click.testing import CliRunner

from mienne_ops.cli import main
from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.domain.holds import HoldDecision, HoldReason
from mienne_ops.domain.journey import Stage
from mienne_ops.resources import shopify_resource
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops.sync import holds as hold_sync

pytestmark = pytest.mark.e2e

SENSORS = ["shopify_orders_sensor", "order_holds_sensor", "netsuite_dispatch_sensor", "dcl_shipments_sensor"]
FAULTS = {
    "seed": 14,
    "shopify": {"error_rate": 0.05, "rate_429": 0.03, "burst_length": 2},
    "netsuite": {"error_rate": 0.05, "rate_429": 0.03, "burst_length": 2},
    "dcl": {"error_rate": 0.05, "rate_429": 0.03, "burst_length": 2},
    "stateset": {"error_rate": 0.05, "rate_429": 0.03, "burst_length": 2},
}
TRACKING = ["1ZHOLDAFTER0001"]


def _post(url: str, path: str, body: dict) -> dict:
    response = httpx.post(f"{url}{path}", json=body, timeout=30)
    assert response.status_code in (200, 201), response.text
    return response.json()


def _settle(stack) -> None:
    _post(stack["sandbox"].url, "/_sandbox/faults", FAULTS)
    stack["driver"].settle(SENSORS, rounds=6)


def _dispatched(stack, seed: int) -> tuple[str, str]:
    """An order placed two hours ago and taken through flows A and B: (Shopify id, DCL number)."""
    url = stack["sandbox"].url
    payload = build_order(stack["sandbox"].hub.catalog, random.Random(seed), gift_card=False)
    payload["processed_at"] = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    key = str(_post(url, "/_sandbox/shopify/orders", payload)["id"])
    _settle(stack)
    journey = stack["ledger"].journey(key)
    assert journey.stage == Stage.DISPATCHED and journey.dcl_order_number
    return key, journey.dcl_order_number


def _dcl_orders(url: str, base: str) -> dict[str, dict]:
    """DCL's orders under this number or its resends, by number."""
    return {
        o["order_number"]: o
        for o in sandbox_state(url)["dcl"]["orders"]
        if o["order_number"] == base or o["order_number"].startswith(f"{base}-R")
    }


def _live(url: str, base: str) -> list[str]:
    return [n for n, o in _dcl_orders(url, base).items() if not o["is_cancelled"]]


def _sales_order(url: str, key: str) -> dict:
    external_id = f"shopify-order-{key}"
    return next(s for s in sandbox_state(url)["netsuite"]["sales_orders"] if s["externalId"] == external_id)


def _agree(stack, key: str) -> set[HoldReason]:
    """The order's active holds, after checking Shopify shows exactly the same ones."""
    active = {h.reason for h in stack["ledger"].active_holds([key])}
    with shopify_resource().process_config_and_initialize_cm() as shopify:
        fulfillment_orders = shopify.client.fulfillment_orders(int(key))
    handles = {h["handle"] for fo in fulfillment_orders for h in fo["holds"]}
    assert handles == {hold_sync.shopify_handle(reason) for reason in active}
    return active


def _shopify_tracking(url: str, key: str) -> list[str]:
    order = next(o for o in sandbox_state(url)["shopify"]["orders"] if str(o["id"]) == key)
    return sorted(t for f in order["fulfillments"] for t in f["tracking_numbers"])


def _cli(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize(
    ("stack", "dcl_account", "placed_by"),
    [
        ({"dcl_resend_cancelled_as": "suffix"}, "refused", "cli"),
        ({"dcl_resend_cancelled_as": "same_number"}, "reusable", "sensor"),
    ],
    indirect=["stack"],
)
def test_a_hold_before_picking_cancels_at_dcl_and_the_release_sends_it_again_once(
    stack, dcl_account, placed_by
):
    url, ledger = stack["sandbox"].url, stack["ledger"]
    _post(url, "/_sandbox/dcl/account", {"cancelled_order_numbers": dcl_account})
    key, number = _dispatched(stack, 21)

    if placed_by == "cli":  # the operator sees the outcome at once
        held = _cli("holds", "hold", key, "--note", "customer asked to wait")
        assert held.exit_code == 0, held.output
        assert f"DCL order {number} cancelled" in held.output
    else:  # any other hold (a rule, fraud review): the holds sensor takes it back from DCL
        ledger.place_hold(key, HoldDecision(HoldReason.MANUAL, "fraud review"), placed_by="ana")
    _settle(stack)
    assert _agree(stack, key) == {HoldReason.MANUAL}
    assert _live(url, number) == [] and _dcl_orders(url, number)[number]["order_stage"] == 2
    assert ledger.journey(key).stage == Stage.WITHDRAWN
    assert _sales_order(url, key)["custbody_sent_to_3pl"] is False  # NetSuite says: not at the 3PL
    listed = _cli("holds", "list")
    assert "withdrawn" in listed.output, listed.output

    released = _cli("holds", "release", key)
    assert released.exit_code == 0, released.output
    _settle(stack)
    resent = f"{number}-R1" if dcl_account == "refused" else number
    assert _live(url, number) == [resent]  # one live order at DCL, under the switch's number
    journey = ledger.journey(key)
    assert journey.stage == Stage.DISPATCHED and journey.dcl_order_number == resent
    assert _sales_order(url, key)["custbody_sent_to_3pl"] is True

    _post(url, f"/_sandbox/dcl/orders/{resent}/ship", {"tracking_numbers": TRACKING})
    _settle(stack)
    assert ledger.journey(key).stage == Stage.SHIPPED  # flow C found the resent number's shipment
    assert _shopify_tracking(url, key) == TRACKING  # shipped once, tracking on Shopify once
    so_id = _sales_order(url, key)["id"]
    fulfillments = [
        f for f in sandbox_state(url)["netsuite"]["item_fulfillments"] if f["createdFrom"] == so_id
    ]
    assert len(fulfillments) == 1
    assert not _agree(stack, key)
    assert not ledger.exceptions(statuses=["open", "retrying"], key=key)


def test_a_hold_once_dcl_is_picking_is_reported_too_late_and_the_order_ships(stack):
    url, ledger, driver = stack["sandbox"].url, stack["ledger"], stack["driver"]
    key, number = _dispatched(stack, 22)
    _post(url, f"/_sandbox/dcl/orders/{number}/stage", {"stage": 20})  # the pick list is printed

    held = _cli("holds", "hold", key, "--note", "customer asked to wait")
    assert held.exit_code == 1, held.output
    assert "TOO LATE" in held.output and "stage 20 (Pick List Printed)" in held.output
    _settle(stack)
    assert _agree(stack, key) == {HoldReason.MANUAL}  # the hold stays, in both places
    assert _live(url, number) == [number] and ledger.journey(key).stage == Stage.DISPATCHED
    (report,) = ledger.exceptions(statuses=["open"], flow="holds")
    assert report.reason == "hold_too_late" and report.key == number
    assert "stage 20" in report.message and report.context["dcl_stage"] == 20
    assert "too_late" in _cli("holds", "list").output
    shown = driver.repo.get_job("held_orders_job").execute_in_process(instance=driver.instance)
    (materialized,) = shown.asset_materializations_for_node("held_orders")
    assert materialized.metadata["too_late_at_dcl"].value == 1

    _post(url, f"/_sandbox/dcl/orders/{number}/ship", {"tracking_numbers": TRACKING})
    _settle(stack)  # DCL ships it: NetSuite records it; Shopify's held fulfillment order waits
    assert ledger.journey(key).stage == Stage.SHIPPED
    assert _shopify_tracking(url, key) == []

    assert _cli("holds", "release", key).exit_code == 0  # a person lets it go
    _settle(stack)
    assert _shopify_tracking(url, key) == TRACKING
    assert not _agree(stack, key)
    assert not ledger.exceptions(statuses=["open", "retrying"], flow="holds")  # settled by the release
    assert len(_dcl_orders(url, number)) == 1


@pytest.mark.parametrize("stack", [{"dcl_resend_cancelled_as": "same_number"}], indirect=True)
def test_same_number_against_a_dcl_that_refuses_it_is_an_exception_naming_the_switch(stack):
    """The switch says DCL takes a cancelled number again, the account says no: flow B does not
    believe the cancelled order is the resend; the order waits, visibly, with the fix named."""
    url, ledger = stack["sandbox"].url, stack["ledger"]
    key, number = _dispatched(stack, 23)
    ledger.place_hold(key, HoldDecision(HoldReason.MANUAL, "customer asked to wait"), placed_by="ana")
    _settle(stack)
    assert ledger.journey(key).stage == Stage.WITHDRAWN
    assert _cli("holds", "release", key).exit_code == 0
    _settle(stack)
    assert _live(url, number) == [] and ledger.journey(key).stage == Stage.WITHDRAWN
    (refused,) = ledger.exceptions(statuses=["open"], flow="B")
    assert "already exists" in refused.message and "dcl_resend_cancelled_as" in refused.message

    # DCL's answer changes (or the switch is corrected): a person retries, the order goes out once.
    _post(url, "/_sandbox/dcl/account", {"cancelled_order_numbers": "reusable"})
    assert _cli("exceptions", "retry", str(refused.id)).exit_code == 0
    _settle(stack)
    assert _live(url, number) == [number] and ledger.journey(key).stage == Stage.DISPATCHED


def test_a_hold_on_a_partly_shipped_order_holds_its_in_progress_fulfillment_order_and_is_too_late(stack):
    """DCL shipped part of the order (Shopify's fulfillment order is IN_PROGRESS) when the hold comes:
    Shopify holds the rest, DCL cannot take anything back (reported without a cancel), and the rest's
    tracking reaches Shopify once a person releases the hold."""
    url, ledger = stack["sandbox"].url, stack["ledger"]
    key, number = _dispatched(stack, 26)
    lines = _dcl_orders(url, number)[number]["lines"]
    first = {"line_number": lines[0]["line_number"], "quantity": 1}
    _post(url, f"/_sandbox/dcl/orders/{number}/ship", {"lines": [first], "tracking_numbers": ["1ZPARTONE"]})
    _settle(stack)
    assert ledger.journey(key).stage == Stage.PARTIALLY_SHIPPED
    order = next(o for o in sandbox_state(url)["shopify"]["orders"] if str(o["id"]) == key)
    assert {fo["status"] for fo in order["fulfillment_orders"]} == {"in_progress"}

    ledger.place_hold(key, HoldDecision(HoldReason.MANUAL, "customer asked to wait"), placed_by="ana")
    _settle(stack)
    assert _agree(stack, key) == {HoldReason.MANUAL}  # the IN_PROGRESS fulfillment order is held
    (report,) = ledger.exceptions(statuses=["open"], flow="holds")
    assert report.reason == "hold_too_late" and report.context["dcl_stage"] == 50
    assert _live(url, number) == [number]

    _post(url, f"/_sandbox/dcl/orders/{number}/ship", {"tracking_numbers": ["1ZPARTTWO"]})
    _settle(stack)
    assert _shopify_tracking(url, key) == ["1ZPARTONE"]  # the rest waits on the held fulfillment order
    assert _cli("holds", "release", key).exit_code == 0
    _settle(stack)
    assert _shopify_tracking(url, key) == ["1ZPARTONE", "1ZPARTTWO"]
    assert ledger.journey(key).stage == Stage.SHIPPED and not _agree(stack, key)
