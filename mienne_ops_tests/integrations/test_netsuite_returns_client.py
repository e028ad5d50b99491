"""The NetSuite client's return-authorization lifecycle (approve, receive, refund, close) against the
sandbox over real HTTP: statuses, stock and money."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from mienne_ops.errors import RemoteValidationError
from mienne_ops.integrations.http import RetryPolicy
from mienne_ops.integrations.netsuite import NetSuiteClient, client_for
from mienne_ops.sandbox.credentials import NETSUITE
from mienne_ops.sandbox.server import SandboxServer
from mienne_ops_tests.support import single_system_server

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)
CREAM, CLEANSER, TAX = "1001", "1002", "900"
WAREHOUSE = "1"

server = single_system_server("netsuite")


@pytest.fixture
def sandbox(server: SandboxServer) -> Iterator[SandboxServer]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[NetSuiteClient]:
    ns = client_for(NETSUITE, f"{sandbox.url}/netsuite", retry=FAST)
    yield ns
    ns.close()


def state(sandbox: SandboxServer) -> dict:
    return sandbox.hub.system("netsuite").state()


def billed_order(client: NetSuiteClient, billing: str = "cashSale", key: str = "1") -> str:
    """An order of 2 creams, 1 cleanser, tax and shipping, shipped and billed; returns its id."""
    body = {
        "entity": {"id": "5000"},
        "orderStatus": {"id": "B"},
        "location": {"id": WAREHOUSE},
        "shippingCost": 5.0,
        "item": {
            "items": [
                {"item": {"id": CREAM}, "quantity": 2, "rate": 75.95},
                {"item": {"id": CLEANSER}, "quantity": 1, "rate": 53.32},
                {"item": {"id": TAX}, "quantity": 1, "rate": 16.42},
            ]
        },
    }
    order_id = client.upsert("salesOrder", f"shopify-order-{key}", body)
    client.transform("salesOrder", order_id, "itemFulfillment", {"externalId": f"ship-{key}"})
    client.transform("salesOrder", order_id, billing, {"externalId": f"bill-{key}"})
    return order_id


def rma_for_goods(client: NetSuiteClient, order_id: str, key: str, *, approved: bool = False) -> str:
    """An RMA for the two creams and the cleanser (no tax, no shipping)."""
    body: dict = {
        "shippingCost": 0,
        "item": {
            "items": [
                {"orderLine": 1, "quantity": 2},
                {"orderLine": 2, "quantity": 1},
                {"orderLine": 3, "itemReceive": False},
            ]
        },
    }
    if approved:
        body["orderStatus"] = {"id": "B"}
    return client.return_authorization(source=("salesOrder", order_id), external_id=key, body=body)


def on_hand(client: NetSuiteClient, item: str, location: str = WAREHOUSE) -> Decimal:
    query = (
        f"SELECT quantityonhand, quantityavailable FROM aggregateItemLocation WHERE item = {item} "
        f"AND location = {location}"
    )
    [row] = list(client.suiteql(query))
    assert row["quantityonhand"] == row["quantityavailable"]
    return Decimal(row["quantityonhand"])


def refund_lines(lines: dict[int, int], all_lines: tuple[int, ...]) -> dict:
    """A refund body taking ``lines`` (RMA line -> quantity) and nothing else."""
    items = [
        {"orderLine": line, "quantity": lines[line]} if line in lines else {"orderLine": line, "apply": False}
        for line in all_lines
    ]
    return {"item": {"items": items}}


def test_rma_received_in_two_parts_then_refunded_moves_stock_once_and_money_to_the_cent(client, sandbox):
    order_id = billed_order(client)
    rma = rma_for_goods(client, order_id, "return-1")
    summary = client.return_authorization_summary(rma)
    assert summary.status == "A" and summary.tran_id.startswith("RMA") and len(summary.tran_id) <= 25
    assert [(line.line, line.sku, line.quantity, line.amount) for line in summary.lines] == [
        (1, "MN-CREAM-002", 2, Decimal("151.90")),
        (2, summary.lines[1].sku, 1, Decimal("53.32")),
    ]
    with pytest.raises(RemoteValidationError):  # not approved yet
        client.receive_return(rma, external_id="rcpt-0", lines=[(1, 1, WAREHOUSE)])
    client.approve_return_authorization(rma)
    client.approve_return_authorization(rma)  # already approved: nothing to do
    assert client.return_authorization_summary(rma).status == "B"

    cream_before, cleanser_before = on_hand(client, CREAM), on_hand(client, CLEANSER)
    first = client.receive_return(rma, external_id="rcpt-1", lines=[(1, 1, WAREHOUSE)])
    assert client.receive_return(rma, external_id="rcpt-1", lines=[(1, 1, WAREHOUSE)]) == first
    assert on_hand(client, CREAM) == cream_before + 1
    assert client.return_authorization_summary(rma).status == "E"  # partly received, refund pending

    all_lines = (1, 2)
    refund_1 = client.cash_refund(
        source=("returnAuthorization", rma), external_id="refund-1", body=refund_lines({1: 1}, all_lines)
    )
    assert client.return_authorization_summary(rma).status == "D"  # partly received, nothing owed
    with pytest.raises(RemoteValidationError) as over:
        client.receive_return(rma, external_id="rcpt-2", lines=[(1, 2, WAREHOUSE)])
    assert over.value.status == 400
    second = client.receive_return(rma, external_id="rcpt-2", lines=[(1, 1, WAREHOUSE), (2, 1, WAREHOUSE)])
    summary = client.return_authorization_summary(rma)
    assert summary.status == "F" and [line.quantity_received for line in summary.lines] == [2, 1]
    refund_2 = client.cash_refund(
        source=("returnAuthorization", rma),
        external_id="refund-2",
        body=refund_lines({1: 1, 2: 1}, all_lines),
    )
    assert client.return_authorization_summary(rma).status == "G"

    # Stock grew with the receipts only, never with the refunds.
    assert on_hand(client, CREAM) == cream_before + 2
    assert on_hand(client, CLEANSER) == cleanser_before + 1
    books = state(sandbox)
    refunds = {r["id"]: r["total"] for r in books["cash_refunds"]}
    assert refunds == {refund_1: "75.95", refund_2: "129.27"}
    receipts = [r for r in books["item_receipts"] if r["createdFrom"] == rma]
    assert [r["id"] for r in receipts] == [first, second]
    assert [[(line["orderLine"], line["quantity"]) for line in r["lines"]] for r in receipts] == [
        [(1, 1)],
        [(1, 1), (2, 1)],
    ]
    with pytest.raises(RemoteValidationError):  # nothing left to receive
        client.receive_return(rma, external_id="rcpt-3", lines=[(2, 1, WAREHOUSE)])


def test_receipts_need_an_existing_location_and_a_receivable_line(client):
    order_id = billed_order(client)
    rma = rma_for_goods(client, order_id, "return-2", approved=True)
    with pytest.raises(RemoteValidationError):
        client.receive_return(rma, external_id="rcpt-x", lines=[(1, 1, "999")])
    with pytest.raises(RemoteValidationError):
        client.receive_return(rma, external_id="rcpt-x", lines=[(7, 1, WAREHOUSE)])
    assert client.return_authorization_summary(rma).status == "B"


def test_closing_an_unreceived_rma(client, sandbox):
    order_id = billed_order(client)
    pending = rma_for_goods(client, order_id, "return-3")
    assert client.close_return_authorization(pending) is True
    assert client.return_authorization_summary(pending).status == "C"
    assert client.close_return_authorization(pending) is False
    with pytest.raises(RemoteValidationError):
        client.receive_return(pending, external_id="rcpt-c", lines=[(1, 1, WAREHOUSE)])
    with pytest.raises(RemoteValidationError):
        client.cash_refund(source=("returnAuthorization", pending), external_id="refund-c", body={})

    approved = rma_for_goods(client, order_id, "return-4", approved=True)
    assert client.close_return_authorization(approved) is True
    summary = client.return_authorization_summary(approved)
    assert summary.status == "H" and all(line.is_closed for line in summary.lines)
    assert client.close_return_authorization(approved) is False
    with pytest.raises(RemoteValidationError):
        client.receive_return(approved, external_id="rcpt-h", lines=[(1, 1, WAREHOUSE)])
    with pytest.raises(RemoteValidationError):
        client.credit_memo(source=("returnAuthorization", approved), external_id="memo-h", body={})


def test_closing_a_partly_received_rma_leaves_the_received_goods_to_refund(client):
    order_id = billed_order(client)
    rma = rma_for_goods(client, order_id, "return-5", approved=True)
    client.receive_return(rma, external_id="rcpt-5", lines=[(1, 1, WAREHOUSE)])
    assert client.close_return_authorization(rma) is True
    assert client.return_authorization_summary(rma).status == "F"  # the received cream is owed
    with pytest.raises(RemoteValidationError):
        client.receive_return(rma, external_id="rcpt-5b", lines=[(1, 1, WAREHOUSE)])
    client.cash_refund(
        source=("returnAuthorization", rma), external_id="refund-5", body=refund_lines({1: 1}, (1, 2))
    )
    assert client.return_authorization_summary(rma).status == "H"


def test_invoiced_order_is_credited_from_the_rma_after_the_receipt(client, sandbox):
    order_id = billed_order(client, "invoice", key="9")
    rma = rma_for_goods(client, order_id, "return-9", approved=True)
    cream_before = on_hand(client, CREAM)
    client.receive_return(rma, external_id="rcpt-9", lines=[(1, 2, WAREHOUSE), (2, 1, WAREHOUSE)])
    assert client.return_authorization_summary(rma).status == "F"
    memo = client.credit_memo(source=("returnAuthorization", rma), external_id="memo-9", body={})
    assert client.credit_memo(source=("returnAuthorization", rma), external_id="memo-9", body={}) == memo
    assert client.return_authorization_summary(rma).status == "G"
    [record] = state(sandbox)["credit_memos"]
    assert record["id"] == memo and record["total"] == "205.22"
    assert on_hand(client, CREAM) == cream_before + 2
    with pytest.raises(RemoteValidationError):  # nothing left to refund
        client.cash_refund(source=("returnAuthorization", rma), external_id="refund-9", body={})


def test_an_rma_refunded_before_its_goods_arrive_can_still_receive_them(client):
    order_id = billed_order(client)
    rma = rma_for_goods(client, order_id, "return-10", approved=True)
    client.cash_refund(source=("returnAuthorization", rma), external_id="refund-10", body={})
    assert client.return_authorization_summary(rma).status == "G"
    cream_before = on_hand(client, CREAM)
    client.receive_return(rma, external_id="rcpt-10", lines=[(1, 2, WAREHOUSE)])
    assert on_hand(client, CREAM) == cream_before + 2
    assert client.return_authorization_summary(rma).status == "G"
    assert client.close_return_authorization(rma) is True  # the cleanser never comes
    assert client.return_authorization_summary(rma).status == "G"


def test_a_closed_rma_frees_its_goods_for_another_return_and_refunds_only_what_came_back(client):
    order_id = billed_order(client)
    first = rma_for_goods(client, order_id, "return-11", approved=True)
    client.receive_return(first, external_id="rcpt-11", lines=[(1, 1, WAREHOUSE)])
    client.close_return_authorization(first)
    with pytest.raises(RemoteValidationError):  # the second cream never came back
        client.cash_refund(
            source=("returnAuthorization", first), external_id="refund-11", body=refund_lines({1: 2}, (1, 2))
        )
    # The unreceived cream and the cleanser can be returned again, the received cream cannot.
    with pytest.raises(RemoteValidationError):
        client.return_authorization(
            source=("salesOrder", order_id),
            external_id="return-12",
            body={"shippingCost": 0, "item": {"items": [{"orderLine": 1, "quantity": 2}]}},
        )
    second = client.return_authorization(
        source=("salesOrder", order_id),
        external_id="return-12",
        body={
            "shippingCost": 0,
            "item": {
                "items": [
                    {"orderLine": 1, "quantity": 1},
                    {"orderLine": 2, "quantity": 1},
                    {"orderLine": 3, "itemReceive": False},
                ]
            },
        },
    )
    assert [line.quantity for line in client.return_authorization_summary(second).lines] == [1, 1]


def test_a_receipt_line_without_a_location_is_refused(client):
    order_id = billed_order(client)
    rma = rma_for_goods(client, order_id, "return-13", approved=True)
    body = {"externalId": "rcpt-13", "item": {"items": [{"orderLine": 1, "quantity": 1}]}}
    with pytest.raises(RemoteValidationError) as refused:
        client.transform("returnAuthorization", rma, "itemReceipt", body)
    assert "Location" in str(refused.value)
    tax_line = {"orderLine": 3, "quantity": 1, "location": {"id": WAREHOUSE}}
    with pytest.raises(RemoteValidationError):  # the tax line of an RMA is not receivable
        client.transform("returnAuthorization", rma, "itemReceipt", {"item": {"items": [tax_line]}})


def test_a_returned_kit_is_restocked_as_its_members(client):
    kit = next(iter(client.suiteql("SELECT id FROM item WHERE itemtype = 'Kit' ORDER BY id")))["id"]
    members = [
        (row["item"], int(Decimal(row["quantity"])))
        for row in client.suiteql(f"SELECT item, quantity FROM itemMember WHERE parentitem = {kit}")
    ]
    body = {
        "entity": {"id": "5000"},
        "orderStatus": {"id": "B"},
        "location": {"id": WAREHOUSE},
        "item": {"items": [{"item": {"id": kit}, "quantity": 1, "rate": 99.0}]},
    }
    order_id = client.upsert("salesOrder", "shopify-order-kit", body)
    client.transform("salesOrder", order_id, "itemFulfillment", {"externalId": "ship-kit"})
    client.transform("salesOrder", order_id, "cashSale", {"externalId": "bill-kit"})
    rma = client.return_authorization(
        source=("salesOrder", order_id), external_id="return-kit", body={"orderStatus": {"id": "B"}}
    )
    before = {item: on_hand(client, item) for item, _ in members}
    client.receive_return(rma, external_id="rcpt-kit", lines=[(1, 1, WAREHOUSE)])
    assert {item: on_hand(client, item) - before[item] for item, _ in members} == dict(members)
