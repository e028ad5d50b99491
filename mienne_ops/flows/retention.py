"""Retention: what keeps a year of orders from slowing the sensors and filling Dagster's database.

Two policies, one daily job (`retention_job`, at 03:30 UTC by `retention_schedule`) and the same
two as commands (`mienne-ops ledger archive`, `mienne-ops ops purge-runs`):

- the ledger's archive (`ledger.archive`): finished orders older than ``ledger_days`` move to the
  ``archived_*`` tables, so the tables every tick reads hold what is in flight;
- Dagster's runs: Dagster purges sensor and schedule ticks itself (``retention`` in the instance
  config) but never runs, so finished runs older than ``run_days`` are deleted with their event logs
  (`DagsterInstance.delete_run`). The ledger, not Dagster, is the record of what was done to an
  order, so a deleted run loses no business fact; run keys carry the tick's time and never repeat,
  so a deleted run's key is not asked for again.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from mienne_ops.ledger.archive import ArchivePolicy, archive_ledger
from mienne_ops.ledger.resource import LedgerResource

FINISHED_RUN_STATUSES = [
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
]


def purge_runs(instance: dg.DagsterInstance, older_than: timedelta, *, batch_size: int = 100) -> int:
    """Delete finished runs last updated more than ``older_than`` ago (and their event logs); the
    number deleted. Queued and running runs are never touched, whatever their age."""
    cutoff = datetime.now(UTC) - older_than
    deleted = 0
    while True:
        records = instance.get_run_records(
            filters=dg.RunsFilter(statuses=FINISHED_RUN_STATUSES, updated_before=cutoff), limit=batch_size
        )
        if not records:
            return deleted
        for record in records:
            instance.delete_run(record.dagster_run.run_id)
        deleted += len(records)


class RetentionConfig(dg.Config):
    """Days kept: the ledger's finished orders (beyond any return window) and Dagster's runs."""

    ledger_days: int = 90
    run_days: int = 30


@dg.op
def archive_finished_orders(
    context: dg.OpExecutionContext, config: RetentionConfig, ledger: LedgerResource
) -> None:
    """Move finished orders older than ``ledger_days`` out of the tables the sensors read."""
    moved = archive_ledger(ledger.ledger.engine, ArchivePolicy(timedelta(days=config.ledger_days)))
    context.log.info(f"archived: {dict(sorted(moved.items())) or 'nothing'}")


@dg.op
def purge_old_runs(context: dg.OpExecutionContext, config: RetentionConfig) -> None:
    """Delete finished runs older than ``run_days`` (Dagster keeps runs forever otherwise)."""
    deleted = purge_runs(context.instance, timedelta(days=config.run_days))
    context.log.info(f"deleted {deleted} finished runs older than {config.run_days} days")


# The code location's default executor (in-process, `definitions.py`), like the asset jobs: a
# maintenance job, not a flow, so it has no system queue and never goes to a Celery worker.
@dg.job
def retention_job():
    archive_finished_orders()
    purge_old_runs()


retention_schedule = dg.ScheduleDefinition(
    job=retention_job,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily: archive finished orders out of the live ledger, delete old finished runs",
)

#: Retention's Dagster objects; `mienne_ops.definitions` merges them with the flows'.
defs = dg.Definitions(jobs=[retention_job], schedules=[retention_schedule])
