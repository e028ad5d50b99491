"""The ledger's Alembic migrations, on SQLite and on PostgreSQL: nothing created outside them,
nothing lost when a ledger made before them (or at an older revision) is upgraded."""

from __future__ import annotations

import importlib
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner

from mienne_ops.cli import main
from mienne_ops.ledger import Ledger, schema
from mienne_ops.ledger.migrate import LedgerSchemaError, head_revision, upgrade_ledger

REPO_ROOT = Path(__file__).resolve().parents[2]
baseline = importlib.import_module("mienne_ops.ledger.migrations.versions.0001_baseline")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("database_url")


def schema_differences(url: str) -> list:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), schema.metadata)
    engine.dispose()
    return differences


def test_a_new_ledger_is_built_by_the_migrations_exactly_as_the_schema_declares(ledger_url):
    upgrade_ledger(ledger_url)
    assert schema_differences(ledger_url) == []
    upgrade_ledger(ledger_url)  # at head: nothing to do, nothing breaks
    ledger = Ledger(ledger_url)
    assert ledger.store_event("shopify", "e1", "orders/paid", {"id": 1}, resource_id="1")
    ledger.dispose()


def test_a_ledger_not_at_the_newest_revision_is_refused_with_the_command_to_run(ledger_url):
    with pytest.raises(LedgerSchemaError, match="mienne-ops ledger upgrade"):
        Ledger(ledger_url)
    upgrade_ledger(ledger_url, "0001_baseline")
    if head_revision() != "0001_baseline":
        with pytest.raises(LedgerSchemaError, match="at revision 0001_baseline"):
            Ledger(ledger_url)


def old_ledger_with_data(url: str) -> sa.Engine:
    """A ledger as the code before migrations left it: `create_all` of the baseline tables (minus
    flow E's, created lazily on its first run), no `alembic_version`, rows in every table."""
    engine = sa.create_engine(url)
    before_inventory = [t for t in baseline.metadata.sorted_tables if not t.name.startswith("inventory_")]
    baseline.metadata.create_all(engine, tables=before_inventory)
    with engine.begin() as conn:
        conn.execute(
            baseline.inbox_events.insert(),
            [
                {
                    "source": "shopify",
                    "event_id": f"evt-{n}",
                    "topic": "orders/paid",
                    "resource_id": str(n),
                    "received_at": NOW,
                    "payload": {"id": n},
                }
                for n in range(3)
            ],
        )
        conn.execute(
            baseline.orders.insert(),
            {
                "shopify_order_id": "1001",
                "name": "#1001",
                "stage": "in_netsuite",
                "lines": [{"sku": "A", "quantity": 2}],
                "created_at": NOW,
                "updated_at": NOW,
            },
        )
        conn.execute(
            baseline.bindings.insert(),
            {"entity": "customer", "key": "shopify-customer-7", "system": "netsuite", "remote_id": "55"}
            | {"created_at": NOW},
        )
        conn.execute(
            baseline.exceptions.insert(),
            {
                "flow": "A",
                "entity": "order",
                "key": "1002",
                "reason": "unknown_sku",
                "message": "SKU X",
                "status": "open",
                "attempts": 2,
                "first_seen": NOW,
                "last_seen": NOW,
            },
        )
        conn.execute(
            baseline.audit_log.insert(),
            {"at": NOW, "system": "netsuite", "operation": "salesOrder.upsert", "record": "1001"}
            | {"outcome": "ok", "remote_id": "77"},
        )
    return engine


def test_upgrading_a_ledger_made_before_migrations_keeps_every_row(ledger_url):
    engine = old_ledger_with_data(ledger_url)
    upgrade_ledger(ledger_url)
    assert schema_differences(ledger_url) == []
    ledger = Ledger(ledger_url)
    assert ledger.count_events("shopify") == 3
    assert [e.reason for e in ledger.exceptions()] == ["unknown_sku"]
    assert ledger.exceptions()[0].attempts == 2
    assert [a["remote_id"] for a in ledger.audit_trail(["1001"])] == ["77"]
    assert ledger.find_order("#1001")["lines"] == [{"sku": "A", "quantity": 2}]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.levels)).scalar_one() == 0
    ledger.dispose()
    engine.dispose()


def test_the_cli_upgrades_the_configured_ledger(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("MIENNE_LEDGER_URL", url)
    result = CliRunner().invoke(main, ["ledger", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"ledger revision {head_revision()} (newest {head_revision()})" in result.output
    Ledger(url).dispose()


def test_plain_alembic_from_the_repository_upgrades_the_ledger_too(tmp_path):
    url = f"sqlite:///{tmp_path / 'alembic.db'}"
    alembic = Path(sys.executable).parent / "alembic"
    subprocess.run(
        [str(alembic), "upgrade", "head"],
        cwd=REPO_ROOT,
        env={"MIENNE_LEDGER_URL": url, "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
    )
    Ledger(url).dispose()
