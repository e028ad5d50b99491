"""The receiver's one write: a verified delivery into the ledger inbox, off the event loop.

The ledger is synchronous (SQLAlchemy). Called inside an ``async`` handler, one insert waiting on a
locked SQLite file froze the whole receiver for 19–39 s, ``/health`` included (issue 13). So the
insert runs in a worker thread (`anyio.to_thread`), and the event loop keeps answering.

The values are checked against the inbox's columns first (PostgreSQL refuses an over-long value with
an error, SQLite keeps it: a 400 on both). A database failure is answered 503 — Shopify retries a
5xx, so the delivery is not lost — and logged by its class and event id only: the payload (names,
addresses, phone numbers) never reaches a log, which `Ledger`'s ``hide_parameters=True`` also keeps
out of SQLAlchemy's own error text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse

from mienne_ops.ledger import Ledger
from mienne_ops.observability.process_metrics import observe_delivery
from mienne_ops.webhooks.inputs import column_fits

log = logging.getLogger("mienne_ops.webhooks")


@dataclass(frozen=True)
class InboxEntry:
    source: str
    event_id: str
    topic: str
    payload: Any
    resource_id: str | None = None
    triggered_at: str | None = None

    def check(self) -> InboxEntry:
        """The entry, or `BadInput` when a value does not fit its inbox column."""
        for column in ("source", "event_id", "topic", "resource_id", "triggered_at"):
            column_fits(column, getattr(self, column))
        return self


async def store(ledger: Ledger, entry: InboxEntry) -> JSONResponse:
    """Store ``entry`` once (200 ``stored`` true, or false for a duplicate), 503 when the ledger fails;
    `BadInput` when a value does not fit. Every source's delivery ends here: the place to observe it."""
    entry.check()
    try:
        stored = await anyio.to_thread.run_sync(_store, ledger, entry)
    except SQLAlchemyError as error:
        log.error(
            "could not store %s event %s in the inbox (%s); answered 503 so the sender retries",
            entry.source,
            entry.event_id,
            type(error).__name__,
        )
        return JSONResponse({"error": "the ledger is unavailable"}, status_code=503)
    observe_delivery(entry.source, entry.topic, stored)
    return JSONResponse({"stored": stored})


def _store(ledger: Ledger, entry: InboxEntry) -> bool:
    return ledger.store_event(
        entry.source,
        entry.event_id,
        entry.topic,
        entry.payload,
        resource_id=entry.resource_id,
        triggered_at=entry.triggered_at,
    )
