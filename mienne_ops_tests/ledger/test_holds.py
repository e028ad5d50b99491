"""Holds in the ledger: one row per order and reason, since kept on refresh, every change audited,
time-based releases found by the database; and the `mienne-ops holds` commands over them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from mienne_ops import settings
from mienne_ops.cli import main
from mienne_ops.domain.holds import HoldDecision, HoldReason, Release
from mienne_ops.domain.journey import Stage
from mienne_ops_tests.support import new_ledger


@pytest.fixture
def ledger(tmp_path):
    store = new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield store
    store.dispose()


def test_a_hold_is_placed_once_refreshed_without_losing_its_age_and_released_once(ledger):
    window = HoldDecision(HoldReason.EDIT_WINDOW, "30-minute window", datetime(2030, 1, 1, tzinfo=UTC))
    assert ledger.place_hold("1", window, placed_by="rules")
    (first,) = ledger.active_holds(["1"])
    assert not ledger.place_hold("1", HoldDecision(HoldReason.EDIT_WINDOW, "refreshed"), placed_by="rules")
    (refreshed,) = ledger.active_holds(["1"])
    assert refreshed.placed_at == first.placed_at and refreshed.detail == "refreshed"
    assert ledger.held_order_ids() == {"1"}
    assert ledger.release_hold("1", HoldReason.EDIT_WINDOW, released_by="rules")
    assert not ledger.release_hold("1", HoldReason.EDIT_WINDOW, released_by="rules")
    assert ledger.held_order_ids() == set()
    (released,) = ledger.holds_of("1")
    assert released.released_by == "rules" and not released.active
    operations = [(a["operation"], a["detail"].split(":")[0]) for a in ledger.audit_trail(["1"])]
    assert operations == [("hold.place", "edit_window by rules"), ("hold.release", "edit_window by rules")]
    assert ledger.place_hold("1", window, placed_by="rules")  # after a release: a new hold


def test_holds_released_by_time_are_due_by_the_utc_instant_whatever_the_zone(ledger):
    from zoneinfo import ZoneInfo

    tokyo = datetime(2027, 1, 15, 0, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 2027-01-14 15:00 UTC
    ledger.place_hold("7", HoldDecision(HoldReason.PRE_ORDER, "pre-order", tokyo), placed_by="rules")
    ledger.place_hold("8", HoldDecision(HoldReason.FRAUD_RISK, "risk HIGH"), placed_by="rules")
    assert ledger.holds_due(datetime(2027, 1, 14, 14, 59, tzinfo=UTC)) == []
    (due,) = ledger.holds_due(datetime(2027, 1, 14, 15, 0, tzinfo=UTC))
    assert due.shopify_order_id == "7" and due.release == Release.AT_TIME and due.until == tokyo


def test_operators_hold_list_and_release_from_the_cli(state_dir, monkeypatch):
    monkeypatch.setenv("USER", "ana")
    ledger = new_ledger(settings.ledger_url())
    ledger.record_order("5001", "#1001", Stage.IN_NETSUITE)
    ledger.place_hold("5001", HoldDecision(HoldReason.FRAUD_RISK, "Shopify risk HIGH"), placed_by="rules")
    runner = CliRunner()
    held = runner.invoke(main, ["holds", "hold", "#1001", "--note", "customer asked to wait"])
    assert held.exit_code == 0 and "#1001 held" in held.output
    listed = runner.invoke(main, ["holds", "list"]).output
    assert "fraud_risk" in listed and "manual" in listed and "customer asked to wait (by ana)" in listed
    released = runner.invoke(main, ["holds", "release", "1001", "--reason", "fraud_risk"])
    assert released.exit_code == 0 and "released fraud_risk on 1001" in released.output
    assert [h.reason for h in ledger.active_holds()] == [HoldReason.MANUAL]
    assert runner.invoke(main, ["holds", "release", "#1001"]).exit_code == 0
    assert ledger.held_order_ids() == set()
    again = runner.invoke(main, ["holds", "release", "#1001"])
    assert again.exit_code != 0 and "no active hold" in again.output
    history = runner.invoke(main, ["holds", "list", "--all", "--order", "#1001"]).output
    assert history.count("released") == 2 and "by ana" in history
    assert runner.invoke(main, ["holds", "list"]).output.strip() == "no holds"
    ledger.dispose()


def test_a_withdrawn_journey_is_rebound_to_its_new_dcl_number_once(ledger):
    from mienne_ops.ledger.journeys import BindingConflict

    ledger.record_order("9001", "#9001", Stage.IN_NETSUITE)
    journey = ledger.record_dispatch("601", "SO601", shopify_order_id="9001", tranid="SO601")
    assert not ledger.move_stage(journey.id, [Stage.WITHDRAWING], Stage.WITHDRAWN)  # not from dispatched
    assert ledger.move_stage(journey.id, [Stage.DISPATCHED], Stage.WITHDRAWING)
    assert ledger.move_stage(journey.id, [Stage.WITHDRAWING], Stage.WITHDRAWN)
    with pytest.raises(BindingConflict):
        ledger.rebind_dcl_order(journey.id, "SO999", "SO601-R1")  # not its number
    moved = ledger.rebind_dcl_order(journey.id, "SO601", "SO601-R1")
    assert moved.dcl_order_number == "SO601-R1" and moved.stage == Stage.DISPATCHED
    assert ledger.rebind_dcl_order(journey.id, "SO601", "SO601-R1") == moved  # a re-run: nothing moves
    assert ledger.journey_by_dcl_order("SO601-R1").id == journey.id
    assert ledger.journey_by_dcl_order("SO601") is None
    (rebound,) = [a for a in ledger.audit_trail(["9001"]) if a["operation"] == "journey.rebind_dcl_order"]
    assert "SO601" in rebound["detail"] and rebound["remote_id"] == "SO601-R1"
    with pytest.raises(BindingConflict):
        ledger.rebind_dcl_order(journey.id, "SO601-R1", "SO601-R2")  # dispatched, not withdrawn
