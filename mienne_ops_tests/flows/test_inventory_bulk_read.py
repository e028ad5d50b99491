"""Flow E's full Shopify read goes through one bulk operation and stores what the paged read would."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from mienne_ops import settings
from mienne_ops.business_rules import BusinessRules
from mienne_ops.integrations.http import STATS, HttpCore, RetryPolicy
from mienne_ops.integrations.shopify import ShopifyClient
from mienne_ops.ledger.inventory import InventoryLedger
from mienne_ops.sandbox import credentials
from mienne_ops.sync.inventory import InventorySettings, InventorySync, shopify_location_gid
from mienne_ops_tests.support import new_ledger


def test_the_full_shopify_read_is_one_bulk_operation_with_the_paged_reads_result(sandbox, state_dir):
    # The comparison's paged read of the whole catalog costs more than a Standard bucket: a Plus shop.
    httpx.post(f"{sandbox.url}/_sandbox/shopify/limits", json={"plan": "plus"}).raise_for_status()
    rules = BusinessRules()
    core = HttpCore(
        "shopify",
        f"{sandbox.url}/shopify",
        headers={"X-Shopify-Access-Token": credentials.SHOPIFY["access_token"]},
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05),
        sleep=lambda _: None,
    )
    shopify = ShopifyClient(core)
    ledger = new_ledger(settings.ledger_url())
    try:
        sync = InventorySync(None, None, shopify, ledger, InventorySettings.from_rules(rules))
        calls_before = dict(STATS.snapshot()["calls"])
        stored = sync.read_shopify(datetime.now(UTC))
        calls = {k: v - calls_before.get(k, 0) for k, v in STATS.snapshot()["calls"].items()}
        paged = list(shopify.iter_inventory_items())
        store = InventoryLedger(ledger)
        assert stored == len(paged) > 250
        assert calls.get("shopify:bulk_operation_run_query") == 1 and not calls.get("shopify:inventory_items")
        for location, location_id in rules.shopify_location_by_warehouse.items():
            gid = shopify_location_gid(location_id)
            expected = {item["sku"]: item["levels"][gid] for item in paged if gid in item["levels"]}
            assert store.levels("shopify", location) == expected
        assert {sku for sku, (_, bundle) in store.items().items() if bundle} == {
            item["sku"] for item in paged if item["requires_components"]
        }
        state = httpx.get(f"{sandbox.url}/_sandbox/state").json()["shopify"]["bulk_operations"]
        assert [op["status"] for op in state] == ["COMPLETED"]
    finally:
        shopify.close()
        ledger.dispose()
