"""Production storage on local PostgreSQL: the Dagster instance via dagster-postgres, and the ledger."""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from mienne_ops.domain.journey import Stage
from mienne_ops_tests.support import new_ledger

pytestmark = pytest.mark.postgres

REPO_ROOT = Path(__file__).resolve().parents[1]


@dg.op
def say_hello() -> str:
    return "hello"


@dg.job
def hello_job():
    say_hello()


def test_dagster_instance_runs_on_postgres_with_the_documented_config(database_url, tmp_path, monkeypatch):
    shutil.copy(REPO_ROOT / "deploy" / "dagster.postgres.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_URL", database_url)
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        result = hello_job.execute_in_process(instance=instance)
        assert result.success
        stored = instance.get_run_by_id(result.run_id)
        assert stored is not None and stored.status == dg.DagsterRunStatus.SUCCESS
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    finally:
        instance.dispose()


def test_ledger_on_postgres_keeps_its_guarantees(database_url):
    ledger = new_ledger(database_url)
    try:
        assert ledger.store_event("shopify", "evt-1", "orders/paid", {"id": 1}, resource_id="1")
        assert not ledger.store_event("shopify", "evt-1", "orders/paid", {"id": 1}, resource_id="1")
        ledger.record_order("1", "#1001", Stage.RECEIVED)
        assert ledger.bind_sales_order("1", "77") == "77"
        with pytest.raises(Exception, match="already bound"):
            ledger.bind_sales_order("1", "78")
        ledger.quarantine("A", "order", "1", "unknown_sku", "SKU X")
        ledger.quarantine("A", "order", "1", "unknown_sku", "SKU X")
        assert ledger.exceptions()[0].attempts == 2
        assert ledger.resolve("A", "order", "1")
    finally:
        ledger.dispose()
