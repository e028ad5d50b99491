"""The real daemon, as an operator runs it: `dagster-daemon run` + the sandbox + the webhook receiver.

Nothing here plays the daemon: `dagster-daemon run -w workspace.yaml` runs with a private
DAGSTER_HOME holding the repository's `dagster.yaml` (run queue, one run per `mienne-ops/flow` value,
`run_retries`, run monitoring); its sensors tick on their own intervals, its code server launches
each run in a process of its own. One test, three checks:

(a) two orders placed in the sandbox's Shopify go A → B → C: sales order, DCL order, shipped at DCL
    (the sandbox's control plane plays the warehouse), item fulfillment, cash sale, StateSet
    shipped, Shopify fulfilled with DCL's tracking numbers — each record exactly once;
(b) a crashed run is retried by `run_retries`: the sandbox holds every NetSuite request (its
    control plane's request hold, with a pool big enough that nothing is refused meanwhile), so flow
    A's first run stalls in its step; its run worker is killed with SIGKILL, the code server reports
    the run failed, the daemon launches a retry (tags `dagster/parent_run_id`,
    `dagster/retry_number`) and the order still ends exactly once;
(c) the per-flow limit: the second order's run waits in the queue while the first runs, and in the
    instance's run records no two runs with the same `mienne-ops/flow` value overlap;
(d) the receiver's `/metrics` sums the API calls the run workers (other processes, some killed)
    made, and reports every flow sensor's tick age from the daemon's instance.

Slow (a few minutes on a busy two-core box: every run is a process loading the code location), so
marked `slow`: `pytest -m "not slow"` leaves it out. Every wait polls for a condition; the deadlines
only guard against a hang.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import dagster as dg
import httpx
import pytest

from mienne_ops import settings
from mienne_ops.cli import subscribe_order_webhooks
from mienne_ops.devtools.daemon import DaemonProcess, run_worker_pid
from mienne_ops.devtools.harness import FLOW_SENSORS, ReceiverServer, sandbox_state
from mienne_ops.flows.common import TAG_FLOW
from mienne_ops.ledger import Ledger
from mienne_ops.resources import LIVE_SWITCHES
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops_tests.observability.scrape import scrape, value
from mienne_ops_tests.support import new_ledger

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HANG_GUARD = 600.0  # seconds: only against a hang, never a bound on how long a step may take
IN_PROGRESS = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED)


@pytest.fixture
def operator_stack(sandbox, tmp_path, monkeypatch) -> Iterator[dict[str, Any]]:
    """Sandbox (this process), webhook receiver (this process) and the daemon (a child process)."""
    for variable in LIVE_SWITCHES.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("MIENNE_LEDGER_URL", raising=False)
    monkeypatch.setenv("MIENNE_SANDBOX_URL", sandbox.url)
    monkeypatch.setenv("MIENNE_STATE_DIR", str(tmp_path / "state"))
    # The receiver reads the sensors' ticks from the daemon's instance, as under `make dev`.
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    # Migrated before anything opens it (the code location's resources open it lazily).
    ledger = new_ledger(settings.ledger_url())
    env = {
        "MIENNE_SANDBOX_URL": sandbox.url,
        "MIENNE_SANDBOX_SMTP_PORT": str(sandbox.smtp_port),  # email alerts go to this sandbox's sink
        "MIENNE_STATE_DIR": str(tmp_path / "state"),
        # No edit window before dispatch (the rules' knob for drills): orders go to DCL at once.
        "MIENNE_EDIT_WINDOW_MINUTES": "0",
        # Dagster gives a code server 60 s to start a run's process and run a sensor; on a shared
        # two-core box under load that is not enough, and every launch then fails.
        "DAGSTER_GRPC_TIMEOUT_SECONDS": "300",
    }
    try:
        with (
            ReceiverServer(ledger) as receiver,
            DaemonProcess(tmp_path / "dagster_home", env, tmp_path / "daemon.log") as daemon,
            daemon.instance() as instance,
        ):
            subscribe_order_webhooks(receiver.url)
            yield {
                "sandbox": sandbox,
                "ledger": ledger,
                "daemon": daemon,
                "instance": instance,
                "metrics_url": f"http://127.0.0.1:{receiver.port}",
                # Another daemon on the same DAGSTER_HOME (a restart; test_daemon_restart.py).
                "new_daemon": lambda: DaemonProcess(tmp_path / "dagster_home", env, tmp_path / "daemon.log"),
            }
    finally:
        ledger.dispose()


def test_the_daemon_takes_orders_to_shipped_retries_a_crashed_run_and_runs_one_batch_per_flow(
    operator_stack,
):
    sandbox, ledger = operator_stack["sandbox"], operator_stack["ledger"]
    daemon, instance = operator_stack["daemon"], operator_stack["instance"]
    url, rng = sandbox.url, random.Random(2027)
    metrics_before = scrape(operator_stack["metrics_url"])

    # (b) Flow A's first run stalls in its step: NetSuite answers nothing until released.
    netsuite_limits(url, {"concurrency": 1000, "hold": True})
    try:
        first = place(url, build_order(sandbox.hub.catalog, rng))
        stalled = daemon.wait_for(
            "flow A's first run to start its step", lambda: run_in_its_step(instance, "A"), HANG_GUARD
        )
        # (c) A second order meanwhile: another flow A run is queued behind it (one run per flow).
        second = place(url, build_order(sandbox.hub.catalog, rng))
        queued = daemon.wait_for(
            "another flow A run to be queued behind it",
            lambda: next(
                (
                    r
                    for r in runs(instance, "A")
                    if r.dagster_run.status == dg.DagsterRunStatus.QUEUED
                    and r.dagster_run.run_id != stalled.dagster_run.run_id
                ),
                None,
            ),
            HANG_GUARD,
        )
        assert instance.get_run_by_id(stalled.dagster_run.run_id).status == dg.DagsterRunStatus.STARTED

        pid = run_worker_pid(instance, stalled.dagster_run.run_id)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    finally:
        netsuite_limits(url, {"concurrency": NETSUITE_POOL, "hold": False})

    crashed_id = stalled.dagster_run.run_id
    daemon.wait_for(
        "the crashed run to be marked failed",
        lambda: instance.get_run_by_id(crashed_id).status == dg.DagsterRunStatus.FAILURE,
        HANG_GUARD,
    )
    retry = daemon.wait_for(
        "the daemon's retry of the crashed run to succeed",
        lambda: next(
            (
                r
                for r in instance.get_runs(filters=dg.RunsFilter(tags={"dagster/parent_run_id": crashed_id}))
                if r.status == dg.DagsterRunStatus.SUCCESS
            ),
            None,
        ),
        HANG_GUARD,
    )
    assert retry.tags.get("dagster/retry_number") == "1"
    assert retry.tags.get(TAG_FLOW) == "A"

    # (a) Flow B sends both to DCL; DCL ships them; flow C reports the shipments everywhere.
    numbers = daemon.wait_for(
        "both orders at DCL",
        lambda: dcl_order_numbers(url, [first, second]),
        HANG_GUARD,
    )
    for number in numbers:
        shipped = httpx.post(f"{url}/_sandbox/dcl/orders/{number}/ship", json={}, timeout=30)
        assert shipped.status_code == 200, shipped.text
    state = daemon.wait_for(
        "both orders shipped everywhere, every run finished",
        lambda: settled(url, ledger, instance, [first, second]),
        HANG_GUARD,
    )
    assert_each_record_once(state, [first, second])

    # (c) From the run records: no two runs of one flow overlapped, although one had to wait.
    by_flow = flow_runs(instance)
    assert set(by_flow) >= {"A", "B", "C"}
    for flow, records in by_flow.items():
        started = sorted((r for r in records if r.start_time is not None), key=lambda r: r.start_time or 0)
        for earlier, later in itertools.pairwise(started):
            assert earlier.end_time is not None and later.start_time is not None
            assert earlier.end_time <= later.start_time, f"two flow {flow} runs overlapped"
    waited = instance.get_run_record_by_id(queued.dagster_run.run_id)
    crashed = instance.get_run_record_by_id(crashed_id)
    assert waited.create_timestamp.timestamp() < crashed.end_time <= waited.start_time

    # (d) Only the run workers called NetSuite, DCL and StateSet: their counts reached the scrape.
    metrics = scrape(operator_stack["metrics_url"])
    for system in ("netsuite", "dcl", "stateset"):
        calls = [value(m, "mienne_ops_api_calls_total", system=system) for m in (metrics_before, metrics)]
        assert calls[1] > calls[0], system
    ticked = {
        dict(labels)["sensor"] for name, labels in metrics if name == "mienne_ops_sensor_tick_age_seconds"
    }
    assert set(FLOW_SENSORS.values()) <= ticked, ticked


# -- the sandbox ----------------------------------------------------------------------------------
NETSUITE_POOL = 5  # the sandbox account's concurrency pool, as after a reset


def netsuite_limits(url: str, body: dict[str, Any]) -> None:
    httpx.post(f"{url}/_sandbox/netsuite/limits", json=body, timeout=30).raise_for_status()


def place(url: str, payload: dict[str, Any]) -> str:
    response = httpx.post(f"{url}/_sandbox/shopify/orders", json=payload, timeout=30)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def external_id(order_id: str) -> str:
    return f"shopify-order-{order_id}"


def dcl_order_numbers(url: str, order_ids: list[str]) -> list[str] | None:
    state = sandbox_state(url)
    tran_ids = {
        so["tranId"]
        for so in state["netsuite"]["sales_orders"]
        if so["externalId"] in {external_id(i) for i in order_ids}
    }
    at_dcl = sorted(o["order_number"] for o in state["dcl"]["orders"] if o["order_number"] in tran_ids)
    return at_dcl if len(tran_ids) == len(order_ids) and len(at_dcl) == len(order_ids) else None


def settled(
    url: str, ledger: Ledger, instance: dg.DagsterInstance, order_ids: list[str]
) -> dict[str, Any] | None:
    """The sandbox's state once every order is shipped everywhere and nothing is left to do:
    no run queued or running, no exception open or waiting for a retry."""
    if in_progress(instance) or ledger.exceptions(statuses=["open", "retrying"]):
        return None
    state = sandbox_state(url)
    shopify = {str(o["id"]): o for o in state["shopify"]["orders"]}
    shipped_in_stateset = {
        o["data"]["metadata"]["external_id"] for o in state["stateset"]["orders"] if o["status"] == "SHIPPED"
    }
    done = (
        all(shopify[i]["fulfillments"] for i in order_ids)
        and {external_id(i) for i in order_ids} <= shipped_in_stateset
        and len(state["netsuite"]["item_fulfillments"]) >= len(order_ids)
        and len(state["netsuite"]["cash_sales"]) >= len(order_ids)
    )
    return state if done else None


def assert_each_record_once(state: dict[str, Any], order_ids: list[str]) -> None:
    externals = {external_id(i) for i in order_ids}
    sales_orders = state["netsuite"]["sales_orders"]
    assert Counter(so["externalId"] for so in sales_orders) == Counter(externals)
    tran_ids = {so["tranId"] for so in sales_orders}
    dcl_orders = state["dcl"]["orders"]
    assert sorted(o["order_number"] for o in dcl_orders) == sorted(tran_ids)
    assert [len(o["shipments"]) for o in dcl_orders] == [1, 1]
    assert len(state["netsuite"]["item_fulfillments"]) == 2
    assert len(state["netsuite"]["cash_sales"]) == 2
    stateset = state["stateset"]["orders"]
    assert Counter(o["data"]["metadata"]["external_id"] for o in stateset) == Counter(externals)
    assert {o["status"] for o in stateset} == {"SHIPPED"}
    tracking = {
        so["externalId"]: sorted(
            p["tracking_number"]
            for o in dcl_orders
            if o["order_number"] == so["tranId"]
            for s in o["shipments"]
            for p in s["packages"]
        )
        for so in sales_orders
    }
    shopify = {str(o["id"]): o for o in state["shopify"]["orders"]}
    for order_id in order_ids:
        (fulfillment,) = shopify[order_id]["fulfillments"]
        assert sorted(fulfillment["tracking_numbers"]) == tracking[external_id(order_id)]
        assert "SENT_TO_NS" in shopify[order_id]["tags"]


# -- the daemon's instance ------------------------------------------------------------------------
def runs(instance: dg.DagsterInstance, flow: str) -> list[dg.RunRecord]:
    return list(instance.get_run_records(filters=dg.RunsFilter(tags={TAG_FLOW: flow})))


def flow_runs(instance: dg.DagsterInstance) -> dict[str, list[dg.RunRecord]]:
    by_flow: dict[str, list[dg.RunRecord]] = defaultdict(list)
    for record in instance.get_run_records():
        flow = record.dagster_run.tags.get(TAG_FLOW)
        if flow:
            by_flow[flow].append(record)
    return by_flow


def run_in_its_step(instance: dg.DagsterInstance, flow: str) -> dg.RunRecord | None:
    """The flow's one started run, once its step has started."""
    started = [r for r in runs(instance, flow) if r.dagster_run.status == dg.DagsterRunStatus.STARTED]
    assert len(started) <= 1, f"{len(started)} flow {flow} runs started at once"
    if not started:
        return None
    step_started = instance.all_logs(started[0].dagster_run.run_id, of_type=dg.DagsterEventType.STEP_START)
    return started[0] if step_started else None


def in_progress(instance: dg.DagsterInstance) -> bool:
    records = [record for flow in flow_runs(instance).values() for record in flow]
    return any(record.dagster_run.status in IN_PROGRESS for record in records)
