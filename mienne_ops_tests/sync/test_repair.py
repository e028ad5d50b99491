"""The gap logic (`domain.journey_gaps`) on journeys as the ledger returns them, and the repair sweep
(`sync.repair`) against the sandbox over HTTP: a journey that went on with an earlier step missing is
found, finished once, audited, and found no more."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta

import dagster as dg
import httpx
import pytest
from click.testing import CliRunner

from mienne_ops import settings
from mienne_ops.business_rules import BusinessRules
from mienne_ops.cli import api_clients, main
from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.domain.journey import Entity, OrderJourney, ShipmentProgress, Stage
from mienne_ops.domain.journey_gaps import Gap, describe, journey_gaps
from mienne_ops.errors import InvalidRecordError
from mienne_ops.flows.common import TAG_FLOW
from mienne_ops.ledger.store import ExceptionStatus
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops.sync.batch import Outcome, run_batch
from mienne_ops.sync.orders import OrderCanceller, OrderIngestor, OrderSystems
from mienne_ops.sync.repair import ENTITY as REPAIR
from mienne_ops.sync.repair import FLOW, JourneyRepair, SweepWindow, untagged_search
from mienne_ops_tests.support import new_ledger

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
GRACE = timedelta(minutes=15)


def _journey(**fields) -> OrderJourney:
    base = {
        "id": 1,
        "shopify_order_id": "820982911946154508",
        "name": "#1001",
        "stage": Stage.DISPATCHED,
        "netsuite_sales_order_id": "5001",
        "netsuite_tranid": "SO1001",
        "dcl_order_number": "SO1001",
        "stateset_order_id": "ord_8f2c",
        "imported_at": NOW - timedelta(hours=2),
        "tagged_at": NOW - timedelta(hours=2),
        "created_at": NOW - timedelta(hours=3),
        "updated_at": NOW - timedelta(minutes=1),
    }
    return OrderJourney(**(base | fields))


def _shipment(on_shopify: bool) -> ShipmentProgress:
    return ShipmentProgress(
        shipment_key="SO1001:2026-12-07:1Z999AA10123456784",
        dcl_order_number="SO1001",
        item_fulfillment_id="7001",
        on_shopify_at=NOW - timedelta(hours=1) if on_shopify else None,
        shopify_fulfillment_id="gid://shopify/Fulfillment/255858046" if on_shopify else None,
        carrier="UPS",
        tracking_numbers=("1Z999AA10123456784",),
    )


def test_a_finished_journey_has_no_gaps():
    shipped = _journey(
        stage=Stage.SHIPPED,
        stateset_shipped_at=NOW - timedelta(hours=1),
        cash_sale_id="9001",
        shipments_completed=1,
    )
    assert not journey_gaps(shipped, [_shipment(True)], now=NOW, grace=GRACE)
    assert not journey_gaps(_journey(stage=Stage.CANCELLED, imported_at=None), now=NOW, grace=GRACE)


def test_an_import_overtaken_by_dispatch_is_a_gap_at_once():
    # Crashed after the StateSet create and before its record; flow B dispatched the sales order.
    found = journey_gaps(
        _journey(imported_at=None, tagged_at=None, stateset_order_id=None), now=NOW, grace=GRACE
    )
    assert found.gaps == (Gap.STATESET_ORDER, Gap.SHOPIFY_TAG)
    assert found.due  # moved on past flow A: no import of it can still be running
    lines = [describe(gap, imported_tag="SENT_TO_NS", due=found.due) for gap in found.gaps]
    assert lines == [
        "StateSet order: missing — repair pending",
        "Shopify tag SENT_TO_NS: missing — repair pending",
    ]
    # Crashed after the tag, before the completion marker: only the marker is missing.
    marker = journey_gaps(_journey(imported_at=None), now=NOW, grace=GRACE)
    assert marker.gaps == (Gap.IMPORT_MARKER,) and marker.due


def test_an_import_still_at_received_is_left_to_flow_a_within_the_grace():
    young = _journey(
        stage=Stage.RECEIVED,
        netsuite_sales_order_id=None,
        dcl_order_number=None,
        stateset_order_id=None,
        imported_at=None,
        tagged_at=None,
    )
    found = journey_gaps(young, now=NOW, grace=GRACE)
    assert found.gaps == (Gap.SALES_ORDER, Gap.STATESET_ORDER, Gap.SHOPIFY_TAG) and not found.due
    assert describe(Gap.SALES_ORDER, imported_tag="T", due=False).endswith("its flow may still finish it)")
    stale = journey_gaps(young, now=NOW + GRACE, grace=GRACE)
    assert stale.due


def test_a_shipped_order_whose_stateset_order_is_not_shipped_and_an_unsent_shipment():
    found = journey_gaps(_journey(stage=Stage.SHIPPED), [_shipment(False)], now=NOW, grace=GRACE)
    assert found.gaps == (Gap.STATESET_SHIPPED, Gap.SHOPIFY_FULFILLMENT)
    assert found.shipment_keys == ("SO1001:2026-12-07:1Z999AA10123456784",)
    assert not found.due  # flow C may be on it right now
    assert journey_gaps(_journey(stage=Stage.SHIPPED), [_shipment(False)], now=NOW + GRACE, grace=GRACE).due
    # Shipped and on Shopify, but flow C never completed it (a crash before its cash sale's record).
    unbilled = _journey(stage=Stage.SHIPPED, stateset_shipped_at=NOW - timedelta(hours=1))
    booking = journey_gaps(unbilled, [_shipment(True)], now=NOW, grace=GRACE)
    assert booking.gaps == (Gap.SHIPMENT_BOOKING,) and not booking.due
    assert journey_gaps(unbilled, [_shipment(True)], now=NOW + GRACE, grace=GRACE).due
    # Flow C moves the stage to shipped before StateSet's ship: within the grace it may be on it.
    shipping = journey_gaps(
        _journey(stage=Stage.SHIPPED, cash_sale_id="9001"), [_shipment(True)], now=NOW, grace=GRACE
    )
    assert Gap.STATESET_SHIPPED in shipping.gaps and not shipping.due
    # Once flow C marked it complete it has shipped StateSet or skipped it (no StateSet order bound
    # then: an import that resumed after flow C shipped bound it later): due at once.
    stateset_only = journey_gaps(
        _journey(stage=Stage.SHIPPED, cash_sale_id="9001", shipments_completed=1),
        [_shipment(True)],
        now=NOW,
        grace=GRACE,
    )
    assert stateset_only.gaps == (Gap.STATESET_SHIPPED,) and stateset_only.due


def test_a_tag_the_sweep_found_missing_in_shopify_is_a_gap_at_once():
    # `Ledger.mark_tag_lost` cleared tagged_at on an imported order: nobody's flow will add it again.
    lost = journey_gaps(_journey(tagged_at=None), now=NOW, grace=GRACE)
    assert lost.gaps == (Gap.SHOPIFY_TAG,) and lost.due and lost.tag_lost and not lost.import_unfinished
    # With another gap (flow C may still be writing), the order waits out the grace as a whole.
    shipped = journey_gaps(
        _journey(stage=Stage.SHIPPED, tagged_at=None), [_shipment(False)], now=NOW, grace=GRACE
    )
    assert shipped.gaps == (Gap.SHOPIFY_TAG, Gap.STATESET_SHIPPED, Gap.SHOPIFY_FULFILLMENT)
    assert not shipped.due


def test_the_sweep_window_searches_shopify_from_the_last_sweep():
    window = SweepWindow.at(NOW, window=timedelta(days=14), grace=GRACE, last_sweep=NOW - timedelta(hours=1))
    assert window.since == NOW - timedelta(days=14)
    assert window.tags_since == NOW - timedelta(hours=1) - GRACE
    assert SweepWindow.at(NOW, window=timedelta(days=14), grace=GRACE).tags_since == window.since
    assert untagged_search("SENT_TO_NS", NOW) == "-tag:SENT_TO_NS updated_at:>='2026-12-07T03:00:00Z'"


class ProcessDied(BaseException):
    """A kill -9 seen from inside: nothing after it runs, nothing is recorded."""


@pytest.fixture
def world(sandbox, state_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("MIENNE_SANDBOX_URL", sandbox.url)
    # The Dagster instance `orders repair` asks for flow A runs in flight: this test's own.
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    ledger = new_ledger(settings.ledger_url())
    rules = BusinessRules(hold_edit_window_minutes=0, repair_grace_minutes=0)
    with api_clients() as clients:
        systems = OrderSystems.of(clients, ledger)
        ingestor, repair = OrderIngestor.from_rules(rules, systems), JourneyRepair.from_rules(rules, systems)
        yield {"url": sandbox.url, "sandbox": sandbox, "ledger": ledger, "clients": clients}, ingestor, repair
    ledger.dispose()


@dg.job
def _flow_a_job():
    """Stands in for a flow A job in the Dagster instance (only its run's tags and status matter)."""


def _place(world: dict, seed: int) -> str:
    payload = build_order(world["sandbox"].hub.catalog, random.Random(seed), gift_card=False)
    placed = httpx.post(f"{world['url']}/_sandbox/shopify/orders", json=payload, timeout=30).json()
    return str(placed["id"])


def _window() -> SweepWindow:
    return SweepWindow.at(datetime.now(UTC), window=timedelta(days=14), grace=timedelta(0))


def test_the_sweep_binds_the_stateset_order_tags_and_ships_it_once(world, monkeypatch):
    env, ingestor, repair = world
    ledger, stateset = env["ledger"], env["clients"].stateset
    key = _place(env, 21)
    real_create = stateset.create_order

    def created_then_died(*args, **kwargs):
        real_create(*args, **kwargs)
        raise ProcessDied

    with monkeypatch.context() as crash:
        crash.setattr(stateset, "create_order", created_then_died)
        with pytest.raises(ProcessDied):
            ingestor.ingest(key)
    halfway = ledger.journey(key)
    assert halfway.netsuite_sales_order_id and halfway.stateset_order_id is None
    # Flow B sends it, flow C finds it shipped (no StateSet order bound: flow C skipped StateSet).
    ledger.record_dispatch(halfway.netsuite_sales_order_id, "SO-REPAIR-1", shopify_order_id=key)
    ledger.record_tracking("SO-REPAIR-1:1", "SO-REPAIR-1", "UPS", ["1ZREPAIR0001"])
    ledger.record_on_shopify("SO-REPAIR-1:1", "SO-REPAIR-1", "gid://shopify/Fulfillment/1")
    ledger.set_stage(halfway.id, Stage.SHIPPED)
    ledger.mark_shipments_complete(halfway.id, 1)  # flow C found no StateSet order to ship: "complete"

    # By hand, without the grace (flow C set shipped a moment ago and might still be shipping it).
    monkeypatch.setenv("MIENNE_REPAIR_GRACE_MINUTES", "0")
    dry_run = CliRunner().invoke(main, ["orders", "repair", "--dry-run"], catch_exceptions=False)
    assert dry_run.exit_code == 0, dry_run.output
    assert f"({key}) at shipped: StateSet order, Shopify tag, StateSet status SHIPPED" in dry_run.output
    assert "1 order(s) to repair (dry run)" in dry_run.output
    assert ledger.journey(key).stateset_order_id is None  # a dry run changes nothing

    findings = repair.find(_window())
    (found,) = findings.due
    assert found.key == key and found.gaps == (Gap.STATESET_ORDER, Gap.SHOPIFY_TAG, Gap.STATESET_SHIPPED)
    assert findings.order_keys == [key] and findings.dcl_order_numbers == []
    assert repair.repair(key) == Outcome.DONE
    assert repair.repair(key) == Outcome.SKIPPED
    assert repair.find(_window()).due == []
    nothing = CliRunner().invoke(main, ["orders", "repair"], catch_exceptions=False)
    assert nothing.exit_code == 0 and "0 order(s) to repair" in nothing.output, nothing.output

    done = ledger.journey(key)
    assert done.imported_at and done.tagged_at and done.stateset_shipped_at and done.stage == Stage.SHIPPED
    state = sandbox_state(env["url"])
    (record,) = [
        o
        for o in state["stateset"]["orders"]
        if o["data"]["metadata"]["external_id"] == f"shopify-order-{key}"
    ]
    assert record["id"] == done.stateset_order_id and record["status"] == "SHIPPED"
    order = next(o for o in state["shopify"]["orders"] if str(o["id"]) == key)
    assert "SENT_TO_NS" in order["tags"]
    operations = [entry["operation"] for entry in ledger.audit_trail([key])]
    assert operations.count("orders.create") == 1 and operations.count("orders.ship") == 1
    assert {"import.resume", "repair.import", "repair.stateset_shipped"} <= set(operations)


def test_a_tag_the_ledger_has_but_shopify_lacks_is_found_by_one_search_and_added(world, monkeypatch):
    env, ingestor, repair = world
    ledger = env["ledger"]
    tagged, untagged = _place(env, 22), _place(env, 23)
    assert ingestor.ingest(tagged) == Outcome.DONE
    # The ledger says imported (and tagged), Shopify has no tag: e.g. someone removed it.
    ledger.record_order(untagged, "#lost", None, lines=[])
    ledger.finish_import(untagged, "#lost")

    calls = []
    search = repair.shopify.iter_order_ids

    def counted(query, *args, **kwargs):
        calls.append(query)
        return search(query, *args, **kwargs)

    repair.shopify.iter_order_ids = counted  # type: ignore[method-assign]
    findings = repair.find(_window())
    assert len(calls) == 1 and calls[0].startswith("-tag:SENT_TO_NS updated_at:>=")
    assert [(f.key, f.gaps) for f in findings.due] == [(untagged, (Gap.SHOPIFY_TAG,))]
    # By hand, as an operator would (no grace: the journey was written a moment ago).
    monkeypatch.setenv("MIENNE_REPAIR_GRACE_MINUTES", "0")
    # Not beside a flow A run (in Dagster a repair is one, queued behind it): refused, nothing done.
    instance = dg.DagsterInstance.from_config(os.environ["DAGSTER_HOME"])
    importing = instance.create_run_for_job(
        _flow_a_job, status=dg.DagsterRunStatus.STARTED, tags={TAG_FLOW: FLOW}
    )
    refused = CliRunner().invoke(main, ["orders", "repair"], catch_exceptions=False)
    assert refused.exit_code == 2 and importing.run_id in refused.output, refused.output
    assert "repair.tag" not in [entry["operation"] for entry in ledger.audit_trail([untagged])]
    instance.report_run_failed(importing)
    instance.dispose()
    fixed = CliRunner().invoke(main, ["orders", "repair"], catch_exceptions=False)
    assert fixed.exit_code == 0, fixed.output
    assert f"gap: #lost ({untagged}) at in_netsuite: Shopify tag" in fixed.output
    assert "repaired: flow A: done 1" in fixed.output, fixed.output
    order = next(o for o in sandbox_state(env["url"])["shopify"]["orders"] if str(o["id"]) == untagged)
    assert "SENT_TO_NS" in order["tags"]
    assert "repair.tag" in [entry["operation"] for entry in ledger.audit_trail([untagged])]


def test_a_cancellation_finds_and_cancels_the_stateset_order_an_import_never_recorded(world, monkeypatch):
    env, ingestor, _ = world
    ledger, clients = env["ledger"], env["clients"]
    key = _place(env, 24)
    real_create = clients.stateset.create_order

    def created_then_died(*args, **kwargs):
        real_create(*args, **kwargs)
        raise ProcessDied

    with monkeypatch.context() as crash:
        crash.setattr(clients.stateset, "create_order", created_then_died)
        with pytest.raises(ProcessDied):
            ingestor.ingest(key)
    assert ledger.journey(key).stateset_order_id is None
    cancelled = httpx.post(f"{env['url']}/_sandbox/shopify/orders/{key}/cancel", json={}, timeout=30)
    assert cancelled.status_code == 200, cancelled.text

    canceller = OrderCanceller(
        netsuite=clients.netsuite,
        dcl=clients.dcl,
        ledger=ledger,
        shopify=clients.shopify,
        stateset=clients.stateset,
    )
    assert canceller.cancel(key) == Outcome.DONE
    journey = ledger.journey(key)
    assert journey.stage == Stage.CANCELLED and journey.stateset_order_id
    (record,) = [
        o
        for o in sandbox_state(env["url"])["stateset"]["orders"]
        if o["data"]["metadata"]["external_id"] == f"shopify-order-{key}"
    ]
    assert record["id"] == journey.stateset_order_id and record["status"] == "CANCELLED"


def test_a_repair_keeps_to_its_own_exceptions_and_finds_a_lost_tag_beside_another_gap(world, monkeypatch):
    env, _, repair = world
    ledger = env["ledger"]
    waiting_for_a_person, lost = _place(env, 25), _place(env, 26)
    for key in (waiting_for_a_person, lost):
        # The ledger has both imported and tagged; Shopify shows no tag (someone removed it).
        ledger.record_order(key, f"#{key[-4:]}", None, lines=[])
        ledger.finish_import(key, f"#{key[-4:]}")
    # `lost` also went on to shipped with its StateSet status not recorded: a gap of its own.
    ledger.set_stage(ledger.journey(lost).id, Stage.SHIPPED)
    # The other has an edit after dispatch in flow A's queue, for a person to settle with DCL.
    ledger.quarantine(FLOW, Entity.ORDER, waiting_for_a_person, "edited_after_dispatch", "settle with DCL")

    findings = repair.find(_window())
    assert [(f.key, f.gaps) for f in findings.due] == [(lost, (Gap.SHOPIFY_TAG, Gap.STATESET_SHIPPED))]
    assert [f.key for f in findings.waiting] == [waiting_for_a_person]  # left to flow A's queue
    assert ledger.journey(lost).tagged_at is None  # Shopify's word is kept until the tag is back

    # A repair that fails is an exception of the repair, not of the order.
    with monkeypatch.context() as down:
        down.setattr(repair.shopify, "add_tags", _rejected)
        failed = run_batch(flow=FLOW, entity=REPAIR, keys=[lost], handle=repair.repair, ledger=ledger)
    assert failed.counts[Outcome.QUARANTINED] == 1
    (held,) = ledger.exceptions(statuses=[ExceptionStatus.OPEN], key=lost)
    assert held.entity == Entity.ORDER_REPAIR
    assert lost not in repair.find(_window()).order_keys  # a person holds it now

    ledger.set_exception_status(held.id, ExceptionStatus.RETRYING)  # they send it back
    retried = repair.find(_window())
    assert retried.order_keys == [lost]
    done = run_batch(flow=FLOW, entity=REPAIR, keys=retried.order_keys, handle=repair.repair, ledger=ledger)
    assert done.counts[Outcome.DONE] == 1
    assert not ledger.exceptions(statuses=[ExceptionStatus.OPEN, ExceptionStatus.RETRYING], key=lost)
    assert ledger.journey(lost).tagged_at is not None
    # The order's own exception was neither resolved nor touched by any repair.
    (still,) = ledger.exceptions(statuses=[ExceptionStatus.OPEN], key=waiting_for_a_person)
    assert (still.entity, still.reason) == (Entity.ORDER, "edited_after_dispatch")
    order = next(o for o in sandbox_state(env["url"])["shopify"]["orders"] if str(o["id"]) == lost)
    assert "SENT_TO_NS" in order["tags"]


def _rejected(*args, **kwargs):
    raise InvalidRecordError("tag_rejected", "Shopify refused the tag", system="shopify", operation="tagsAdd")


def test_an_overtaken_import_finishes_its_steps_and_flags_an_edit_made_after_dispatch(world, monkeypatch):
    env, ingestor, _ = world
    ledger, stateset = env["ledger"], env["clients"].stateset
    key = _place(env, 31)

    def died(*args, **kwargs):
        raise ProcessDied

    with monkeypatch.context() as crash:  # the sales order is written, the process dies before StateSet
        crash.setattr(stateset, "create_order", died)
        with pytest.raises(ProcessDied):
            ingestor.ingest(key)
    halfway = ledger.journey(key)
    ledger.record_dispatch(halfway.netsuite_sales_order_id, "SO-EDITED-1", shopify_order_id=key)
    ledger.set_stage(halfway.id, Stage.DISPATCHED)
    # The customer's first line is removed in Shopify after DCL got the order.
    stored = next(o for o in sandbox_state(env["url"])["shopify"]["orders"] if str(o["id"]) == key)
    edit = {"line_items": [{"id": stored["line_items"][0]["id"], "quantity": 0}]}
    httpx.post(f"{env['url']}/_sandbox/shopify/orders/{key}/edit", json=edit, timeout=30).raise_for_status()

    with pytest.raises(InvalidRecordError) as edited:
        ingestor.ingest(key)
    assert edited.value.reason == "edited_after_dispatch" and "old lines" in str(edited.value)
    finished = ledger.journey(key)  # the import's own steps were finished first
    assert finished.stateset_order_id and finished.tagged_at and not finished.import_pending
    assert finished.lines == halfway.lines  # the lines DCL has stay the ledger's record
    assert ingestor.ingest(key) == Outcome.SKIPPED
