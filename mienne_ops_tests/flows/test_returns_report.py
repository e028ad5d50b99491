"""The `returns` asset and its checks, materialized against a test ledger (no vendor is called)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import pytest

from mienne_ops.business_rules import BusinessRules
from mienne_ops.domain.returns import ReturnLine, ReturnStatus
from mienne_ops.flows import returns_report as flow
from mienne_ops_tests.support import ledger_asset_env, materialize_asset


@pytest.fixture
def env(tmp_path) -> Iterator[dict]:
    with ledger_asset_env(tmp_path) as env:
        yield env


def add_return(
    ledger, key: str, status: ReturnStatus, *, value: str = "40.00", currency: str = "USD", **cols
):
    ret, _ = ledger.record_return(
        key,
        request_id=None,
        shopify_order_id=f"55{len(key)}{key[-1]}",
        order_name=f"#{key}",
        lines=[ReturnLine(sku="MN-TEE-M", quantity=1, unit_price=Decimal(value))],
        currency=currency,
        value=Decimal(value),
        country="US",
    )
    if cols:
        ledger.update_return(ret.id, **cols)
    ledger.set_return_status(ret.id, status)
    return ret


def materialize(env) -> tuple[dict, dict]:
    return materialize_asset(flow.returns, env)


def test_an_empty_ledger_passes_every_check(env):
    metadata, checks = materialize(env)
    assert metadata["open"].value == 0 and metadata["money_pending"].value == "0"
    assert metadata["oldest_waiting"].value == "none"
    assert set(checks) == {flow.CHECK_DEADLINE, flow.CHECK_REFUNDED, flow.CHECK_MATCHED}
    assert all(check.passed for check in checks.values())


def test_counts_money_pending_and_the_open_table(env):
    ledger = env["ledger"]
    ahead = datetime.now(UTC) + timedelta(days=5)
    add_return(ledger, "1001", ReturnStatus.AWAITING_PARCEL, deadline_at=ahead, rma_number="RMA1001")
    add_return(ledger, "1002", ReturnStatus.IN_TRANSIT, value="25.50", deadline_at=ahead)
    add_return(ledger, "1003", ReturnStatus.AWAITING_PARCEL, value="30.00", currency="CAD", deadline_at=ahead)
    add_return(ledger, "1004", ReturnStatus.COMPLETED, refunded=Decimal("40.00"))
    metadata, checks = materialize(env)
    assert metadata["status_awaiting_parcel"].value == 2 and metadata["status_in_transit"].value == 1
    assert metadata["status_completed"].value == 1 and metadata["status_expired"].value == 0
    assert metadata["open"].value == 3 and metadata["dagster/row_count"].value == 3
    assert metadata["money_pending"].value == "30.00 CAD, 65.50 USD"
    assert metadata["money_pending_USD"].value == pytest.approx(65.5)
    table = metadata["open_returns"].value
    assert "| order | status | age_hours | deadline | money_pending | rma | return_key |" in table
    assert "#1001 | awaiting_parcel" in table and "RMA1001" in table and "#1004" not in table
    assert metadata["oldest_waiting"].value.startswith("#1001 (awaiting_parcel")
    assert all(check.passed for check in checks.values())


def test_a_return_past_its_deadline_fails_the_deadline_check(env):
    ledger = env["ledger"]
    past = datetime.now(UTC) - timedelta(hours=1)
    add_return(ledger, "2001", ReturnStatus.IN_TRANSIT, deadline_at=past)
    add_return(ledger, "2002", ReturnStatus.EXPIRED, deadline_at=past)  # expired as it should be
    _, checks = materialize(env)
    deadline = checks[flow.CHECK_DEADLINE]
    assert not deadline.passed and deadline.severity == dg.AssetCheckSeverity.ERROR
    assert deadline.metadata["stuck"].value == 1
    assert "#2001" in deadline.metadata["returns"].value and "#2002" not in deadline.metadata["returns"].value
    assert checks[flow.CHECK_REFUNDED].passed and checks[flow.CHECK_MATCHED].passed


def test_received_but_not_refunded_after_the_sla_fails_its_check(env):
    ledger = env["ledger"]
    now = datetime.now(UTC)
    add_return(ledger, "3001", ReturnStatus.RECEIVED, received_at=now - timedelta(hours=30))
    add_return(ledger, "3002", ReturnStatus.RECEIVED, received_at=now - timedelta(hours=2))  # in time
    add_return(
        ledger, "3003", ReturnStatus.RECEIVED, received_at=now - timedelta(hours=30), refunded=Decimal("40")
    )
    _, checks = materialize(env)
    refunded = checks[flow.CHECK_REFUNDED]
    assert not refunded.passed and refunded.metadata["unrefunded"].value == 1
    assert "#3001" in refunded.metadata["returns"].value
    assert refunded.metadata["sla_hours"].value == 24.0
    env["resources"]["rules"] = BusinessRules(return_refund_sla_hours=48)  # a longer SLA: in time
    _, checks = materialize(env)
    assert checks[flow.CHECK_REFUNDED].passed


def test_dcl_receipts_no_return_handles_fail_the_receipts_check_until_resolved(env):
    ledger = env["ledger"]
    ledger.quarantine("F", "dcl_rma", "RMA777", "unknown_rma", "DCL received RMA777: no return has it")
    ledger.quarantine("F", "dcl_rma", "RMA778", "receipt_after_close", "DCL received RMA778 after it expired")
    ledger.quarantine("F", "return", "k-other:wrong_item", "wrong_item", "not this check's business")
    _, checks = materialize(env)
    matched = checks[flow.CHECK_MATCHED]
    assert not matched.passed and matched.metadata["rma_numbers"].value == "RMA777, RMA778"
    ledger.resolve("F", "dcl_rma", "RMA777")
    ledger.resolve("F", "dcl_rma", "RMA778")
    _, checks = materialize(env)
    assert checks[flow.CHECK_MATCHED].passed


def test_the_report_is_refreshed_by_a_running_schedule():
    assert flow.returns_report_schedule.cron_schedule == "*/15 * * * *"
    assert flow.returns_report_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert flow.returns_report_schedule.job_name == "returns_report_job"
