"""Flows A and B on two Celery workers: every order exactly once, and the API limits hold for the
whole deployment, not per process.

Two `dagster-celery` workers (distinct names, two pool processes each) serve every flow queue on a
private RabbitMQ vhost; the NetSuite and Shopify clients share their limits through Redis
(``MIENNE_LIMITER_URL``). The test plays the sensor daemon: it evaluates flow A's sensor, starts one
run coordinator per requested run at once (as the daemon's run launcher would), then does the same
for flow B. Four pool processes, each running several orders in parallel, could send NetSuite far
more than its pool allows; the sandbox's concurrency pool counts what it admitted and refused.
"""

import os
import random
import uuid
from collections import Counter
from collections.abc import Iterator

import dagster as dg
import httpx
import pytest
import redis
from dagster._core.instance.ref import InstanceRef

from mienne_ops.business_rules import BusinessRules
from mienne_ops.definitions import build_definitions
from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.integrations.netsuite import NetSuiteResource
from mienne_ops.integrations.shared_limits import LIMITER_PREFIX_ENV, LIMITER_URL_ENV
from mienne_ops.resources import LIVE_SWITCHES, build_resources
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops_tests.e2e.celery_kit import REDIS, CeleryDeployment, private_vhost
from mienne_ops_tests.support import new_ledger

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

ORDERS = 12
ORDERS_PER_RUN = 3  # four flow A runs at once, one per pool process, three orders in parallel each
IMPORTED_TAG = BusinessRules().imported_tag
#: The deployment's NetSuite limit (the client's default); the sandbox's pool is one larger, so a
#: request beyond our own limit shows as a peak above it, not only as a 429.
NETSUITE_LIMIT = NetSuiteResource.model_fields["max_concurrency"].default
SANDBOX_POOL = NETSUITE_LIMIT + 1


@pytest.fixture
def deployment(sandbox, database_url, tmp_path, monkeypatch) -> Iterator[dict]:
    """Sandbox, ledger on PostgreSQL, a Dagster instance on disk, Redis limits, two workers."""
    prefix = f"mienne-test-{uuid.uuid4().hex[:10]}"
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    new_ledger(database_url).dispose()
    with private_vhost() as broker:
        env = {
            "MIENNE_SANDBOX_URL": sandbox.url,
            "MIENNE_LEDGER_URL": database_url,
            "MIENNE_STATE_DIR": str(tmp_path / "state"),
            "DAGSTER_HOME": str(dagster_home),
            LIMITER_URL_ENV: REDIS,
            LIMITER_PREFIX_ENV: prefix,
            "MIENNE_EXECUTOR": "celery",
            "MIENNE_CELERY_BROKER_URL": broker,
            "MIENNE_CELERY_BACKEND_URL": "rpc://",
            "MIENNE_EDIT_WINDOW_MINUTES": "0",  # flow B sends orders at once (no edit window)
        }
        for variable in LIVE_SWITCHES.values():
            monkeypatch.delenv(variable, raising=False)
        for name, value in env.items():
            if name != "MIENNE_EXECUTOR":  # this process only evaluates sensors
                monkeypatch.setenv(name, value)
        process_env = {k: v for k, v in os.environ.items() if k not in LIVE_SWITCHES.values()}
        cluster = CeleryDeployment({**process_env, **env}, logs)
        # The instance's storage is created here, once: processes starting on an empty DAGSTER_HOME
        # at the same moment would race to create the same SQLite tables.
        instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home)))
        try:
            cluster.start_worker("worker-a")
            cluster.start_worker("worker-b")
            cluster.wait_for_workers()
            yield {"sandbox": sandbox, "cluster": cluster, "instance": instance}
        finally:
            cluster.stop_all()
            instance.dispose()
            limits = redis.Redis.from_url(REDIS)
            for key in limits.scan_iter(f"{prefix}:*"):
                limits.delete(key)
            limits.close()


def _place_orders(url: str, catalog) -> list[dict]:
    rng = random.Random(1212)
    placed = []
    for _ in range(ORDERS):
        response = httpx.post(f"{url}/_sandbox/shopify/orders", json=build_order(catalog, rng), timeout=30)
        response.raise_for_status()
        placed.append(response.json())
    return placed


def _requests(defs: dg.Definitions, instance: dg.DagsterInstance, sensor_name: str) -> list[dg.RunRequest]:
    """One evaluation of ``sensor_name``, as the daemon would make it."""
    repo = defs.get_repository_def()
    with dg.build_sensor_context(
        instance=instance, sensor_name=sensor_name, resources=defs.resources, repository_def=repo
    ) as context:
        return list(repo.get_sensor_def(sensor_name).evaluate_tick(context).run_requests or [])


def _run_through_workers(cluster: CeleryDeployment, requests: list[dg.RunRequest], job: str) -> None:
    for code, output in cluster.run_all(requests, job):
        assert code == 0, output[-4000:]


def _limits(url: str, system: str) -> dict:
    return httpx.post(f"{url}/_sandbox/{system}/limits", json={}, timeout=30).json()


def test_flows_a_and_b_on_two_celery_workers_hold_limits_and_exactly_once(deployment):
    sandbox, cluster = deployment["sandbox"], deployment["cluster"]
    url = sandbox.url
    httpx.post(f"{url}/_sandbox/netsuite/limits", json={"concurrency": SANDBOX_POOL}).raise_for_status()
    placed = _place_orders(url, sandbox.hub.catalog)
    rules = BusinessRules(
        reconcile_every_seconds=0, orders_per_run=ORDERS_PER_RUN, hold_edit_window_minutes=0
    )
    defs = build_definitions({**build_resources(), "rules": rules})
    instance = deployment["instance"]

    flow_a = _requests(defs, instance, "shopify_orders_sensor")
    assert len(flow_a) == ORDERS // ORDERS_PER_RUN
    _run_through_workers(cluster, flow_a, "shopify_order_ingestion_job")
    flow_b = _requests(defs, instance, "netsuite_dispatch_sensor")
    assert flow_b
    _run_through_workers(cluster, flow_b, "netsuite_dispatch_job")

    runs = instance.get_runs()
    assert len(runs) == len(flow_a) + len(flow_b)
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    # Both workers took steps; every step ran once (celery logs one line per finished task).
    steps = {name: cluster.log(name).count("succeeded in") for name in cluster.workers}
    assert all(steps.values()), steps
    assert sum(steps.values()) == len(runs)

    state = sandbox_state(url)
    ids = {str(order["id"]) for order in placed}
    sales_orders = Counter(so["externalId"] for so in state["netsuite"]["sales_orders"])
    assert sales_orders == Counter({f"shopify-order-{i}": 1 for i in ids})
    dcl_orders = Counter(order["order_number"] for order in state["dcl"]["orders"])
    assert len(dcl_orders) == ORDERS and set(dcl_orders.values()) == {1}
    assert len(state["stateset"]["orders"]) == ORDERS
    for order in state["shopify"]["orders"]:
        assert order["tags"].count(IMPORTED_TAG) == 1, order["tags"]
    # Nothing is left for either flow: a new tick asks for no runs.
    assert _requests(defs, instance, "shopify_orders_sensor") == []

    # The deployment never had more NetSuite requests in flight than its limit, so NetSuite never
    # refused one; Shopify's THROTTLED answers (if any) were waited out, since every run succeeded.
    netsuite = _limits(url, "netsuite")
    assert netsuite["refused"] == 0, netsuite
    assert 1 <= netsuite["max_in_flight"] <= NETSUITE_LIMIT, netsuite
    print(f"netsuite {netsuite}; shopify {_limits(url, 'shopify')}; steps per worker {steps}")
