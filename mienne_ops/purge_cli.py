"""`mienne-ops ledger purge --older-than-days N`: personal data out of old inbox payloads.

Registered in the ``ledger`` group of cli.py. The default N is `BusinessRules.inbox_payload_retention_days`;
what is kept and why is in `ledger.retention`. Run it daily (cron, or a Kubernetes CronJob).
"""

from __future__ import annotations

from datetime import timedelta

import click

from mienne_ops import settings
from mienne_ops.business_rules import BusinessRules


@click.command("purge")
@click.option(
    "--older-than-days",
    type=click.IntRange(min=1),
    default=None,
    help="redact payloads older than N days [default: BusinessRules.inbox_payload_retention_days]",
)
def purge(older_than_days: int | None) -> None:
    """Replace the payloads of inbox events older than N days with a redacted marker (ids kept)."""
    from mienne_ops.ledger import Ledger
    from mienne_ops.ledger.retention import purge_inbox_payloads

    days = older_than_days or BusinessRules().inbox_payload_retention_days
    ledger = Ledger(settings.ledger_url())
    try:
        count = purge_inbox_payloads(ledger.engine, timedelta(days=days))
    finally:
        ledger.dispose()
    click.echo(f"redacted {count} inbox payload(s) received more than {days} day(s) ago")
