"""The ledger's archive policy (`ledger.archive`), on SQLite and PostgreSQL: finished orders leave the
live tables with what belongs to them, anything still open stays, and an archived order is still
known, so a late webhook cannot import it twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from mienne_ops.cli import main
from mienne_ops.domain.holds import HoldDecision, HoldReason
from mienne_ops.domain.journey import Stage
from mienne_ops.ledger import Ledger, schema
from mienne_ops.ledger.archive import ARCHIVE_OF, ArchivePolicy, archive_ledger
from mienne_ops.ledger.sql import now
from mienne_ops_tests.support import new_ledger

# Archiving "100 days from now" makes every row written by the test older than the 90-day cutoff.
LATER = timedelta(days=100)
POLICY = ArchivePolicy(older_than=timedelta(days=90), batch_size=2)  # small batches: several rounds


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'ledger.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("database_url")
    )
    ledger = new_ledger(url)
    yield ledger
    ledger.dispose()


def shipped_order(ledger: Ledger, number: int) -> None:
    """An order through A → B → C: journey, dispatch, one shipment on Shopify, a released hold."""
    order, sales_order, dcl = f"{number}", f"SO{number}", f"DCL{number}"
    ledger.record_order(order, f"#{number}", Stage.IN_NETSUITE)
    ledger.finish_import(order, f"#{number}")
    ledger.place_hold(order, HoldDecision(HoldReason.EDIT_WINDOW, "edit window"), "flow A")
    ledger.release_hold(order, HoldReason.EDIT_WINDOW, "flow A")
    journey = ledger.record_dispatch(sales_order, dcl, shopify_order_id=order)
    ledger.bind_item_fulfillment(f"{dcl}-1", dcl, f"IF{number}")
    ledger.record_on_shopify(f"{dcl}-1", dcl, f"gid://shopify/Fulfillment/{number}")
    ledger.set_stage(journey.id, Stage.SHIPPED)
    ledger.mark_shipments_complete(journey.id, 1)
    ledger.audit("netsuite", "salesOrder.create", order, "ok", remote_id=sales_order)


def live_orders(ledger: Ledger) -> set[str]:
    with ledger.engine.connect() as conn:
        return set(conn.execute(sa.select(schema.order_journeys.c.shopify_order_id)).scalars())


def test_finished_orders_move_to_the_archive_and_open_ones_stay(ledger):
    for number in (1001, 1002, 1003, 1004):
        shipped_order(ledger, number)
    ledger.record_order("1005", "#1005", Stage.DISPATCHED)  # in flight
    shipped_order(ledger, 1006)
    with ledger.engine.begin() as conn:  # shipped, but flow A's import never finished (a crash)
        table = schema.order_journeys
        conn.execute(sa.update(table).where(table.c.shopify_order_id == "1006").values(imported_at=None))
    ledger.quarantine("C", "dcl_order", "DCL1002", "tracking_rejected", "Shopify said no")  # open
    ledger.quarantine("A", "order", "1003", "unknown_sku", "SKU X")
    ledger.resolve("A", "order", "1003")  # resolved: the order is done, its exception goes too
    with ledger.engine.begin() as conn:  # changed recently: not old enough
        table = schema.order_journeys
        conn.execute(
            sa.update(table).where(table.c.shopify_order_id == "1004").values(updated_at=now() + LATER)
        )

    moved = archive_ledger(ledger.engine, POLICY, moment=now() + LATER)

    assert live_orders(ledger) == {"1002", "1004", "1005", "1006"}
    assert moved["order_journeys"] == 2 and moved["shipments"] == 2 and moved["order_holds"] == 2
    assert moved["exceptions"] == 1 and [e.key for e in ledger.exceptions()] == ["DCL1002"]
    assert ledger.shipments_of("DCL1001") == [] and len(ledger.shipments_of("DCL1002")) == 1
    # Still known by every id: flow A sees a journey (no second import), the CLI finds the order.
    journeys = ledger.journeys(["1001", "1002", "1005", "9999"])
    assert set(journeys) == {"1001", "1002", "1005"} and journeys["1001"].stage == Stage.SHIPPED
    assert journeys["1001"].import_pending is False
    found = [ledger.find_journey(ref) for ref in ("#1003", "DCL1003", "SO1003", "1003")]
    assert {journey.shopify_order_id for journey in found if journey} == {"1003"} and None not in found
    assert ledger.journey_by_dcl_order("DCL1001") is not None
    assert [row["operation"] for row in ledger.audit_trail(["1001"])].count("salesOrder.create") == 1


def test_old_inbox_events_move_but_each_sources_newest_stays(ledger):
    for n in range(5):
        assert ledger.store_event("shopify", f"e{n}", "orders/paid", {"id": n}, resource_id=str(n))
    ledger.store_event("gorgias", "t1", "ticket-created", {"id": 1}, resource_id="1")
    newest = ledger.last_event_id("shopify")

    moved = archive_ledger(ledger.engine, POLICY, moment=now() + LATER)

    assert moved["inbox_events"] == 4
    assert ledger.last_event_id("shopify") == newest  # a sensor's cursor is not ahead of the inbox
    assert [event.event_id for event in ledger.events_after("shopify", 0)] == ["e4"]
    assert ledger.count_events("gorgias") == 1
    assert not ledger.store_event("shopify", "e4", "orders/paid", {"id": 4}, resource_id="4")


def columns_missing_from_archives(engine: sa.Engine) -> dict[str, list[str]]:
    """Per live table with an ``archived_*`` twin in the database, the columns (name and type, as
    the database reports them) the twin lacks."""
    inspector = sa.inspect(engine)
    archives = [name for name in inspector.get_table_names() if name.startswith("archived_")]
    missing = {}
    for archive in archives:
        kept = {(c["name"], str(c["type"])) for c in inspector.get_columns(archive)}
        live = [(c["name"], str(c["type"])) for c in inspector.get_columns(archive.removeprefix("archived_"))]
        if lacking := [f"{name} {type_}" for name, type_ in live if (name, type_) not in kept]:
            missing[archive] = lacking
    return missing


def test_every_live_column_has_its_twin_in_the_archive_the_migrations_built(ledger):
    """The migrations write the archive tables' columns out by hand (0010): a migration that adds a
    column to a live table and not to its ``archived_*`` twin fails here, before an archive run does."""
    tables = set(sa.inspect(ledger.engine).get_table_names())
    assert {f"archived_{name}" for name in ARCHIVE_OF} <= tables
    assert columns_missing_from_archives(ledger.engine) == {}
    with ledger.engine.begin() as conn:  # the check sees a column added to a live table alone
        conn.execute(sa.text("ALTER TABLE shipments ADD COLUMN weight_grams INTEGER"))
    assert columns_missing_from_archives(ledger.engine) == {"archived_shipments": ["weight_grams INTEGER"]}


def test_archiving_twice_moves_nothing_more(ledger):
    shipped_order(ledger, 2001)
    assert archive_ledger(ledger.engine, POLICY, moment=now() + LATER)["order_journeys"] == 1
    assert sum(archive_ledger(ledger.engine, POLICY, moment=now() + LATER).values()) == 0


def test_the_cli_archives_only_what_is_older_than_the_days_given(state_dir):
    ledger = Ledger(f"sqlite:///{state_dir / 'ledger.db'}")
    shipped_order(ledger, 3001)
    ledger.dispose()
    result = CliRunner().invoke(main, ["ledger", "archive", "--older-than-days", "1"])
    assert result.exit_code == 0, result.output
    assert "nothing older than 1 days to archive" in result.output
