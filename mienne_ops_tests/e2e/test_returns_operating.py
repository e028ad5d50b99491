"""Operating returns through the real definitions and the sandbox: `returns start|list|show|cancel`,
a return in `order status`, and the `returns` asset with its checks (faults off: what is tested is
what the operator reads, not the worker's resilience, which `test_returns.py` covers)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from click.testing import CliRunner

from mienne_ops.cli import main
from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.domain.returns import ReturnStatus
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops.sandbox.traffic import TrafficSimulator

pytestmark = pytest.mark.e2e

SENSORS = [
    "shopify_orders_sensor",
    "order_holds_sensor",
    "netsuite_dispatch_sensor",
    "dcl_shipments_sensor",
    "service_requests_sensor",
]
RULES = {"return_instant_refund_max": None}  # the refund waits for DCL's receipt


def cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


def shipped_us_order(stack, start: int = 200) -> dict:
    """A US customer's order, imported, sent to DCL, shipped and fulfilled in Shopify."""
    sandbox = stack["sandbox"]
    for seed in range(start, start + 500):
        payload = build_order(sandbox.hub.catalog, random.Random(seed), gift_card=False)
        if payload["shipping_address"]["country_code"] == "US":
            break
    payload["processed_at"] = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    placed = httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=payload, timeout=30).json()
    stack["driver"].settle(SENSORS)
    journey = stack["ledger"].journey(str(placed["id"]))
    assert journey is not None and journey.dcl_order_number, "the order should be at DCL"
    shipped = httpx.post(
        f"{sandbox.url}/_sandbox/dcl/orders/{journey.dcl_order_number}/ship", json={}, timeout=30
    )
    assert shipped.status_code == 200, shipped.text
    stack["driver"].settle(SENSORS)
    return sandbox.hub.world.get("shopify", "order", placed["id"])


def materialize_report(stack) -> tuple[dict, dict]:
    job = stack["defs"].resolve_job_def("returns_report_job")
    result = job.execute_in_process(instance=stack["driver"].instance)
    assert result.success
    (event,) = result.get_asset_materialization_events()
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    return event.materialization.metadata, checks


@pytest.mark.parametrize("stack", [RULES], indirect=True)
def test_an_operator_starts_follows_and_cancels_a_return(stack):
    order = shipped_us_order(stack)
    sku = next(line["sku"] for line in order["line_items"] if line.get("sku"))

    started = cli("returns", "start", order["name"], "--line", f"{sku}:1", "--reason", "size_fit_issue")
    (ret,) = stack["ledger"].returns(shopify_order_id=str(order["id"]))
    assert ret.status == ReturnStatus.AWAITING_PARCEL and ret.rma_number and ret.expected == {sku: 1}
    assert f"RMA {ret.rma_number}" in started and "awaiting_parcel" in started
    again = cli("returns", "start", order["name"], "--line", f"{sku}:1", "--reason", "size_fit_issue")
    assert "made before" in again and len(stack["ledger"].returns(shopify_order_id=str(order["id"]))) == 1

    listed = cli("returns", "list")
    assert order["name"] in listed and ret.rma_number in listed and "awaiting_parcel" in listed
    shown = cli("returns", "show", ret.rma_number)
    tracking = ret.outcome["tracking_number"]
    assert f"label tracking   {tracking}" in shown and "netsuite_rma_id" in shown
    assert "rma.create" in shown and "exceptions: none" in shown
    status = cli("order", "status", order["name"])
    assert "returns (1):" in status and f"rma {ret.rma_number}, label {tracking}" in status
    assert "itemFulfillment.transform" in status and "fulfillmentCreate" in status

    metadata, checks = materialize_report(stack)
    assert metadata["open"].value == 1 and metadata["status_awaiting_parcel"].value == 1
    assert ret.rma_number in metadata["open_returns"].value
    assert all(checks.values())

    cancelled = cli("returns", "cancel", order["name"], "--reason", "the customer kept it")
    assert "cancelled" in cancelled
    assert stack["ledger"].return_by_key(ret.return_key).status == ReturnStatus.CANCELLED
    assert "no open returns" in cli("returns", "list")
    assert "by " in cli("returns", "show", ret.return_key)  # the audit trail says who cancelled it
    metadata, _ = materialize_report(stack)
    assert metadata["open"].value == 0 and metadata["status_cancelled"].value == 1


@pytest.mark.parametrize("stack", [RULES], indirect=True)
def test_a_return_dcl_has_received_cannot_be_cancelled(stack):
    order = shipped_us_order(stack)
    sku = next(line["sku"] for line in order["line_items"] if line.get("sku"))
    cli("returns", "start", order["name"], "--line", f"{sku}:1")
    (ret,) = stack["ledger"].returns(shopify_order_id=str(order["id"]))
    received = httpx.post(
        f"{stack['sandbox'].url}/_sandbox/dcl/rmas/{ret.rma_number}/receive", json={}, timeout=30
    )
    assert received.status_code == 200, received.text
    stack["driver"].settle([*SENSORS, "returns_sensor"])
    assert stack["ledger"].return_by_key(ret.return_key).status != ReturnStatus.AWAITING_PARCEL
    refused = cli("returns", "cancel", ret.return_key, "--reason", "too late", code=1)
    assert "cannot be cancelled" in refused or "can be cancelled" in refused


@pytest.mark.parametrize("stack", [RULES], indirect=True)
def test_the_demo_traffics_return_requests_become_returns(stack):
    """What `make dev` shows: a ticket tagged return-request, then a Shopify return request."""
    first = shipped_us_order(stack, 200)
    second = shipped_us_order(stack, 900)
    simulator = TrafficSimulator(stack["sandbox"].hub, seed=4)
    asked = {simulator.ask_for_return()["id"], simulator.ask_for_return()["id"]}
    assert asked == {first["id"], second["id"]}
    state = sandbox_state(stack["sandbox"].url)
    (ticket,) = state["gorgias"]["tickets"]
    assert "return-request" in {t["name"] for t in ticket["tags"]}
    (requested,) = state["shopify"]["returns"]
    assert requested["status"] == "requested"
    stack["driver"].settle(SENSORS)
    for order in (first, second):
        (ret,) = stack["ledger"].returns(shopify_order_id=str(order["id"]))
        assert ret.status == ReturnStatus.AWAITING_PARCEL and ret.rma_number
