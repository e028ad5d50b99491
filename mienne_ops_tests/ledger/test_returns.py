"""The ledger's returns: one row per request key, outcomes merged, status moves guarded, on SQLite
(the dialect-specific insert is covered by the requests tests on PostgreSQL too)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from mienne_ops.domain.returns import OrderReturn, ReturnLine, ReturnStatus
from mienne_ops_tests.support import new_ledger


def _record(ledger, key: str = "gorgias:9:return") -> tuple[OrderReturn, bool]:
    return ledger.record_return(
        key,
        request_id=4,
        shopify_order_id="1001",
        order_name="#1001",
        lines=[ReturnLine(sku="MN-TEE-M", quantity=2, unit_price=Decimal("19.50"))],
        currency="USD",
        value=Decimal("39.00"),
        country="US",
    )


def test_a_return_is_recorded_once_per_key(tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    first, new = _record(ledger)
    again, new_again = _record(ledger)
    assert (new, new_again) == (True, False)
    assert again.id == first.id
    assert first.status == ReturnStatus.OPENING
    assert first.expected == {"MN-TEE-M": 2}
    assert first.money_pending == Decimal("39.00")
    assert [a["operation"] for a in ledger.audit_trail(["gorgias:9:return"])] == ["return.record"]


def test_outcome_facts_merge_and_lists_hold_each_item_once(tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ret, _ = _record(ledger)
    ledger.note_return(ret.id, netsuite_rma_id="55")
    ledger.note_return(ret.id, dcl_rma="RMA55")
    ledger.append_return_fact(ret.id, "receipts_booked", "R1")
    ledger.append_return_fact(ret.id, "receipts_booked", "R1")
    refund = {"id": "gid://shopify/Refund/1", "units": {"MN-TEE-M": 1}, "amount": "19.50"}
    ledger.append_return_fact(ret.id, "refunds", refund)
    ret = ledger.append_return_fact(ret.id, "refunds", refund)
    assert ret.outcome["netsuite_rma_id"] == "55" and ret.outcome["dcl_rma"] == "RMA55"
    assert ret.booked_receipts == {"R1"}
    assert ret.refunded_units == {"MN-TEE-M": 1}


def test_status_moves_only_from_what_was_expected(tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ret, _ = _record(ledger)
    assert ledger.set_return_status(ret.id, ReturnStatus.AWAITING_PARCEL, expect=[ReturnStatus.OPENING])
    assert not ledger.set_return_status(ret.id, ReturnStatus.EXPIRED, expect=[ReturnStatus.OPENING])
    assert [r.id for r in ledger.open_returns()] == [ret.id]
    ledger.set_return_status(ret.id, ReturnStatus.COMPLETED)
    assert ledger.open_returns() == []


def test_columns_update_and_rma_lookup(tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ret, _ = _record(ledger)
    sent = datetime(2026, 12, 1, 15, tzinfo=UTC)
    ret = ledger.update_return(
        ret.id,
        rma_number="RMA1001",
        label_sent_at=sent,
        deadline_at=sent + timedelta(days=14),
        refunded=Decimal("19.50"),
    )
    assert ret.deadline_at == sent + timedelta(days=14)
    assert ret.money_pending == Decimal("19.50")
    found = ledger.return_by_rma("RMA1001")
    assert found is not None and found.id == ret.id
    try:
        ledger.update_return(ret.id, status="completed")
    except ValueError as error:
        assert "status" in str(error)
    else:
        raise AssertionError("status moves only through set_return_status")
