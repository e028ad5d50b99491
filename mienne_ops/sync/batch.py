"""Run one flow step over many records so that one bad record never blocks the others.

Every record is handled in isolation. Its outcome is one of: done, skipped (already done before),
quarantined (a permanent problem: bad input or a rejection; it goes to the ledger's exceptions queue
with its reason and stays there until a later success resolves it) or retrying (a transient failure
that outlived the HTTP core's retries; quarantined as *retrying* and picked up again by the next run
or the reconciliation poll). Nothing is dropped silently.

The one exception to isolation: a system rejecting our credentials (`AuthError`, e.g. a revoked
NetSuite token answering 401 to everything) is no record's fault. The batch stops at once, quarantines
nothing and raises that error, so the run fails with one clear message (and an alert); the records
it did not reach are simply picked up by the next run once the credentials are fixed.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

from mienne_ops.errors import (
    AuthError,
    InvalidRecordError,
    MienneOpsError,
    PermanentError,
    TransientError,
    WaitingError,
)
from mienne_ops.ledger import Ledger

log = logging.getLogger("mienne_ops.sync")


class Outcome(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"
    QUARANTINED = "quarantined"
    RETRYING = "retrying"
    # Queued as retrying like a transient error, but nothing a step retry could change (a Shopify
    # fulfillment order on hold): the sensor brings it back; the step itself succeeds.
    WAITING = "waiting"


@dataclass
class Problem:
    key: str
    outcome: Outcome
    reason: str
    message: str
    entity: str = ""


@dataclass(frozen=True)
class Handled:
    """One record a batch handled and how it ended, so a run can say *which* orders it touched."""

    entity: str
    key: str
    outcome: Outcome


@dataclass
class BatchReport:
    flow: str
    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    problems: list[Problem] = field(default_factory=list)
    handled: list[Handled] = field(default_factory=list)

    def add(
        self, outcome: Outcome, problem: Problem | None = None, *, entity: str = "", key: str | None = None
    ) -> None:
        self.counts[outcome] += 1
        if problem is not None:
            self.problems.append(problem)
        if key is not None:
            self.handled.append(Handled(entity, key, outcome))

    def last_outcomes(self) -> dict[tuple[str, str], Outcome]:
        """Each record's final outcome by (entity, key): when one run handles a record twice (flow B
        plans an order, then confirms DCL's answer) the later step has the last word."""
        return {(h.entity, h.key): h.outcome for h in self.handled}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def retrying(self) -> list[Problem]:
        return [p for p in self.problems if p.outcome is Outcome.RETRYING]

    def merge(self, other: BatchReport) -> None:
        """Add another step's outcomes (e.g. cancellations handled in the same run)."""
        for outcome, count in other.counts.items():
            self.counts[outcome] += count
        self.problems.extend(other.problems)
        self.handled.extend(other.handled)

    def summary(self) -> str:
        parts = [f"{outcome.value} {count}" for outcome, count in self.counts.items() if count]
        return f"flow {self.flow}: " + (", ".join(parts) if parts else "nothing to do")


def reason_for(error: Exception) -> str:
    """A short machine-readable reason for the exceptions queue."""
    if isinstance(error, InvalidRecordError | WaitingError):
        return error.reason
    if isinstance(error, MienneOpsError):
        base = (error.system or "error").lower()
        return f"{base}_{error.code or type(error).__name__}".lower()[:64]
    return f"unexpected_{type(error).__name__}".lower()[:64]


def run_batch(
    *,
    flow: str,
    entity: str,
    keys: Iterable[str],
    handle: Callable[[str], Outcome],
    ledger: Ledger,
    workers: int = 1,
) -> BatchReport:
    """Call ``handle(key)`` for every key, isolating and recording each failure.

    With ``workers > 1`` records are handled concurrently (API latency, not CPU, bounds a flow);
    the clients cap their own concurrency per system (e.g. NetSuite's account pool).
    """
    report = BatchReport(flow)
    lock = threading.Lock()
    rejected: list[AuthError] = []

    def one(key: str) -> None:
        key = str(key)
        if rejected:
            return  # the credentials were refused: stop, the next run takes this record
        try:
            outcome = handle(key)
        except AuthError as error:
            with lock:
                rejected.append(error)
            log.error("flow %s: credentials rejected on %s %s: %s", flow, entity, key, error)
            return
        except WaitingError as error:
            _record(report, lock, ledger, flow, entity, key, Outcome.WAITING, error)
            return
        except TransientError as error:
            _record(report, lock, ledger, flow, entity, key, Outcome.RETRYING, error)
            return
        except PermanentError as error:
            _record(report, lock, ledger, flow, entity, key, Outcome.QUARANTINED, error)
            return
        except Exception as error:  # a bug must quarantine one record, not stop the batch
            log.exception("flow %s: unexpected error on %s %s", flow, entity, key)
            detail = "".join(traceback.format_exception_only(type(error), error)).strip()
            _record(report, lock, ledger, flow, entity, key, Outcome.QUARANTINED, error, detail)
            return
        if outcome in (Outcome.DONE, Outcome.SKIPPED):
            ledger.resolve(flow, entity, key)
        with lock:
            report.add(outcome, entity=str(entity), key=key)

    if workers <= 1:
        for key in keys:
            one(key)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"flow-{flow}") as pool:
            list(pool.map(one, keys))
    if rejected:
        raise rejected[0]
    return report


def _record(
    report: BatchReport,
    lock: threading.Lock,
    ledger: Ledger,
    flow: str,
    entity: str,
    key: str,
    outcome: Outcome,
    error: Exception,
    detail: str | None = None,
) -> None:
    reason = reason_for(error)
    message = detail or str(error)
    payload = error.payload if isinstance(error, InvalidRecordError) else None
    ledger.quarantine(
        flow,
        entity,
        key,
        reason,
        message,
        retrying=outcome in (Outcome.RETRYING, Outcome.WAITING),
        context=payload,
    )
    with lock:
        report.add(outcome, Problem(key, outcome, reason, message, str(entity)), entity=str(entity), key=key)
    log.warning("flow %s: %s %s %s: %s", flow, entity, key, outcome.value, message)
