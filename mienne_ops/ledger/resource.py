"""The ledger as a Dagster resource (one engine per run / step process / sensor tick)."""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr

from mienne_ops.ledger.store import Ledger


class LedgerResource(dg.ConfigurableResource):
    """SQLAlchemy URL of the ledger: SQLite by default, PostgreSQL in production."""

    url: str

    _ledger: Ledger | None = PrivateAttr(default=None)

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = Ledger(self.url)
        return self._ledger

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._ledger is not None:
            self._ledger.dispose()
            self._ledger = None
