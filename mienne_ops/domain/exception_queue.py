"""Which records a flow's sensor hands to a run, given the flow's unresolved exceptions.

Every flow sensor follows one rule: what it found (a poll, a query, the webhook inbox) goes to a run
unless the record is quarantined (an ``open`` exception waits for an operator), and every record
with a ``retrying`` exception (a transient failure, or `mienne-ops exceptions retry`) comes back
whether or not it changed, because nothing else would bring it back. Records waiting on the outside
world (a Shopify fulfillment order on hold) are the one exception to "at once": they come back at a
slower pace. Pure, so the rule is tested without a ledger or a clock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol


class RetryingRecord(Protocol):
    """What the rule reads of a retrying exception (the ledger's exception rows have it)."""

    @property
    def key(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def last_seen(self) -> datetime: ...


@dataclass(frozen=True)
class ExceptionQueue:
    """One flow entity's unresolved exceptions: the quarantined keys and the retrying records."""

    open: frozenset[str] = frozenset()
    retrying: tuple[RetryingRecord, ...] = ()

    @property
    def retrying_keys(self) -> set[str]:
        return {record.key for record in self.retrying}

    def due(self, found: Iterable[str], retrying: Iterable[str] | None = None) -> set[str]:
        """``found`` minus the quarantined keys, plus ``retrying`` (by default every retrying key)."""
        again = self.retrying_keys if retrying is None else set(retrying)
        return (set(found) - self.open) | again

    def retrying_paced(self, now: datetime, recheck: timedelta, waiting_reasons: Collection[str]) -> set[str]:
        """Retrying keys, except those waiting (``waiting_reasons``) last tried less than ``recheck`` ago.

        A record waiting on a held fulfillment order cannot have changed because we tried again, so
        re-running it on every tick only spends API calls; it is re-checked every ``recheck``.
        """
        return {
            record.key
            for record in self.retrying
            if record.reason not in waiting_reasons or now - _aware(record.last_seen) >= recheck
        }


def _aware(moment: datetime) -> datetime:
    """The ledger's SQLite backend hands back naive UTC times."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
