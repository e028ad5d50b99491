"""Retention (flows/retention.py): old finished runs are deleted with their event logs, unfinished and
recent ones stay; the daily job archives the ledger and purges runs in one run."""

from datetime import timedelta

import dagster as dg
from click.testing import CliRunner

from mienne_ops.cli import main
from mienne_ops.domain.journey import Stage
from mienne_ops.flows.retention import purge_runs, retention_job, retention_schedule
from mienne_ops.ledger import Ledger, schema
from mienne_ops.ledger.resource import LedgerResource


@dg.op
def say_hello() -> str:
    return "hello"


@dg.job
def hello_job():
    say_hello()


def test_finished_runs_older_than_the_cutoff_are_deleted_and_unfinished_ones_stay():
    with dg.DagsterInstance.ephemeral() as instance:
        finished = [hello_job.execute_in_process(instance=instance).run_id for _ in range(3)]
        waiting = instance.create_run_for_job(hello_job, status=dg.DagsterRunStatus.NOT_STARTED).run_id
        assert purge_runs(instance, timedelta(days=1)) == 0  # nothing that old

        assert purge_runs(instance, timedelta(0), batch_size=2) == 3
        assert [run.run_id for run in instance.get_runs()] == [waiting]
        assert all(not instance.all_logs(run_id) for run_id in finished)


def test_the_daily_job_archives_the_ledger_and_purges_runs(state_dir, tmp_path):
    url = f"sqlite:///{state_dir / 'ledger.db'}"
    ledger = Ledger(url)
    ledger.record_order("1", "#1001", Stage.CANCELLED)
    ledger.dispose()
    with dg.DagsterInstance.ephemeral() as instance:
        old = hello_job.execute_in_process(instance=instance).run_id
        config = {"ledger_days": 1, "run_days": 1}
        result = retention_job.execute_in_process(
            instance=instance,
            resources={"ledger": LedgerResource(url=url)},
            run_config={
                "ops": {"archive_finished_orders": {"config": config}, "purge_old_runs": {"config": config}}
            },
        )
        assert result.success
        assert instance.get_run_by_id(old) is not None  # a run from today is kept
    ledger = Ledger(url)
    with ledger.engine.connect() as conn:  # today's cancelled order is not old enough either
        assert conn.execute(schema.order_journeys.select()).first() is not None
    ledger.dispose()
    assert retention_schedule.cron_schedule == "30 3 * * *"


def test_the_cli_purges_runs_of_the_instance_in_dagster_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.get() as instance:
        hello_job.execute_in_process(instance=instance)
    result = CliRunner().invoke(main, ["ops", "purge-runs", "--older-than-days", "1"])
    assert result.exit_code == 0, result.output
    assert "deleted 0 finished runs older than 1 days" in result.output
