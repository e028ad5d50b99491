"""A handful of orders through A -> B -> C without faults: the shortest proof the spine works."""

import random

import httpx

from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.sandbox.order_factory import build_order


def test_orders_flow_from_shopify_to_shipped(stack):
    sandbox, driver = stack["sandbox"], stack["driver"]
    rng = random.Random(5)
    ids = []
    for _ in range(3):
        created = httpx.post(
            f"{sandbox.url}/_sandbox/shopify/orders", json=build_order(sandbox.hub.catalog, rng)
        ).json()
        ids.append(created["id"])
    driver.tick("shopify_orders_sensor")
    state = sandbox_state(sandbox.url)
    assert len(state["netsuite"]["sales_orders"]) == 3, [r.success for r in driver.runs]
    driver.tick("netsuite_dispatch_sensor")
    state = sandbox_state(sandbox.url)
    assert len(state["dcl"]["orders"]) == 3
    for order in state["dcl"]["orders"]:
        httpx.post(
            f"{sandbox.url}/_sandbox/dcl/orders/{order['order_number']}/ship", json={}
        ).raise_for_status()
    driver.tick("dcl_shipments_sensor")
    state = sandbox_state(sandbox.url)
    assert len(state["netsuite"]["item_fulfillments"]) == 3
    assert all(o["fulfillments"] for o in state["shopify"]["orders"])


def test_cli_shows_an_order_journey_and_works_the_exceptions_queue(stack):
    from click.testing import CliRunner

    from mienne_ops.cli import main

    sandbox, driver = stack["sandbox"], stack["driver"]
    rng = random.Random(9)
    good = httpx.post(
        f"{sandbox.url}/_sandbox/shopify/orders", json=build_order(sandbox.hub.catalog, rng)
    ).json()
    bad = httpx.post(
        f"{sandbox.url}/_sandbox/shopify/orders",
        json=build_order(sandbox.hub.catalog, rng, bad="unknown_sku"),
    ).json()
    driver.tick("shopify_orders_sensor")
    runner = CliRunner()

    journey = runner.invoke(main, ["order", "status", good["name"]])
    assert journey.exit_code == 0, journey.output
    assert "stage: in_netsuite" in journey.output
    assert "netsuite" in journey.output and "salesOrder.upsert" in journey.output

    listed = runner.invoke(main, ["exceptions", "list"])
    assert str(bad["id"]) in listed.output and "unknown_sku" in listed.output
    (problem,) = stack["ledger"].exceptions(statuses=["open"])
    assert runner.invoke(main, ["exceptions", "retry", str(problem.id)]).exit_code == 0
    assert stack["ledger"].exception_by_id(problem.id).status == "retrying"
    assert runner.invoke(main, ["exceptions", "resolve", str(problem.id)]).exit_code == 0
    assert "no exceptions" in runner.invoke(main, ["exceptions", "list"]).output
    assert runner.invoke(main, ["order", "status", "#999999"]).exit_code != 0


def test_orders_sensor_rereads_the_inbox_of_a_replaced_ledger(stack):
    """A cursor from an older ledger (ids far ahead) must not hide the new inbox's webhooks."""
    import json
    import time
    from datetime import UTC, datetime

    import dagster as dg

    from mienne_ops.business_rules import BusinessRules
    from mienne_ops.flows.orders import shopify_orders_sensor

    sandbox = stack["sandbox"]
    created = httpx.post(
        f"{sandbox.url}/_sandbox/shopify/orders", json=build_order(sandbox.hub.catalog, random.Random(4))
    ).json()
    deadline = time.monotonic() + 60  # a guard against a hang, generous for a busy CI box
    while stack["ledger"].last_event_id("shopify") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    # The poll is not due (just polled, hourly), so only the webhook inbox can bring the order in.
    stale = json.dumps({"inbox_id": 10**6, "polled_at": datetime.now(UTC).isoformat()})
    resources = {**stack["defs"].resources, "rules": BusinessRules(reconcile_every_seconds=3600)}
    with (
        dg.DagsterInstance.ephemeral() as instance,
        dg.build_sensor_context(cursor=stale, resources=resources, instance=instance) as context,
    ):
        result = shopify_orders_sensor(context)
    (request,) = result.run_requests
    order_ids = request.run_config["ops"]["ingest_shopify_orders"]["config"]["order_ids"]
    assert order_ids == [str(created["id"])]
    assert json.loads(result.cursor)["inbox_id"] <= stack["ledger"].last_event_id("shopify")
