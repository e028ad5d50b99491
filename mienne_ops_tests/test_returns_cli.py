"""`mienne-ops returns list|show` and the returns in `order status`, against a test ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner

from mienne_ops import settings
from mienne_ops.cli import main
from mienne_ops.domain.journey import Stage
from mienne_ops.domain.returns import ReturnLine, ReturnStatus
from mienne_ops.ledger import Ledger

ORDER_ID = "820001"


@pytest.fixture
def ledger(state_dir):
    store = Ledger(settings.ledger_url())
    yield store
    store.dispose()


def cli(*args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(main, list(args))
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    else:
        assert result.exit_code == 1, (result.output, result.exception)
    return result.output


def shipped_order(ledger: Ledger) -> None:
    ledger.record_order(ORDER_ID, "#1042", Stage.RECEIVED)
    ledger.record_dispatch("9001", "SO-9001", shopify_order_id=ORDER_ID, tranid="SO-9001")
    for key, fulfillment, shopify in (("SO-9001-a", "IF1", "gid://F/1"), ("SO-9001-b", "IF2", "gid://F/2")):
        ledger.bind_item_fulfillment(key, "SO-9001", fulfillment)
        ledger.audit("netsuite", "itemFulfillment.transform", key, "ok", remote_id=fulfillment)
        ledger.record_on_shopify(key, "SO-9001", shopify)
        ledger.audit("shopify", "fulfillmentCreate", key, "ok", remote_id=shopify)


def a_return(ledger: Ledger, key: str, status: ReturnStatus, **columns):
    ret, _ = ledger.record_return(
        key,
        request_id=None,
        shopify_order_id=ORDER_ID,
        order_name="#1042",
        lines=[
            ReturnLine(sku="MN-TEE-M", quantity=2, unit_price=Decimal("19.50")),
            ReturnLine(sku="MN-CAP", quantity=1, unit_price=Decimal("12.00")),
        ],
        currency="USD",
        value=Decimal("51.00"),
        country="US",
    )
    if columns:
        ledger.update_return(ret.id, **columns)
    ledger.set_return_status(ret.id, status, reason="test")
    return ret


def test_list_shows_open_returns_by_default_and_the_rest_on_request(ledger):
    deadline = datetime.now(UTC) + timedelta(days=10)
    a_return(
        ledger, "gorgias:1:return", ReturnStatus.AWAITING_PARCEL, rma_number="RMA501", deadline_at=deadline
    )
    a_return(ledger, "operator:old", ReturnStatus.COMPLETED, rma_number="RMA502", refunded=Decimal("51.00"))
    shown = cli("returns", "list")
    assert "#1042" in shown and "awaiting_parcel" in shown and "RMA501" in shown
    assert f"{deadline:%Y-%m-%d %H:%M}" in shown and "51.00 USD" in shown
    assert "RMA502" not in shown
    every = cli("returns", "list", "--all")
    assert "RMA501" in every and "RMA502" in every and "0.00 USD" in every
    completed = cli("returns", "list", "--status", "completed")
    assert "RMA502" in completed and "RMA501" not in completed
    assert "no returns" in cli("returns", "list", "--status", "expired")


def test_an_empty_ledger_lists_no_open_returns(ledger):
    assert "no open returns" in cli("returns", "list")


def test_show_finds_a_return_by_key_rma_or_order_with_its_trail_and_exceptions(ledger):
    shipped_order(ledger)
    ret = a_return(ledger, "gorgias:7:return", ReturnStatus.RECEIVED, rma_number="RMA601")
    ledger.note_return(
        ret.id,
        netsuite_rma_id="77",
        tracking_number="9202000000001",
        shopify_return_id="gid://R/5",
    )
    ledger.audit("dcl", "rmas.create", "gorgias:7:return", "ok", remote_id="RMA601")
    # The worker's keys: the return's own problems under "<key>:<reason>", its RMA's by number.
    ledger.quarantine("F", "return", "gorgias:7:return:damaged", "damaged", "MN-CAP×1 arrived damaged")
    ledger.quarantine("F", "dcl_rma", "RMA601", "receipt_after_close", "DCL received RMA601 late")
    ledger.quarantine("F", "return", "gorgias:70:return:damaged", "damaged", "another return's")
    for reference in ("gorgias:7:return", "RMA601", "#1042", "1042", ORDER_ID, "SO-9001"):
        shown = cli("returns", "show", reference)
        assert shown.startswith("return #1042 (gorgias:7:return) — received"), (reference, shown)
        assert "MN-TEE-M×2, MN-CAP×1" in shown and "51.00 USD" in shown
        assert "9202000000001" in shown and "netsuite_rma_id" in shown and "gid://R/5" in shown
        assert "rmas.create" in shown and "return.status" in shown and "return.record" in shown
        assert "[open] damaged: MN-CAP×1 arrived damaged" in shown
        assert "receipt_after_close: DCL received RMA601 late" in shown and "another return's" not in shown


def test_show_lists_every_return_of_an_order(ledger):
    a_return(ledger, "k-one", ReturnStatus.CANCELLED)
    a_return(ledger, "k-two", ReturnStatus.AWAITING_PARCEL)
    shown = cli("returns", "show", "#1042")
    assert "(k-one) — cancelled" in shown and "(k-two) — awaiting_parcel" in shown


def test_unknown_references_are_refused_with_exit_1(ledger):
    assert "no return #9999" in cli("returns", "show", "#9999", ok=False)
    assert "no return RMA404" in cli("returns", "cancel", "RMA404", "--reason", "x", ok=False)


def test_cancel_asks_which_return_when_an_order_has_several_open_ones(ledger):
    a_return(ledger, "k-one", ReturnStatus.AWAITING_PARCEL)
    a_return(ledger, "k-two", ReturnStatus.AWAITING_PARCEL)
    refused = cli("returns", "cancel", "#1042", "--reason", "customer changed their mind", ok=False)
    assert "has 2 returns (k-one, k-two): name one by its key" in refused


def test_start_refuses_a_malformed_line_before_recording_anything(ledger):
    result = CliRunner().invoke(main, ["returns", "start", "#1042", "--line", "MN-TEE-M:two"])
    assert result.exit_code == 2 and "SKU:QUANTITY" in result.output
    assert ledger.requests() == []


def test_order_status_shows_shipments_their_writes_and_the_order_returns(ledger):
    shipped_order(ledger)
    ret = a_return(ledger, "gorgias:7:return", ReturnStatus.AWAITING_PARCEL, rma_number="RMA601")
    ledger.note_return(ret.id, tracking_number="9202000000001")
    ledger.audit("dcl", "rmas.create", "gorgias:7:return", "ok", remote_id="RMA601")
    ledger.quarantine("F", "return", "gorgias:7:return:no_label", "outside_us_ca", "no label to FR")
    shown = cli("order", "status", "#1042")
    assert "shipments (2):" in shown
    assert "SO-9001-a" in shown and "item fulfillment IF1" in shown and "on Shopify as gid://F/2" in shown
    # Flow C's writes are audited per shipment: they are the order's writes too.
    assert "itemFulfillment.transform" in shown and "fulfillmentCreate" in shown
    assert "returns (1):" in shown
    line = (
        "awaiting_parcel: MN-TEE-M×2, MN-CAP×1, rma RMA601, label 9202000000001, refunded 0.00 of 51.00 USD"
    )
    assert "gorgias:7:return" in shown and line in shown
    assert "rmas.create" in shown and "outside_us_ca: no label to FR" in shown
