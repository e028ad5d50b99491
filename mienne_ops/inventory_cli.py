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


@inventory.command("show")
@click.argument("sku")
def inventory_show(sku: str) -> None:
    """Levels in each system, the last push and the bundle math of one SKU."""
    from mienne_ops.ledger import Ledger
    from mienne_ops.ledger.inventory import InventoryLedger

    store = InventoryLedger(Ledger(settings.ledger_url()))
    rows = store.sku_levels(sku)
    if not rows:
        raise click.ClickException(f"{sku} is unknown to the inventory ledger (run `inventory sync` first)")
    by_location: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_location.setdefault(row["location"], {})[row["source"]] = row
    pushes = {p["location"]: p for p in store.push_rows(sku)}
    kits, inactive = store.boms()
    for location, sources in sorted(by_location.items()):
        click.echo(f"{sku} @ {location}")
        for source in ("netsuite", "dcl", "shopify", "bundle", "ats"):
            if source in sources:
                row = sources[source]
                label = "available to sell" if source == "ats" else source
                click.echo(f"  {label:<18} {row['available']:>7}   (as of {row['as_of']})")
        ats = (sources.get("ats") or {}).get("detail") or {}
        if ats:
            click.echo(
                f"  = netsuite {ats.get('netsuite')} − in flight {ats.get('in_flight')} − buffer "
                f"{ats.get('buffer')}"
                + (f"   [{ats['flag']}: {ats.get('detail')}]" if ats.get("flag") else "")
            )
        push = pushes.get(location)
        if push:
            click.echo(
                f"  last push          {push['quantity']:>7}   at {push['pushed_at']} (data {push['as_of']})"
            )
        else:
            click.echo("  last push          never")
    if sku in kits:
        click.echo("bundle math (min over components of floor(available / quantity)):")
        for line in kits[sku]:
            stock = {loc: (srcs.get("netsuite") or {}).get("available") for loc, srcs in by_location.items()}
            note = " (inactive)" if line.component in inactive else ""
            levels = store.sku_levels(line.component)
            per_location = {r["location"]: r["available"] for r in levels if r["source"] == "netsuite"}
            have = {loc: per_location.get(loc, 0) for loc in sorted(stock)}
            parts = ", ".join(
                f"{loc}: {n} // {line.quantity} = {n // line.quantity}" for loc, n in have.items()
            )
            click.echo(f"  {line.component} × {line.quantity}{note}: {parts}")
    history = store.history(sku, limit=10)
    if history:
        click.echo("recent changes:")
        for entry in history:
            click.echo(f"  {entry['as_of']}  {entry['location']:<3} {entry['source']:<9} {entry['quantity']}")
