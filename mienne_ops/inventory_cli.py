"""`mienne-ops inventory …` — flow E by hand, outside Dagster (same sync layer, same ledger).

mienne-ops inventory sync [--sku SKU ...] [--location L] [--read-shopify]
    read NetSuite (and the kit BOMs), compute available to sell, push what changed to Shopify;
    a full sync (no --sku) shows a progress bar per warehouse
mienne-ops inventory show SKU
    the SKU's levels in every system, what was last pushed, and its bundle math
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import click

from mienne_ops import settings

if TYPE_CHECKING:
    from mienne_ops.sync.inventory import InventorySync

STEPS = ("NetSuite levels", "kit BOMs", "bundle availability", "available to sell", "Shopify push")


@contextmanager
def _inventory_sync() -> Iterator[InventorySync]:
    """Flow E's sync over the clients every CLI command uses (`mienne_ops.cli.api_clients`)."""
    from mienne_ops.business_rules import BusinessRules
    from mienne_ops.cli import api_clients  # here, not at the top: cli.py imports this module
    from mienne_ops.ledger import Ledger
    from mienne_ops.sync.inventory import InventorySettings, InventorySync

    ledger = Ledger(settings.ledger_url())
    try:
        with api_clients() as clients:
            yield InventorySync(
                clients.netsuite,
                clients.dcl,
                clients.shopify,
                ledger,
                InventorySettings.from_rules(BusinessRules()),
            )
    finally:
        ledger.dispose()


@click.group()
def inventory() -> None:
    """Inventory and bundle availability (flow E)."""


@inventory.command("sync")
@click.option("--sku", "skus", multiple=True, help="only these SKUs (repeatable)")
@click.option("--location", "locations", multiple=True, help="warehouse code (FR, LA); default all")
@click.option("--read-shopify", is_flag=True, help="read every Shopify level first (CAS baseline)")
def inventory_sync(skus: tuple[str, ...], locations: tuple[str, ...], read_shopify: bool) -> None:
    """Sync NetSuite -> Shopify now for some SKUs or everything."""
    with _inventory_sync() as sync:
        _sync_locations(sync, skus, locations, read_shopify)


def _sync_locations(
    sync: InventorySync, skus: tuple[str, ...], locations: tuple[str, ...], read_shopify: bool
) -> None:
    wanted = list(locations) or list(sync.settings.netsuite_locations)
    unknown = [loc for loc in wanted if loc not in sync.settings.netsuite_locations]
    if unknown:
        raise click.ClickException(f"unknown location(s): {', '.join(unknown)}")
    for location in wanted:
        as_of = datetime.now(UTC)
        # The last action (the push) returns the report printed below.
        actions: list[Callable[[], Any]] = [
            partial(sync.read_netsuite, location, as_of, skus),
            sync.read_boms,
            partial(sync.compute_bundles, location),
            partial(sync.compute_ats, location),
            partial(sync.push, location, skus, read_shopify=read_shopify),
        ]
        if skus:
            for action in actions:
                report = action()
        else:
            with click.progressbar(
                list(zip(STEPS, actions, strict=True)),
                label=f"{location}",
                item_show_func=lambda step: step[0] if step else "",
            ) as steps:
                for _, action in steps:
                    report = action()
        click.echo(report.summary())
        for sku, code, message in report.failed:
            click.echo(f"  failed {sku}: {code} {message}")
        click.echo(f"  {report_to_dagster(location, skus, report.summary())}")


def report_to_dagster(location: str, skus: tuple[str, ...], summary: str) -> str:
    """Record the sync in Dagster as materializations of the flow's assets for this warehouse, so
    the catalog and the partitions show it as they show a run's (a sync by hand used to be
    invisible there). The instance is DAGSTER_HOME's, else the one `mienne-ops dev` runs."""
    import dagster as dg

    from mienne_ops.cli import dagster_home
    from mienne_ops.flows.inventory import SYNC_ASSETS

    home = dagster_home()
    if not (home / "dagster.yaml").exists():
        return (
            f"not recorded in Dagster: no instance at {home} (set DAGSTER_HOME, or run `mienne-ops dev` once)"
        )
    metadata = {
        "by": "mienne-ops inventory sync (CLI)",
        "skus": ", ".join(skus) or "all",
        "summary": summary,
    }
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        for asset in SYNC_ASSETS:  # in dependency order: the automation sees nothing left to do
            instance.report_runless_asset_event(
                dg.AssetMaterialization(asset.key, partition=location, metadata=metadata)
            )
    finally:
        instance.dispose()
    return f"recorded in Dagster ({home}): {len(SYNC_ASSETS)} assets materialized for partition {location}"


@inventory.command("show")
@click.argument("sku")
def inventory_show(sku: str) -> None:
    """Levels in each system, the last push and the bundle math of one SKU.

    Every warehouse is listed; one never synced reads "unknown", never 0. A kit's numbers add up on
    screen: what its components' stock builds, then what their sellable stock (after orders in
    flight and buffers) builds, which is what Shopify gets.
    """
    from mienne_ops.business_rules import BusinessRules
    from mienne_ops.ledger import Ledger
    from mienne_ops.ledger.inventory import InventoryLedger
    from mienne_ops.sync.inventory import InventorySettings

    store = InventoryLedger(Ledger(settings.ledger_url()))
    rows = store.sku_levels(sku)
    kits, inactive = store.boms()
    if not rows and sku not in kits:
        raise click.ClickException(f"{sku} is unknown to the inventory ledger (run `inventory sync` first)")
    locations = sorted(InventorySettings.from_rules(BusinessRules()).netsuite_locations)
    levels = _by_location(rows)
    pushes = {p["location"]: p for p in store.push_rows(sku)}
    for location in locations:
        _echo_location(sku, location, levels.get(location), pushes.get(location), sku in kits)
    if sku in kits:
        _echo_bundle_math(store, kits[sku], inactive, locations)
    history = store.history(sku, limit=10)
    if history:
        click.echo("recent changes:")
        for entry in history:
            click.echo(f"  {entry['as_of']}  {entry['location']:<3} {entry['source']:<9} {entry['quantity']}")


UNKNOWN = "unknown"


def _by_location(rows: list[dict]) -> dict[str, dict[str, dict]]:
    by_location: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_location.setdefault(row["location"], {})[row["source"]] = row
    return by_location


def _echo_location(sku: str, location: str, sources: dict | None, push: dict | None, is_kit: bool) -> None:
    """One warehouse's numbers; what flow E computes (NetSuite's level, available to sell, a kit's
    count) is always listed — "unknown" when never synced there, since 0 would be a real level."""
    sources = sources or {}
    click.echo(f"{sku} @ {location}")
    always = {"netsuite", "ats", *(["bundle"] if is_kit else [])}
    labels = {"bundle": "kits from stock", "ats": "available to sell"}
    for source in ("netsuite", "dcl", "shopify", "bundle", "ats"):
        row = sources.get(source)
        label = labels.get(source, source)
        if row is not None:
            click.echo(f"  {label:<18} {row['available']:>7}   (as of {row['as_of']})")
        elif source in always:
            click.echo(f"  {label:<18} {UNKNOWN:>7}   (never synced at {location})")
    ats = (sources.get("ats") or {}).get("detail") or {}
    if ats:
        click.echo(_ats_sum(ats, is_kit))
    if push:
        click.echo(
            f"  last push          {push['quantity']:>7}   at {push['pushed_at']} (data {push['as_of']})"
        )
    else:
        click.echo("  last push          never")


def _ats_sum(ats: dict, is_kit: bool) -> str:
    """The available-to-sell sum as flow E computed it; a kit's in-flight orders and buffers are in
    its components' sellable stock (see the bundle math), so its own sum starts from that."""
    start = "kits from sellable" if is_kit else "netsuite"
    flag = f"   [{ats['flag']}: {ats.get('detail')}]" if ats.get("flag") else ""
    if is_kit:
        return f"  = {start} {ats.get('netsuite')} − kit buffer {ats.get('buffer')}{flag}"
    held, buffer = ats.get("in_flight"), ats.get("buffer")
    return f"  = {start} {ats.get('netsuite')} − in flight {held} − buffer {buffer}{flag}"


def _echo_bundle_math(store, bom, inactive, locations: list[str]) -> None:
    """Per component and warehouse: stock // per kit (kits from stock) and sellable // per kit
    (kits from sellable); each kit number is the minimum over its components."""
    click.echo("bundle math (min over components; stock, then sellable = stock − in flight − buffer):")
    for line in bom:
        note = " (inactive)" if line.component in inactive else ""
        levels = _by_location(store.sku_levels(line.component))
        parts = [_component_at(levels.get(location) or {}, location, line.quantity) for location in locations]
        click.echo(f"  {line.component} × {line.quantity}{note}: " + "; ".join(parts))


def _component_at(sources: dict, location: str, per_kit: int) -> str:
    stock = (sources.get("netsuite") or {}).get("available")
    if stock is None:
        return f"{location}: {UNKNOWN}"
    text = f"{location}: {stock} // {per_kit} = {stock // per_kit}"
    ats = (sources.get("ats") or {}).get("detail") or {}
    if ats:
        sellable = max(0, stock - int(ats.get("in_flight") or 0) - int(ats.get("buffer") or 0))
        text += f", sellable {sellable} // {per_kit} = {sellable // per_kit}"
    return text
