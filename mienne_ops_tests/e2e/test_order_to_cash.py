"""Order to cash through Dagster with faults on: nothing lost, nothing duplicated, bad orders quarantined.

56 valid paid orders plus one of every bad kind go in through the sandbox's control plane while
every system injects 5xx errors and 429 bursts and Shopify drops, duplicates and reorders webhooks.
The sensors are evaluated and their runs executed (as the daemon would) until the world settles;
then the state every system reports is checked, and a full re-run must create nothing new.
"""

import random
from collections import Counter

import httpx
import pytest
from click.testing import CliRunner

from mienne_ops.cli import main
from mienne_ops.devtools.harness import ORDER_TO_CASH_SENSORS, sandbox_state
from mienne_ops.sandbox.order_factory import BAD_KINDS, build_order

pytestmark = pytest.mark.e2e

VALID_ORDERS = 56
FAULTS = {
    "seed": 11,
    "shopify": {
        "error_rate": 0.05,
        "rate_429": 0.03,
        "burst_length": 2,
        "webhook_drop_rate": 0.25,
        "webhook_duplicate_rate": 0.25,
        "webhook_reorder": True,
    },
    "netsuite": {"error_rate": 0.05, "rate_429": 0.03, "burst_length": 2},
    "dcl": {"error_rate": 0.05, "rate_429": 0.03, "burst_length": 2},
    "stateset": {"error_rate": 0.05, "rate_429": 0.03, "burst_length": 2},
}


def _place(url: str, payload: dict) -> dict:
    response = httpx.post(f"{url}/_sandbox/shopify/orders", json=payload, timeout=30)
    response.raise_for_status()
    return response.json()


def _ship(url: str, order_number: str, body: dict) -> None:
    response = httpx.post(f"{url}/_sandbox/dcl/orders/{order_number}/ship", json=body, timeout=30)
    assert response.status_code == 200, (order_number, body, response.text)


def _counts(state: dict) -> dict[str, int]:
    return {
        "sales_orders": len(state["netsuite"]["sales_orders"]),
        "item_fulfillments": len(state["netsuite"]["item_fulfillments"]),
        "cash_sales": len(state["netsuite"]["cash_sales"]),
        "customers": len(state["netsuite"]["customers"]),
        "dcl_orders": len(state["dcl"]["orders"]),
        "dcl_shipments": sum(len(o.get("shipments") or []) for o in state["dcl"]["orders"]),
        "stateset_orders": len(state["stateset"]["orders"]),
        "shopify_fulfillments": sum(len(o.get("fulfillments") or []) for o in state["shopify"]["orders"]),
    }


def test_order_to_cash_with_faults_creates_each_record_exactly_once(stack):
    sandbox, driver, ledger = stack["sandbox"], stack["driver"], stack["ledger"]
    url = sandbox.url
    catalog = sandbox.hub.catalog
    rng = random.Random(2026)
    httpx.post(f"{url}/_sandbox/faults", json=FAULTS, timeout=30).raise_for_status()
    # Plus-plan API limits keep the test quick; the benchmark measures the Standard-plan bounds.
    httpx.post(
        f"{url}/_sandbox/shopify/limits", json={"restore_rate": 1000, "bucket_size": 10000}
    ).raise_for_status()
    httpx.post(f"{url}/_sandbox/dcl/limits", json={"requests_per_second": 50}).raise_for_status()

    valid = [_place(url, build_order(catalog, rng, taxes_included=(i % 9 == 0))) for i in range(VALID_ORDERS)]
    to_cancel = _place(url, build_order(catalog, rng))
    bad = {kind: _place(url, build_order(catalog, rng, bad=kind)) for kind in BAD_KINDS}

    # Flow A: webhooks (some dropped, some doubled) and the reconciliation poll feed the sensor.
    driver.settle(ORDER_TO_CASH_SENSORS[:1])
    httpx.post(f"{url}/_sandbox/shopify/orders/{to_cancel['id']}/cancel", timeout=30).raise_for_status()
    _wait_for_webhooks(url)
    driver.settle(ORDER_TO_CASH_SENSORS[:1])

    # Flow B: everything imported and not cancelled goes to DCL.
    driver.settle(ORDER_TO_CASH_SENSORS[1:2])
    state = sandbox_state(url)
    dcl_orders = state["dcl"]["orders"]
    assert len(dcl_orders) == VALID_ORDERS

    # DCL ships: every 4th order in two shipments, every 5th with two tracking numbers in one.
    split, multi = [], []
    for index, order in enumerate(sorted(dcl_orders, key=lambda o: o["order_number"])):
        number, lines = order["order_number"], order["lines"]
        if index % 4 == 0 and len(lines) > 1:
            _ship(
                url,
                number,
                {"lines": [{"line_number": lines[0]["line_number"], "quantity": lines[0]["quantity"]}]},
            )
            split.append(number)
        elif index % 5 == 0 and sum(line["quantity"] for line in lines) >= 2:
            _ship(url, number, {"tracking_numbers": [f"1ZMULTI{index:04d}A", f"1ZMULTI{index:04d}B"]})
            multi.append(number)
            continue
        _ship(url, number, {})
    assert split and multi

    # Flow C until every shipment is in NetSuite and Shopify.
    driver.settle(ORDER_TO_CASH_SENSORS[2:], rounds=6)
    state = sandbox_state(url)
    problems = [
        (e.flow, e.key, e.status, e.message) for e in ledger.exceptions(statuses=["open", "retrying"])
    ]
    assert not [p for p in problems if p[0] != "A"], problems
    _assert_exactly_once(state, valid, to_cancel, split, multi)
    _journeys_agree_with_the_systems(ledger, valid, state["dcl"]["orders"], state["stateset"]["orders"])

    # Bad orders are quarantined with their reason; nothing about them reached NetSuite.
    open_reasons = {e.key: e.reason for e in ledger.exceptions(statuses=["open"])}
    for kind, created in bad.items():
        assert str(created["id"]) in open_reasons, f"{kind} order was not quarantined"
    assert open_reasons[str(bad["unknown_sku"]["id"])] == "unknown_sku"
    assert open_reasons[str(bad["missing_address"]["id"])] == "missing_shipping_address"
    assert ledger.journey(str(to_cancel["id"])).stage == "cancelled"

    # Running every sensor and job again creates nothing anywhere.
    before = _counts(state)
    driver.cursors.clear()
    driver.settle(ORDER_TO_CASH_SENSORS, rounds=2)
    _rerun_jobs_directly(stack, valid, dcl_orders)
    after = _counts(sandbox_state(url))
    assert after == before


def _wait_for_webhooks(url: str) -> None:
    import time

    deadline = time.monotonic() + 120  # a guard against a hang, generous for a busy CI box
    while time.monotonic() < deadline:
        if sandbox_state(url)["shopify"]["webhooks_pending"] == 0:
            return
        time.sleep(0.2)
    raise AssertionError("sandbox webhooks did not drain")


def _assert_exactly_once(state, valid, to_cancel, split, multi):
    valid_ids = {str(o["id"]) for o in valid}
    sales_orders = state["netsuite"]["sales_orders"]
    external = Counter(so["externalId"] for so in sales_orders)
    assert all(count == 1 for count in external.values())
    assert {f"shopify-order-{i}" for i in valid_ids} <= set(external)
    assert set(external) <= {f"shopify-order-{i}" for i in valid_ids | {str(to_cancel["id"])}}

    dcl_numbers = Counter(o["order_number"] for o in state["dcl"]["orders"])
    assert len(dcl_numbers) == len(valid) and all(c == 1 for c in dcl_numbers.values())

    shipments = sum(len(o["shipments"]) for o in state["dcl"]["orders"])
    fulfillments = state["netsuite"]["item_fulfillments"]
    assert len(fulfillments) == shipments
    assert len({f["externalId"] for f in fulfillments}) == shipments

    shopify_orders = {str(o["id"]): o for o in state["shopify"]["orders"]}
    dcl_tracking = {
        number: [sorted(p["tracking_number"] for p in s["packages"]) for s in order["shipments"]]
        for order in state["dcl"]["orders"]
        for number in [order["order_number"]]
    }
    for order_id in valid_ids:
        order = shopify_orders[order_id]
        assert "SENT_TO_NS" in order["tags"]
        tracked = [sorted(f["tracking_numbers"]) for f in order["fulfillments"]]
        assert len(tracked) == len(set(map(tuple, tracked)))
    total_shopify_fulfillments = sum(len(shopify_orders[i]["fulfillments"]) for i in valid_ids)
    assert total_shopify_fulfillments == shipments
    all_tracking = sorted(t for shipments_ in dcl_tracking.values() for s in shipments_ for t in s)
    shopify_tracking = sorted(
        t for i in valid_ids for f in shopify_orders[i]["fulfillments"] for t in f["tracking_numbers"]
    )
    assert shopify_tracking == all_tracking
    for number in split:
        assert len(dcl_tracking[number]) == 2
    for number in multi:
        assert len(dcl_tracking[number][0]) == 2

    stateset = state["stateset"]["orders"]
    by_external = Counter(o["data"]["metadata"]["external_id"] for o in stateset)
    assert all(count == 1 for count in by_external.values())
    shipped = {o["data"]["metadata"]["external_id"] for o in stateset if o["status"] == "SHIPPED"}
    assert shipped == {f"shopify-order-{i}" for i in valid_ids}
    assert not shopify_orders[str(to_cancel["id"])]["fulfillments"]


def _journeys_agree_with_the_systems(ledger, valid, dcl_orders, stateset):
    """Each order's typed journey holds the ids every system reports, and `order status` prints it."""
    stateset_ids = {o["data"]["metadata"]["external_id"]: o["id"] for o in stateset}
    dcl_numbers = {o["order_number"] for o in dcl_orders}
    for order in valid:
        journey = ledger.journey(str(order["id"]))
        assert journey.stage == "shipped" and journey.dcl_order_number in dcl_numbers
        assert journey.stateset_order_id == stateset_ids[f"shopify-order-{order['id']}"]
        assert journey.stateset_shipped_at is not None and journey.shipments_completed
        assert journey.netsuite_tranid == journey.dcl_order_number
        assert all(
            s.on_shopify and s.item_fulfillment_id for s in ledger.shipments_of(journey.dcl_order_number)
        )
    journey = ledger.journey(str(valid[0]["id"]))
    printed = CliRunner().invoke(main, ["order", "status", journey.dcl_order_number])
    assert printed.exit_code == 0, printed.output
    assert f"stage: {journey.stage}" in printed.output
    for value in journey.ids_by_system().values():
        assert value in printed.output
    for shipment in ledger.shipments_of(journey.dcl_order_number):
        assert f"item fulfillment {shipment.item_fulfillment_id}" in printed.output


def _rerun_jobs_directly(stack, valid, dcl_orders):
    """Re-execute each job over everything it ever handled (as a retried or replayed run would)."""
    repo, instance = stack["driver"].repo, stack["driver"].instance
    ingest = repo.get_job("shopify_order_ingestion_job")
    ingest.execute_in_process(
        run_config={
            "ops": {"ingest_shopify_orders": {"config": {"order_ids": [str(o["id"]) for o in valid]}}}
        },
        instance=instance,
    )
    ledger = stack["ledger"]
    so_ids = [ledger.journey(str(o["id"])).netsuite_sales_order_id for o in valid]
    repo.get_job("netsuite_dispatch_job").execute_in_process(
        run_config={"ops": {"dispatch_sales_orders": {"config": {"sales_order_ids": so_ids}}}},
        instance=instance,
    )
    repo.get_job("dcl_shipment_sync_job").execute_in_process(
        run_config={
            "ops": {
                "sync_dcl_shipments": {"config": {"order_numbers": [o["order_number"] for o in dcl_orders]}}
            }
        },
        instance=instance,
    )
