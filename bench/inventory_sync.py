"""Benchmark flow E: 20,000 SKUs (2,000 kits) x 2 warehouses against the sandbox at Standard limits.

    python bench/inventory_sync.py [--skus 20000] [--bundles 2000] [--changed 0.01]

The sandbox runs in a child process (so the peak memory printed is the sync's own), loaded with a
synthetic catalog by a bench-side bulk loader (`SandboxHub.reset` with a bigger `build_catalog`): the
default reset keeps its ~325 SKUs. Shopify's GraphQL bucket is Standard: 100 points/s, 2,000 max.

1. **Full sync**: NetSuite levels (SuiteQL, 1,000 rows a page) for both warehouses, kit BOMs, one
   read of every Shopify level (the CAS baseline), then every differing quantity pushed with
   ``inventorySetQuantities`` (250 per call).
2. **Delta sync**: 1 % of NetSuite quantities change; NetSuite is read again, available-to-sell
   recomputed, and only the changed quantities (the SKUs and the kits built from them) are pushed,
   with the last push as the CAS baseline (no full Shopify read).

Printed per phase: wall time, Shopify cost points and calls, NetSuite calls, peak RSS, and the ratio
of the achieved Shopify rate to the cost bound (points spent beyond the initial bucket / 100 per s).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mienne_ops.business_rules import BusinessRules
from mienne_ops.integrations.http import STATS
from mienne_ops.integrations.netsuite import client_for
from mienne_ops.integrations.shopify import ShopifyResource
from mienne_ops.ledger import Ledger
from mienne_ops.ledger.migrate import upgrade_ledger
from mienne_ops.sandbox import credentials
from mienne_ops.sync.inventory import InventorySettings, InventorySync

RESTORE_RATE = 100.0
BUCKET = 2000.0


def serve_big_sandbox(db_path: str, skus: int, bundles: int, ready, stop) -> None:
    """Child process: the sandbox with a synthetic catalog of ``skus`` SKUs, ``bundles`` of them kits."""
    from mienne_ops.sandbox.catalog import build_catalog
    from mienne_ops.sandbox.server import SandboxServer

    with SandboxServer(db_path) as server:
        started = time.perf_counter()
        # skus = plain + kits + the catalog's one legacy kit built on a discontinued component.
        server.hub.catalog = build_catalog(sku_count=skus - bundles, bundle_count=bundles - 1)
        server.hub.reset()
        ready.put({"url": server.url, "load_seconds": time.perf_counter() - started})
        stop.wait()


def snapshot() -> dict[str, float]:
    stats = STATS.snapshot()
    return {
        "shopify_calls": stats["calls"].get("shopify", 0),
        "shopify_points": stats["units"].get("shopify:cost", 0),
        "netsuite_calls": stats["calls"].get("netsuite", 0),
        "retries": sum(stats["retries"].values()),
    }


def report(name: str, started: float, before: dict[str, float], extra: str) -> dict[str, float]:
    wall = time.perf_counter() - started
    after = snapshot()
    spent = {k: after[k] - before[k] for k in after}
    bound = max(0.0, spent["shopify_points"] - BUCKET) / RESTORE_RATE
    # The bucket lets `BUCKET` points go at once, then RESTORE_RATE per second: no client can spend
    # these points faster than `bound` seconds; the ratio says how close to that we came.
    ratio = bound / wall if wall else 0.0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{name:<6} wall {wall:7.1f} s | Shopify {spent['shopify_points']:8.0f} points in "
        f"{spent['shopify_calls']:4.0f} calls | NetSuite {spent['netsuite_calls']:3.0f} calls | "
        f"retries {spent['retries']:.0f} | peak RSS {peak_mb:6.0f} MB | "
        f"achieved {spent['shopify_points'] / wall:5.1f} pts/s; cost-bound time {bound:.0f} s, "
        f"ratio bound/actual {ratio:.2f} | {extra}"
    )
    return {"wall": wall, **spent}


def full_sync(sync: InventorySync, locations: list[str]) -> int:
    now = datetime.now(UTC)
    sync.read_boms()
    sync.read_shopify(now)
    pushed = 0
    for location in locations:
        sync.read_netsuite(location, now)
        sync.compute_bundles(location)
        sync.compute_ats(location)
        pushed += sync.push(location, fresh_shopify=True).pushed
    return pushed


def delta_sync(sync: InventorySync, locations: list[str]) -> tuple[int, int]:
    now = datetime.now(UTC)
    sync.read_boms()
    pushed = changed = 0
    for location in locations:
        before = sync.store.levels("ats", location)
        sync.read_netsuite(location, now)
        sync.compute_bundles(location)
        after = sync.compute_ats(location)
        items = sync.store.items()
        changed += sum(
            1
            for sku, row in after.items()
            if sku in items and not items[sku][1] and before.get(sku) != row.available
        )
        pushed += sync.push(location).pushed
    return pushed, changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=20_000)
    parser.add_argument("--bundles", type=int, default=2_000)
    parser.add_argument("--changed", type=float, default=0.01, help="share of NetSuite levels changed")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mienne-bench-inventory-"))
    context = mp.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    child = context.Process(
        target=serve_big_sandbox,
        args=(str(workdir / "world.db"), args.skus, args.bundles, ready, stop),
        daemon=True,
    )
    child.start()
    try:
        info = ready.get(timeout=600)
        url = info["url"]
        print(
            f"sandbox: {args.skus} SKUs ({args.bundles} kits) x 2 warehouses loaded in "
            f"{info['load_seconds']:.1f} s at {url}; Shopify {RESTORE_RATE:.0f} pts/s, bucket {BUCKET:.0f}"
        )
        httpx.post(
            f"{url}/_sandbox/shopify/limits", json={"restore_rate": RESTORE_RATE, "bucket_size": BUCKET}
        )
        shopify = ShopifyResource(shop_url=f"{url}/shopify", access_token=credentials.SHOPIFY["access_token"])
        ledger_url = f"sqlite:///{workdir / 'ledger.db'}"
        upgrade_ledger(ledger_url)
        sync = InventorySync(
            client_for(credentials.NETSUITE, base_url=f"{url}/netsuite"),
            None,
            shopify.build_client(),
            Ledger(ledger_url),
            InventorySettings.from_rules(BusinessRules()),
        )
        locations = list(sync.settings.netsuite_locations)

        STATS.reset()
        started, before = time.perf_counter(), snapshot()
        pushed = full_sync(sync, locations)
        report("full", started, before, f"{pushed} quantities pushed")

        catalog = httpx.get(f"{url}/_sandbox/catalog", timeout=60).json()
        plain = [s for s in catalog["skus"] if s["item_type"] == "InvtPart" and s["active"]]
        rng = random.Random(7)
        picks = rng.sample(
            [(s, loc) for s in plain for loc in sync.settings.netsuite_locations.values()],
            int(len(plain) * len(locations) * args.changed),
        )
        with httpx.Client(timeout=30) as control:
            for sku, location_id in picks:
                control.post(
                    f"{url}/_sandbox/netsuite/inventory",
                    json={
                        "item": sku["netsuite_item_id"],
                        "location": location_id,
                        "quantityonhand": rng.randrange(0, 400),
                    },
                ).raise_for_status()

        started, before = time.perf_counter(), snapshot()
        pushed, changed = delta_sync(sync, locations)
        report(
            "delta",
            started,
            before,
            f"{len(picks)} NetSuite levels changed -> {changed} sellable quantities changed, {pushed} pushed",
        )
        if pushed != changed:
            raise SystemExit(f"delta pushed {pushed} quantities but {changed} changed")
    finally:
        stop.set()
        child.join(timeout=30)


if __name__ == "__main__":
    main()
