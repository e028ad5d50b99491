"""DclRecall against the DCL fake: a held order DCL has is cancelled there once, whatever crashes or
races in between, and reported too late once DCL is picking."""

from __future__ import annotations

import httpx
import pytest

from mienne_ops import settings
from mienne_ops.domain.holds import HoldDecision, HoldReason
from mienne_ops.domain.journey import Stage
from mienne_ops.sync.batch import Outcome
from mienne_ops.sync.hold_recall import DclRecall, DclState, dcl_states
from mienne_ops_tests.integrations.test_dcl_client import make_client, order
from mienne_ops_tests.support import new_ledger, single_system_server

server = single_system_server("dcl")
KEY, SALES_ORDER, NUMBER = "7001", "501", "SO501"


class NetSuiteStub:
    """Records the PATCHes the recall makes (NetSuite's flag is all it writes there)."""

    def __init__(self) -> None:
        self.patches: list[tuple[str, str, dict]] = []

    def patch(self, record_type: str, record_id: str, body: dict) -> None:
        self.patches.append((record_type, record_id, body))


@pytest.fixture
def recall(server, state_dir):
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    httpx.post(f"{server.url}/_sandbox/dcl/limits", json={"requests_per_second": 1000}).raise_for_status()
    dcl = make_client(server.url)
    ledger = new_ledger(settings.ledger_url())
    assert dcl.submit_batch([order(NUMBER)])[0].accepted
    ledger.record_order(KEY, "#7001", Stage.IN_NETSUITE)
    ledger.record_dispatch(SALES_ORDER, NUMBER, shopify_order_id=KEY, tranid=NUMBER)
    yield DclRecall(dcl, NetSuiteStub(), ledger)  # type: ignore[arg-type]
    ledger.dispose()
    dcl.close()


def hold(recall: DclRecall, reason: HoldReason = HoldReason.MANUAL) -> None:
    recall.ledger.place_hold(KEY, HoldDecision(reason, "customer asked to wait"), placed_by="ana")


def dcl_order(recall: DclRecall) -> dict:
    (found,) = recall.dcl.get_orders([NUMBER])
    return found


def stage(recall: DclRecall) -> Stage:
    return recall.ledger.journey(KEY).stage


def test_a_held_order_is_cancelled_at_dcl_once_and_a_second_hold_changes_nothing(recall):
    assert recall.due() == []  # not held: nothing to take back
    hold(recall)
    assert recall.due() == [NUMBER]
    assert recall.recall_all().counts[Outcome.DONE] == 1
    assert dcl_order(recall)["is_cancelled"] and stage(recall) == Stage.WITHDRAWN
    assert recall.netsuite.patches == [("salesOrder", SALES_ORDER, {"custbody_sent_to_3pl": False})]
    assert dcl_states(recall.ledger, [KEY])[KEY][0] == DclState.WITHDRAWN

    hold(recall, HoldReason.FRAUD_RISK)  # a second hold: DCL has nothing live to cancel any more
    assert recall.due() == []
    assert recall.recall(NUMBER) == Outcome.SKIPPED
    assert len(recall.netsuite.patches) == 1


@pytest.mark.parametrize("crash", ["after_the_intent", "after_the_dcl_cancel"])
def test_a_crash_inside_the_recall_is_finished_by_the_next_run(recall, crash):
    hold(recall)
    journey = recall.ledger.journey(KEY)
    recall.ledger.move_stage(journey.id, [Stage.DISPATCHED], Stage.WITHDRAWING)  # step 1 written
    if crash == "after_the_dcl_cancel":
        assert recall.dcl.cancel_order(NUMBER)  # step 2 done, its answer lost with the process
    assert recall.due() == [NUMBER]  # a withdrawing journey is never forgotten
    assert recall.recall_all().counts[Outcome.DONE] == 1
    assert dcl_order(recall)["is_cancelled"] and stage(recall) == Stage.WITHDRAWN
    assert len(recall.netsuite.patches) == 1


def test_dcl_cancelled_by_someone_else_is_recorded_as_withdrawn(recall):
    assert recall.dcl.cancel_order(NUMBER)  # e.g. cancelled in eFactory before the run
    hold(recall)
    assert recall.recall(NUMBER) == Outcome.DONE
    assert stage(recall) == Stage.WITHDRAWN


def test_a_release_racing_the_cancel_is_driven_forward_never_back(recall, server):
    """Flow B finds a withdrawing journey whose hold was released: it finishes the cancel (then sends
    the order again) rather than assume DCL still has it; only DCL's refusal moves it back."""
    hold(recall)
    journey = recall.ledger.journey(KEY)
    recall.ledger.move_stage(journey.id, [Stage.DISPATCHED], Stage.WITHDRAWING)
    recall.ledger.release_hold(KEY, HoldReason.MANUAL, "ana")
    assert recall.withdraw(recall.ledger.journey(KEY)) is True
    assert dcl_order(recall)["is_cancelled"] and stage(recall) == Stage.WITHDRAWN


def test_refused_by_dcl_the_withdrawing_journey_goes_back_to_dispatched(recall, server):
    hold(recall)
    journey = recall.ledger.journey(KEY)
    recall.ledger.move_stage(journey.id, [Stage.DISPATCHED], Stage.WITHDRAWING)
    httpx.post(f"{server.url}/_sandbox/dcl/orders/{NUMBER}/stage", json={"stage": 20}).raise_for_status()
    assert recall.withdraw(recall.ledger.journey(KEY)) is False
    assert not dcl_order(recall)["is_cancelled"] and stage(recall) == Stage.DISPATCHED
    assert recall.netsuite.patches == []


def test_once_dcl_is_picking_the_hold_is_reported_too_late_until_released(recall, server):
    httpx.post(f"{server.url}/_sandbox/dcl/orders/{NUMBER}/stage", json={"stage": 20}).raise_for_status()
    hold(recall)
    report = recall.recall_all()
    assert report.counts[Outcome.QUARANTINED] == 1
    (problem,) = report.problems
    assert problem.reason == "hold_too_late" and "stage 20 (Pick List Printed)" in problem.message
    (row,) = recall.ledger.exceptions(statuses=["open"], flow="holds")
    assert row.key == NUMBER and row.context["dcl_stage"] == 20 and row.context["holds"] == ["manual"]
    assert not dcl_order(recall)["is_cancelled"] and stage(recall) == Stage.DISPATCHED
    state, detail = dcl_states(recall.ledger, [KEY])[KEY]
    assert state == DclState.TOO_LATE and "stage 20" in detail
    assert recall.due() == []  # reported once, not asked again on every tick
    assert [h.reason for h in recall.ledger.active_holds([KEY])] == [HoldReason.MANUAL]  # the hold stays

    recall.ledger.release_hold(KEY, HoldReason.MANUAL, "ana")
    assert recall.ledger.exceptions(statuses=["open"], flow="holds") == []


def test_a_shipped_order_is_too_late_without_asking_dcl_to_cancel(recall):
    recall.ledger.set_stage(recall.ledger.journey(KEY).id, Stage.SHIPPED)
    hold(recall)
    assert recall.recall_all().counts[Outcome.QUARANTINED] == 1
    assert not dcl_order(recall)["is_cancelled"]
    assert [a for a in recall.ledger.audit_trail([KEY]) if a["operation"] == "orders.cancel"] == []


def test_dcl_unreachable_leaves_the_journey_withdrawing_and_the_next_run_finishes(recall, server):
    hold(recall)
    faults = {"seed": 1, "dcl": {"error_rate": 1.0}}
    httpx.post(f"{server.url}/_sandbox/faults", json=faults).raise_for_status()
    try:
        assert recall.recall_all().counts[Outcome.RETRYING] == 1
    finally:
        httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True}).raise_for_status()
    assert stage(recall) == Stage.WITHDRAWING and recall.due() == [NUMBER]
    assert dcl_states(recall.ledger, [KEY])[KEY][0] == DclState.CANCELLING
    assert recall.recall_all().counts[Outcome.DONE] == 1
    assert stage(recall) == Stage.WITHDRAWN
    assert recall.ledger.exceptions(statuses=["open", "retrying"], flow="holds") == []
