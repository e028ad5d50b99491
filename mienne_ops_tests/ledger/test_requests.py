"""The ledger's flow F requests: one row per idempotency key, statuses moved once, outcomes merged."""

from __future__ import annotations

from decimal import Decimal

from mienne_ops.domain.service_requests import (
    RequestDetails,
    RequestedLine,
    RequestKind,
    RequestSource,
    RequestStatus,
    TicketRef,
)
from mienne_ops_tests.support import new_ledger


def _details() -> RequestDetails:
    return RequestDetails(
        lines=(RequestedLine(sku="MN-TEE-M", quantity=1),), shipping=True, amount=Decimal("5.00")
    )


def test_a_request_is_recorded_once_per_key(tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ticket = TicketRef("gorgias", "77")
    first, new = ledger.record_request(
        "gorgias:77:refund",
        RequestKind.REFUND,
        RequestSource.GORGIAS,
        _details(),
        ticket=ticket,
        requester="a@b.com",
    )
    again, new_again = ledger.record_request(
        "gorgias:77:refund",
        RequestKind.REFUND,
        RequestSource.GORGIAS,
        RequestDetails(full=True),
        ticket=ticket,
    )
    assert (new, new_again) == (True, False)
    assert again.id == first.id and again.details == _details()  # the first recording stands
    assert first.ticket == ticket and first.status == RequestStatus.RECEIVED
    assert [r.id for r in ledger.open_requests()] == [first.id]


def test_status_moves_only_from_the_expected_status_and_is_audited(tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    request, _ = ledger.record_request("operator:x", RequestKind.REFUND, RequestSource.OPERATOR, _details())
    assert ledger.set_request_status(request.id, RequestStatus.AWAITING_APPROVAL, reasons=["above the limit"])
    assert ledger.set_request_status(
        request.id, RequestStatus.APPROVED, decided_by="ana", expect=[RequestStatus.AWAITING_APPROVAL]
    )
    # A second approver (or a deny racing the approval) finds it decided already.
    assert not ledger.set_request_status(
        request.id, RequestStatus.DENIED, decided_by="bo", expect=[RequestStatus.AWAITING_APPROVAL]
    )
    stored = ledger.request(request.id)
    assert stored.status == RequestStatus.APPROVED and stored.decided_by == "ana"
    assert stored.decision == ["above the limit"]
    trail = [row["detail"] for row in ledger.audit_trail(["operator:x"])]
    assert any("approved by ana" in (d or "") for d in trail)


def test_outcomes_merge_step_by_step(tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    request, _ = ledger.record_request("operator:y", RequestKind.REFUND, RequestSource.OPERATOR, _details())
    ledger.note_outcome(request.id, shopify_refund_id="gid://shopify/Refund/1", amount=Decimal("12.50"))
    merged = ledger.note_outcome(request.id, netsuite_refund_id="77")
    assert merged.outcome == {
        "shopify_refund_id": "gid://shopify/Refund/1",
        "amount": "12.50",
        "netsuite_refund_id": "77",
    }
