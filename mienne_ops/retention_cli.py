"""Retention by hand: `mienne-ops ledger archive` and `mienne-ops ops purge-runs`.

mienne-ops ledger archive [--older-than-days 90] [--batch-size 2000]
    move finished orders (with their shipments, released holds), resolved exceptions, audit rows
    and inbox events older than N days to the ledger's archive tables (`ledger.archive`)
mienne-ops ops purge-runs [--older-than-days 30]
    delete finished Dagster runs older than N days with their event logs, from the instance in
    $DAGSTER_HOME (Dagster keeps runs forever otherwise)

The daily `retention_schedule` (flows/retention.py) does both with the same defaults.
"""

from __future__ import annotations

from datetime import timedelta

import click

from mienne_ops import settings


@click.command("archive")
@click.option("--older-than-days", default=90, show_default=True, type=click.IntRange(min=1))
@click.option("--batch-size", default=2000, show_default=True, type=click.IntRange(min=1))
def ledger_archive(older_than_days: int, batch_size: int) -> None:
    """Move finished orders older than N days (and what belongs to them) to the archive tables."""
    from mienne_ops.ledger import Ledger
    from mienne_ops.ledger.archive import ArchivePolicy, archive_ledger

    ledger = Ledger(settings.ledger_url())  # refuses a ledger not at the newest revision
    try:
        moved = archive_ledger(ledger.engine, ArchivePolicy(timedelta(days=older_than_days), batch_size))
    finally:
        ledger.dispose()
    if not moved:
        click.echo(f"nothing older than {older_than_days} days to archive")
    for table, count in sorted(moved.items()):
        click.echo(f"{table}: {count} archived")


@click.group()
def ops() -> None:
    """Operating the Dagster instance: retention."""


@ops.command("purge-runs")
@click.option("--older-than-days", default=30, show_default=True, type=click.IntRange(min=1))
def purge_runs_command(older_than_days: int) -> None:
    """Delete finished runs older than N days, with their event logs ($DAGSTER_HOME's instance)."""
    import dagster as dg

    from mienne_ops.flows.retention import purge_runs

    with dg.DagsterInstance.get() as instance:
        deleted = purge_runs(instance, timedelta(days=older_than_days))
    click.echo(f"deleted {deleted} finished runs older than {older_than_days} days")


def register(main: click.Group, ledger: click.Group) -> None:
    """Add the retention commands to the CLI (one line in cli.py)."""
    ledger.add_command(ledger_archive)
    main.add_command(ops)
