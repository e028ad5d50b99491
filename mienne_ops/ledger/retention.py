"""Inbox retention: the payloads of old deliveries lose their personal data; their ids stay.

Every verified webhook is kept in ``inbox_events`` with its whole payload — a Shopify order carries
the customer's name, email, phone and addresses — and was kept forever (issue 13). Sensors drain the
inbox within seconds; after ``BusinessRules.inbox_payload_retention_days`` a payload is only a copy
of what the vendor holds. `purge_inbox_payloads` replaces such payloads with `REDACTED` and keeps the
row: the event id still de-duplicates a late redelivery, and the resource id and trigger time still
order events for `webhooks.staleness`. Rows are rewritten in short batches (SQLite has one writer; a
receiver waiting on a long purge would answer 503s).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from mienne_ops.ledger import schema
from mienne_ops.ledger.sql import now

#: The payload that replaces a purged one (its first key lets a purge skip what is already purged).
REDACTED_KEY = "_redacted"
_BATCH = 500


def redacted_payload(moment: datetime) -> dict[str, str]:
    return {REDACTED_KEY: "personal data purged after the retention period", "purged_at": moment.isoformat()}


def purge_inbox_payloads(engine: sa.Engine, older_than: timedelta, at: datetime | None = None) -> int:
    """Redact the payloads of inbox events received before ``at - older_than``; how many were."""
    moment = at or now()
    table = schema.inbox_events
    # The JSON column's text starts with the marker's first key for a purged row, on both dialects
    # (SQLAlchemy writes the payload with json.dumps; PostgreSQL's json type keeps the text as given).
    purged = sa.cast(table.c.payload, sa.Text).like(f'{{"{REDACTED_KEY}"%')
    pending = (
        sa.select(table.c.id)
        .where(table.c.received_at < moment - older_than, sa.not_(purged))
        .order_by(table.c.id)
        .limit(_BATCH)
    )
    marker = redacted_payload(moment)
    total = 0
    while True:
        with engine.begin() as conn:
            ids = list(conn.execute(pending).scalars())
            if not ids:
                return total
            conn.execute(sa.update(table).where(table.c.id.in_(ids)).values(payload=marker))
        total += len(ids)


def is_redacted(payload: object) -> bool:
    return isinstance(payload, dict) and REDACTED_KEY in payload
