"""Runs whose launch died with the daemon: failed within about a minute, so their flow moves on.

A run is STARTING from the moment the daemon hands it to a code server until its worker starts
executing. When the daemon's process group dies in between (a container restart), the run can never
start, and Dagster's run monitoring only fails it at `run_monitoring.start_timeout_seconds` (300 s:
a healthy launch on a busy box can take minutes). Under the one-run-per-flow limit that blocks the
flow for five minutes. `stalled_launches_sensor` looks every 30 seconds at runs STARTING for more
than `STALLED_LAUNCH_SECONDS` and fails those `flows.run_launcher.launch_health` says can never start
(their code server is gone and no worker started). `run_retries` then launches the run again, as it
does after a start timeout; every step is idempotent, so nothing is written twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import dagster as dg
from dagster._core.events import JobFailureData, RunFailureReason
from dagster._core.launcher import WorkerStatus

from mienne_ops.flows.run_launcher import launch_health

#: A launch younger than this is left alone: on a loaded box a healthy one takes tens of seconds.
STALLED_LAUNCH_SECONDS = 60.0


def launched_at(instance: dg.DagsterInstance, record: dg.RunRecord) -> float:
    """When the run was handed to a code server (its RUN_STARTING event), else its last update."""
    launch = instance.get_run_stats(record.dagster_run.run_id).launch_time
    return launch if launch is not None else record.update_timestamp.timestamp()


def fail_stalled_launches(
    instance: dg.DagsterInstance, now: float, min_age: float = STALLED_LAUNCH_SECONDS
) -> list[tuple[str, str]]:
    """Fail every run STARTING for ``min_age`` seconds that can never start: [(run id, why)]."""
    records = instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTING]))
    failed = []
    for record in _old_enough(instance, records, now, min_age):
        run = record.dagster_run
        health = launch_health(instance, run)
        if health.status != WorkerStatus.FAILED:
            continue
        current = instance.get_run_by_id(run.run_id)  # it may have started meanwhile
        if current is None or current.status != dg.DagsterRunStatus.STARTING:
            continue
        message = f"Launch stalled: {health.msg}. Failed so that its retry can run."
        instance.report_run_failed(
            current, message, JobFailureData(error=None, failure_reason=RunFailureReason.START_TIMEOUT)
        )
        failed.append((run.run_id, health.msg or ""))
    return failed


def _old_enough(
    instance: dg.DagsterInstance, records: Iterable[dg.RunRecord], now: float, min_age: float
) -> Iterable[dg.RunRecord]:
    return (r for r in records if now - launched_at(instance, r) >= min_age)


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Fails runs whose launch died with the daemon (code server gone, no worker) after 60 s",
)
def stalled_launches_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    failed = fail_stalled_launches(context.instance, time.time())
    for run_id, why in failed:
        context.log.warning(f"failed run {run_id}: its launch stalled ({why})")
    return dg.SkipReason(f"failed {len(failed)} stalled launch(es)" if failed else "no stalled launch")


defs = dg.Definitions(sensors=[stalled_launches_sensor])
