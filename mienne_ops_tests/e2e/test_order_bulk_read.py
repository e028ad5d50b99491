"""Flow A's bulk read of a large batch (issue 7, item 8): one bulk operation instead of one
`get_order` per order, the same sales orders as the per-order path, and per-order reads whenever the
bulk read misses an order or fails. Calls are counted by the client's `STATS`; the fake moves a bulk
operation one step per status read, so nothing depends on time.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from mienne_ops import settings
from mienne_ops.business_rules import BusinessRules
from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.integrations.http import STATS
from mienne_ops.ledger import Ledger
from mienne_ops.resources import build_resources
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops.sync.batch import Outcome
from mienne_ops.sync.catalog import NetSuiteCatalog
from mienne_ops.sync.orders import OrderIngestor, mapping_config
from mienne_ops_tests.support import new_ledger

pytestmark = pytest.mark.e2e

BATCH = 6


@pytest.fixture
def env(sandbox, state_dir, monkeypatch):
    monkeypatch.setenv("MIENNE_SANDBOX_URL", sandbox.url)
    return sandbox


def place_orders(sandbox, count: int, seed: int = 8) -> list[str]:
    rng, keys = random.Random(seed), []
    for _ in range(count):
        order = build_order(sandbox.hub.catalog, rng)
        response = httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=order, timeout=30)
        assert response.status_code == 201
        keys.append(str(response.json()["id"]))
    return keys


@contextmanager
def flow_a(min_orders: int, ledger_url: str | None = None) -> Iterator[tuple[OrderIngestor, Ledger]]:
    """Flow A's ingestor on the sandbox and a ledger (the test's own unless given; closed on exit)."""
    resources = build_resources(retry_base_delay_seconds=0.02, max_attempts=3)
    ledger = new_ledger(ledger_url or settings.ledger_url())
    managers = [
        resources[name].process_config_and_initialize_cm() for name in ("shopify", "netsuite", "stateset")
    ]
    try:
        shopify, netsuite, stateset = (manager.__enter__().client for manager in managers)
        rules = BusinessRules()
        mapping = mapping_config(rules, NetSuiteCatalog.load(netsuite).item_ids)
        yield (
            OrderIngestor(shopify, netsuite, stateset, ledger, mapping, bulk_read_min_orders=min_orders),
            ledger,
        )
    finally:
        for manager in reversed(managers):
            manager.__exit__(None, None, None)
        ledger.dispose()


def import_batch(ingestor: OrderIngestor, keys: list[str]) -> tuple[int, list[Outcome], dict[str, float]]:
    """(orders read ahead, outcomes, Shopify calls by operation) of one batch, as the flow A op runs it."""
    STATS.reset()
    read = ingestor.read_ahead(keys)
    outcomes = [ingestor.ingest(key) for key in keys]
    calls = STATS.snapshot()["calls"]
    return (
        read,
        outcomes,
        {k.removeprefix("shopify:"): v for k, v in calls.items() if k.startswith("shopify:")},
    )


def sales_orders(sandbox, keys: list[str]) -> dict[str, dict]:
    wanted = {f"shopify-order-{key}" for key in keys}
    found = {so["externalId"]: so for so in sandbox_state(sandbox.url)["netsuite"]["sales_orders"]}
    return {
        eid: {**so, "lines": [{k: v for k, v in line.items() if k != "line"} for line in so["lines"]]}
        for eid, so in found.items()
        if eid in wanted
    }


def test_the_bulk_read_gives_exactly_what_get_order_gives(env):
    keys = place_orders(env, BATCH)
    with flow_a(BATCH) as (ingestor, _ledger):
        shopify = ingestor.shopify
        bulk = {str(node["legacyResourceId"]): node for node in shopify.bulk_orders(f"id:>={keys[0]}")}
        assert sorted(bulk) == sorted(keys)
        middle = shopify.bulk_orders(f"id:>={keys[2]} id:<={keys[3]}")  # Shopify's `id` range filter
        assert [str(node["legacyResourceId"]) for node in middle] == keys[2:4]
        for key in keys:
            single = shopify.get_order(int(key))
            for connection in ("lineItems", "shippingLines"):  # the cursor of the last page read differs
                single[connection]["pageInfo"]["endCursor"] = None
            assert bulk[key] == single


def test_a_large_batch_is_read_with_one_bulk_operation_and_maps_as_read_one_by_one(env, tmp_path):
    keys = place_orders(env, BATCH)
    with flow_a(BATCH) as (ingestor, _ledger):
        read, outcomes, calls = import_batch(ingestor, keys)
    assert read == BATCH and outcomes == [Outcome.DONE] * BATCH
    assert calls.get("bulk_operation_run_query") == 1 and "order" not in calls
    by_bulk = sales_orders(env, keys)
    assert len(by_bulk) == BATCH

    # The same orders again under a new ledger, read one by one: the upserts by external id write
    # every sales order exactly as the bulk-read import did (NetSuite numbers the replaced lines on).
    with flow_a(0, f"sqlite:///{tmp_path / 'second-ledger.db'}") as (ingestor, _ledger):
        read, outcomes, calls = import_batch(ingestor, keys)
    assert read == 0 and calls.get("order") == BATCH and "bulk_operation_run_query" not in calls
    assert sales_orders(env, keys) == by_bulk


def test_a_small_batch_keeps_the_per_order_reads(env):
    keys = place_orders(env, BATCH - 1)
    with flow_a(BATCH) as (ingestor, _ledger):
        read, outcomes, calls = import_batch(ingestor, keys)
    assert read == 0 and outcomes == [Outcome.DONE] * (BATCH - 1)
    assert calls.get("order") == BATCH - 1 and "bulk_operation_run_query" not in calls


def test_an_order_missing_from_the_bulk_result_is_read_alone(env):
    keys = place_orders(env, BATCH)
    # Tagged already (a run that crashed after tagsAdd): the bulk search leaves it out.
    tagged = keys[2]
    with flow_a(BATCH) as (ingestor, _ledger):
        ingestor.shopify.add_tags(int(tagged), ["SENT_TO_NS"])
        read, outcomes, calls = import_batch(ingestor, keys)
    assert read == BATCH - 1 and outcomes == [Outcome.DONE] * BATCH
    assert calls.get("bulk_operation_run_query") == 1 and calls.get("order") == 1
    assert len(sales_orders(env, keys)) == BATCH


def test_a_failed_bulk_read_falls_back_to_per_order_reads_and_a_rerun_creates_nothing(env):
    keys = place_orders(env, BATCH)
    knobs = {"fail_next": "TIMEOUT"}
    httpx.post(f"{env.url}/_sandbox/shopify/bulk_operations", json=knobs, timeout=30).raise_for_status()
    with flow_a(BATCH) as (ingestor, _ledger):
        read, outcomes, calls = import_batch(ingestor, keys)
        assert read == 0 and outcomes == [Outcome.DONE] * BATCH
        assert calls.get("bulk_operation_run_query") == 1 and calls.get("order") == BATCH
        operations = sandbox_state(env.url)["shopify"]["bulk_operations"]
        assert [op["status"] for op in operations] == ["FAILED"]
        first = sandbox_state(env.url)

        read, outcomes, calls = import_batch(ingestor, keys)
    assert read == 0 and outcomes == [Outcome.SKIPPED] * BATCH and calls == {}
    again = sandbox_state(env.url)
    for system, kind in (("netsuite", "sales_orders"), ("stateset", "orders")):
        assert again[system][kind] == first[system][kind]
