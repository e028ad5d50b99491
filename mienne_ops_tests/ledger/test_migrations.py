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
from mienne_ops.domain.journey import AsnVersion, Entity, Stage, System
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


# Every convention the ledger had before typed journeys (pseudo-systems, placeholders, ASN versions).
OLD_BINDINGS = [
    ("customer", "shopify-customer-7", "netsuite", "55"),
    ("order", "1001", "netsuite", "77"),
    ("order", "1001", "stateset", "ss-1"),
    ("order", "1001", "dcl", "SO77"),
    ("order", "1001", "stateset_shipped", "ss-1"),
    ("sales_order", "77", "dcl", "SO77"),
    ("sales_order", "77", "cash_sale", "701"),
    ("dcl_order", "SO77:2", "complete", "77"),
    ("sales_order", "88", "dcl", "SO88"),  # a sales order that did not come from Shopify
    ("shipment", "SO77-2026-12-01-C1", "netsuite", "IF1"),
    ("shipment", "SO77-2026-12-01-C1", "shopify", "gid://shopify/Fulfillment/1"),
    ("shipment", "SO77-2026-12-02-C2", "netsuite", "IF2"),
    ("shipment", "SO77-2026-12-02-C2", "shopify", "nothing-to-fulfil"),
    ("inbound_order", "301", "dcl", "9001"),
    ("inbound_asn", "301", "v1", "abc123:PO301-1:12"),
    ("inbound_asn", "301", "v2", "def456:PO301-2:10"),
    ("inbound_asn", "301", "cancelled-9000", "confirmed by operator"),
    ("inbound_asn", "301", "replaced-9000", "9001"),
    ("dcl_receipt", "9001-R1", "netsuite", "IR1"),
    ("dcl_receipt", "9001-R2", "netsuite", "nothing-posted"),
    ("mystery", "x", "somewhere", "kept"),  # unknown to the migration: left alone, never dropped
]


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
            [
                {"entity": e, "key": k, "system": s, "remote_id": r, "created_at": NOW}
                for e, k, s, r in OLD_BINDINGS
            ],
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
    journey = ledger.find_journey("#1001")
    assert journey.lines == [{"sku": "A", "quantity": 2}] and journey.stage == Stage.IN_NETSUITE
    assert (journey.netsuite_sales_order_id, journey.stateset_order_id, journey.dcl_order_number) == (
        "77",
        "ss-1",
        "SO77",
    )
    assert journey.stateset_shipped_at is not None and journey.cash_sale_id == "701"
    assert journey.complete_for(2) and not journey.complete_for(3)
    assert journey.imported_at is not None and not journey.import_pending  # 0004: imported before
    own = ledger.journey_by_dcl_order("SO88")
    assert own.shopify_order_id is None and own.netsuite_sales_order_id == "88"
    assert own.stage == Stage.DISPATCHED and own.imported_at is None  # not a Shopify order: no flow A
    shipments = {s.shipment_key: s for s in ledger.shipments_of("SO77")}
    assert shipments["SO77-2026-12-01-C1"].item_fulfillment_id == "IF1"
    assert shipments["SO77-2026-12-01-C1"].shopify_fulfillment_id == "gid://shopify/Fulfillment/1"
    assert shipments["SO77-2026-12-02-C2"].on_shopify
    assert shipments["SO77-2026-12-02-C2"].shopify_fulfillment_id is None  # was "nothing-to-fulfil"
    assert ledger.dcl_po_number("301") == "9001" and ledger.inbound_order_of_po("9001") == "301"
    versions = ledger.asn_versions("301")
    assert versions[1] == AsnVersion(1, "abc123", "PO301-1", 12, "9001")
    assert versions[2].fingerprint == "def456" and versions[2].units == 10
    assert ledger.asn_cancel_confirmed("301", "9000")
    assert ledger.posted_receipt("9001-R1").item_receipt_id == "IR1"
    assert ledger.posted_receipt("9001-R2").item_receipt_id is None  # was "nothing-posted"
    assert ledger.remote_id(Entity.CUSTOMER, "shopify-customer-7", System.NETSUITE) == "55"
    with engine.connect() as conn:
        left = conn.execute(sa.select(schema.bindings.c.entity, schema.bindings.c.system)).all()
    assert sorted(left) == [("customer", "netsuite"), ("mystery", "somewhere")]
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
