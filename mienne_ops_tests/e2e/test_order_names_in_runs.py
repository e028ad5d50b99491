"""One order findable by its name in Dagster: the runs of flows A and B carry tags and metadata with
Shopify order names (never only numeric ids), a run that quarantined something is marked, and the
exceptions view is materialized by its sensor as soon as the queue changes."""

import random

import dagster as dg
import httpx

from mienne_ops.flows.common import TAG_ATTENTION, TAG_FLOW, TAG_QUARANTINED
from mienne_ops.sandbox.order_factory import build_order


def place(url: str, payload: dict) -> dict:
    response = httpx.post(f"{url}/_sandbox/shopify/orders", json=payload, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def output_metadata(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = [e for e in result.all_node_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT]
    return event.step_output_data.metadata


def test_flow_runs_name_their_orders_and_mark_what_they_quarantined(stack):
    sandbox, driver, instance = stack["sandbox"], stack["driver"], stack["driver"].instance
    rng = random.Random(1014)
    good = place(sandbox.url, build_order(sandbox.hub.catalog, rng))
    bad = place(sandbox.url, build_order(sandbox.hub.catalog, rng, bad="unknown_sku"))

    assert driver.tick("shopify_orders_sensor") == 1
    (flow_a,) = driver.runs
    assert flow_a.success
    tags = instance.get_run_by_id(flow_a.run_id).tags
    good_tag, bad_tag = (f"mienne-ops/order-{order['name'].lstrip('#')}" for order in (good, bad))
    assert tags[good_tag] == "done" and tags[bad_tag] == "quarantined"
    assert tags[TAG_QUARANTINED] == "1" and tags[TAG_ATTENTION] == "quarantined"
    # The Runs page's filter (exact key=value) finds the run by either order's name.
    for key, value in ((good_tag, "done"), (TAG_ATTENTION, "quarantined")):
        found = instance.get_runs(filters=dg.RunsFilter(tags={key: value}))
        assert [run.run_id for run in found] == [flow_a.run_id]

    metadata = output_metadata(flow_a)
    assert metadata["orders"].value == f"{bad['name']} quarantined (unknown_sku), {good['name']} done"
    rows = [dict(record.data) for record in metadata["records"].value.records]
    assert rows[0]["order"] == bad["name"] and rows[0]["reason"] == "unknown_sku"
    assert rows[0]["record"] == f"order {bad['id']}" and rows[1]["order"] == good["name"]

    # Flow B works on NetSuite sales order ids: its run still names the order.
    assert driver.tick("netsuite_dispatch_sensor") == 1
    flow_b = driver.runs[-1]
    assert flow_b.success
    tags_b = instance.get_run_by_id(flow_b.run_id).tags
    assert tags_b[TAG_FLOW] == "B" and tags_b[good_tag] == "done"
    assert TAG_QUARANTINED not in tags_b and TAG_ATTENTION not in tags_b
    assert output_metadata(flow_b)["orders"].value == f"{good['name']} done"


def test_the_exceptions_view_is_materialized_when_the_queue_changes(stack):
    sandbox, driver, ledger = stack["sandbox"], stack["driver"], stack["ledger"]
    rng = random.Random(7)

    def materializations() -> list[dict]:
        events = driver.instance.fetch_materializations(dg.AssetKey("order_exceptions"), limit=100).records
        return [dict(e.asset_materialization.metadata) for e in reversed(events)]

    assert driver.tick("order_exceptions_sensor") == 1  # the first tick shows the (empty) queue
    assert driver.tick("order_exceptions_sensor") == 0  # nothing changed: nothing to do
    assert materializations()[-1]["open"].value == 0

    bad = place(sandbox.url, build_order(sandbox.hub.catalog, rng, bad="unknown_sku"))
    driver.tick("shopify_orders_sensor")
    assert driver.tick("order_exceptions_sensor") == 1
    latest = materializations()[-1]
    assert latest["open"].value == 1
    (row,) = latest["exceptions"].value.records
    assert row.data["order"] == bad["name"] and row.data["reason"] == "unknown_sku"

    # The exception resolved (by hand here): the view follows at the next tick.
    (problem,) = ledger.exceptions(statuses=["open"])
    ledger.set_exception_status(problem.id, "resolved")
    assert driver.tick("order_exceptions_sensor") == 1
    assert materializations()[-1]["open"].value == 0
    assert len(materializations()) == 3
