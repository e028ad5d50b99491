"""The one shape of a flow sensor: typed cursor, exception queue, in-flight guard, keyed batch runs.

Every order-flow sensor (A, B, C, D's two) polls a source, leaves out quarantined records, adds the
retrying ones, and requests one run per batch under a run key the daemon never repeats. The pieces
that were copied into each sensor live here once, so a new flow (returns, refunds, tickets) writes
only what it polls:

- `SensorCursor`: a pydantic model of the JSON the sensor keeps in Dagster; an empty cursor, or one
  written by an older version with other fields, reads as the defaults instead of failing the tick.
- `PollWindow` / `poll_since`: where a poll of a vendor's changes starts (the last poll, minus an
  overlap for the vendor's clock) and the time the cursor keeps for the next one.
- `read_exceptions`: the flow entity's exception queue in one ledger read (`domain.exception_queue`
  decides what is due).
- `flow_sensor`: `@dg.sensor` with the common settings and, for flows that run one batch at a time,
  the guard that skips the tick while a run of the job is queued or running.
- `BatchRuns` / `run_request`: run config built from the op's own `dg.Config` class, run
  key and flow tag, so no op or field name is written as a string.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import dagster as dg
from pydantic import BaseModel, ConfigDict

from mienne_ops.domain.exception_queue import ExceptionQueue
from mienne_ops.flows.common import TAG_FLOW
from mienne_ops.ledger.store import ExceptionStatus, Ledger

IN_FLIGHT_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
#: A run not yet launched: what arrives meanwhile can still join the next run instead.
WAITING_STATUSES = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]


class SensorCursor(BaseModel):
    """Base of a sensor's cursor: JSON in Dagster's cursor string, unknown fields ignored."""

    model_config = ConfigDict(extra="ignore")

    @classmethod
    def parse(cls, raw: str | None) -> Self:
        """The cursor Dagster kept; none yet (a new sensor, a reset) reads as the defaults."""
        return cls.model_validate_json(raw) if raw else cls()

    def dump(self) -> str:
        return self.model_dump_json()


def read_exceptions(ledger: Ledger, flow: str, entity: str) -> ExceptionQueue:
    """A flow entity's open and retrying exceptions, in one read."""
    rows = [
        row
        for row in ledger.exceptions(statuses=[ExceptionStatus.OPEN, ExceptionStatus.RETRYING], flow=flow)
        if row.entity == entity
    ]
    return ExceptionQueue(
        open=frozenset(row.key for row in rows if row.status == ExceptionStatus.OPEN),
        retrying=tuple(row for row in rows if row.status == ExceptionStatus.RETRYING),
    )


def poll_since(
    last: datetime | None, now: datetime, *, overlap: timedelta, first_poll: timedelta = timedelta(0)
) -> datetime:
    """Where a poll starts: the last poll (or ``first_poll`` back from now), minus ``overlap`` for the
    vendor's clock and filter granularity; what is read twice is filtered by the ledger."""
    return (last if last is not None else now - first_poll) - overlap


@dataclass(frozen=True)
class PollWindow:
    """One tick's poll of a vendor's changes: from ``since`` up to ``now``, the tick's time, which the
    cursor keeps as the next poll's start (anything changed after it is seen by the next poll)."""

    since: datetime
    now: datetime

    @classmethod
    def after(
        cls, last: datetime | None, *, overlap: timedelta, first_poll: timedelta = timedelta(0)
    ) -> PollWindow:
        """The window after a poll that started at ``last`` (none yet: ``first_poll`` back from now)."""
        now = datetime.now(UTC)
        return cls(since=poll_since(last, now, overlap=overlap, first_poll=first_poll), now=now)


def run_in_flight(context: dg.SensorEvaluationContext, job_name: str) -> bool:
    """True when a run of ``job_name`` is queued or running (one batch per flow at a time)."""
    runs = context.instance.get_runs(
        filters=dg.RunsFilter(job_name=job_name, statuses=IN_FLIGHT_STATUSES), limit=1
    )
    return bool(runs)


def run_waiting(context: dg.SensorEvaluationContext, job_name: str) -> bool:
    """True when a run of ``job_name`` is still waiting in the queue (not yet launched)."""
    runs = context.instance.get_runs(
        filters=dg.RunsFilter(job_name=job_name, statuses=WAITING_STATUSES), limit=1
    )
    return bool(runs)


def flow_sensor(
    *,
    job: dg.JobDefinition,
    description: str,
    minimum_interval_seconds: int = 10,
    one_run_at_a_time: str | None = None,
    one_run_waiting: str | None = None,
) -> Callable[[Callable[..., Any]], dg.SensorDefinition]:
    """``@dg.sensor`` running by default; with ``one_run_at_a_time`` (what the run is, for the skip
    message), a tick is skipped while a run of ``job`` is queued or running, so a slow batch is never
    requested again under a new key while it is still being worked on.

    With ``one_run_waiting``, a tick is skipped only while a run of ``job`` waits in the queue: one
    run may execute with one more queued behind it, and whatever arrives meanwhile stays behind the
    sensor's cursor for the next run. Without it a busy flow whose runs launch slowly (a loaded box,
    a restart) piles up a queue of small runs, each paying a process start for a few orders."""

    def decorate(evaluate: Callable[..., Any]) -> dg.SensorDefinition:
        @functools.wraps(evaluate)
        def guarded(context: dg.SensorEvaluationContext, **resources: Any) -> Any:
            if one_run_at_a_time and run_in_flight(context, job.name):
                return dg.SkipReason(f"{one_run_at_a_time} is already in flight")
            if one_run_waiting and run_waiting(context, job.name):
                return dg.SkipReason(f"{one_run_waiting} is already waiting in the queue")
            return evaluate(context, **resources)

        return dg.sensor(
            job=job,
            minimum_interval_seconds=minimum_interval_seconds,
            default_status=dg.DefaultSensorStatus.RUNNING,
            description=description,
        )(guarded)

    return decorate


def chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def digest(parts: Sequence[str]) -> str:
    """A short stable fingerprint of a batch, for run keys."""
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def tick_stamp(moment: datetime | None = None) -> str:
    """A tick's time for run keys, to the microsecond: two ticks never share a key (the daemon
    never re-runs a key, even one whose run failed), and one-at-a-time flows check `run_in_flight`."""
    return (moment or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%f")


def run_request(op: dg.OpDefinition, config: dg.Config, *, run_key: str, flow: str) -> dg.RunRequest:
    """A run of ``op``'s job with ``config`` as the op's config, under ``run_key``, tagged with the flow."""
    return dg.RunRequest(
        run_key=run_key, run_config=dg.RunConfig(ops={op.name: config}), tags={TAG_FLOW: flow}
    )


@dataclass(frozen=True)
class BatchRuns:
    """How a flow's sensor asks for runs of its op: one run per batch of keys, the op's config built
    by ``config`` from the batch, keyed ``<prefix>:<digest of the batch>:<tick>``, tagged with the flow."""

    op: dg.OpDefinition
    config: Callable[[list[str]], dg.Config]
    prefix: str
    flow: str

    def requests(self, keys: Sequence[str], *, size: int, now: datetime | None = None) -> list[dg.RunRequest]:
        """``now``: the tick's time (`tick_stamp`), so two ticks never share a key."""
        tick = tick_stamp(now)
        return [
            run_request(
                self.op, self.config(batch), run_key=f"{self.prefix}:{digest(batch)}:{tick}", flow=self.flow
            )
            for batch in chunks(keys, size)
        ]


def sensor_result(
    requests: list[dg.RunRequest], *, skip_reason: str, cursor: SensorCursor | None = None
) -> dg.SensorResult:
    """The tick's runs (or why there are none) and the cursor to keep."""
    dumped = cursor.dump() if cursor is not None else None
    if not requests:
        return dg.SensorResult(skip_reason=skip_reason, cursor=dumped)
    return dg.SensorResult(run_requests=requests, cursor=dumped)
