"""The NetSuite client's cancellation and refund calls against the sandbox over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest

from mienne_ops.domain.refund_books import BookedRefundLine, RefundBreakdown, cash_refund_body
from mienne_ops.errors import RemoteValidationError
from mienne_ops.integrations.http import HttpCore, RetryPolicy
from mienne_ops.integrations.netsuite import (
    NetSuiteClient,
    NetSuiteTbaAuth,
    client_for,
    describe_netsuite_error,
)
from mienne_ops.sandbox.credentials import NETSUITE
from mienne_ops.sandbox.server import SandboxServer
from mienne_ops_tests.support import single_system_server

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)
CREAM, CLEANSER, TAX = "1001", "1002", "900"

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


class LoseTheAnswer(httpx.BaseTransport):
    """Forwards every request; the first one whose path contains ``marker`` reaches the server and
    its answer is lost on the way back (a read timeout), as after a network cut."""

    def __init__(self, marker: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.marker = marker
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        if self.marker in request.url.path and not self.lost:
            self.lost += 1
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def state(sandbox: SandboxServer) -> dict:
    return sandbox.hub.system("netsuite").state()


def billed_order(client: NetSuiteClient, billing: str = "cashSale", key: str = "1") -> tuple[str, str]:
    body = {
        "entity": {"id": "5000"},
        "orderStatus": {"id": "B"},
        "location": {"id": "1"},
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
    return order_id, client.transform("salesOrder", order_id, billing, {"externalId": f"bill-{key}"})


def one_cream_refund(client: NetSuiteClient, record_type: str, record_id: str, external_id: str) -> dict:
    """The body refunding one cream plus its 8.21 tax, built from the source's lines."""
    lines = client.get(record_type, record_id, expand=True)["item"]["items"]
    breakdown = RefundBreakdown(
        lines=(BookedRefundLine("MN-CREAM-002", 1, Decimal("75.95")),),
        shipping=Decimal("0"),
        tax=Decimal("8.21"),
        total=Decimal("84.16"),
        memo="Shopify refund",
    )
    return cash_refund_body(
        breakdown,
        source_lines=lines,
        tax_item_id=int(TAX),
        shipping_item_id=None,
        shipping_cost_field="shippingCost",
        external_id=external_id,
        adjustment_item_id=907,
    )


def test_close_sales_order_closes_open_lines_once(client, sandbox):
    body = {
        "entity": {"id": "5000"},
        "orderStatus": {"id": "B"},
        "item": {"items": [{"item": {"id": CREAM}, "quantity": 1, "rate": 75.95, "location": {"id": "1"}}]},
    }
    order_id = client.upsert("salesOrder", "shopify-order-5", body)
    assert client.close_sales_order(order_id) is True
    assert state(sandbox)["sales_orders"][0]["status"] == "H"
    assert client.close_sales_order(order_id) is False


def test_cash_refund_is_written_once_even_when_the_answer_is_lost(sandbox):
    setup = client_for(NETSUITE, f"{sandbox.url}/netsuite", retry=FAST)
    _, cash_sale = billed_order(setup)
    body = one_cream_refund(setup, "cashSale", cash_sale, "shopify-refund-1")
    transport = LoseTheAnswer("!transform/cashRefund")
    core = HttpCore(
        system="netsuite",
        base_url=f"{sandbox.url}/netsuite",
        headers={"Accept": "application/json"},
        auth=NetSuiteTbaAuth(**NETSUITE),
        retry=FAST,
        transport=transport,
        describe_error=describe_netsuite_error,
    )
    client = NetSuiteClient(core)
    first = client.cash_refund(source=("cashSale", cash_sale), external_id="shopify-refund-1", body=body)
    again = client.cash_refund(source=("cashSale", cash_sale), external_id="shopify-refund-1", body=body)
    assert transport.lost == 1 and first == again
    [refund] = state(sandbox)["cash_refunds"]
    assert refund["id"] == first and refund["total"] == "84.16"
    client.close()
    setup.close()


def test_a_refused_duplicate_resolves_to_the_existing_record(client, sandbox, monkeypatch):
    _, cash_sale = billed_order(client)
    body = one_cream_refund(client, "cashSale", cash_sale, "shopify-refund-2")
    first = client.cash_refund(source=("cashSale", cash_sale), external_id="shopify-refund-2", body=body)
    # A concurrent writer won between our look-up and our write: the look-up misses once.
    real_find = client.find_by_external_id
    misses = iter([None])
    monkeypatch.setattr(client, "find_by_external_id", lambda *a: next(misses, None) or real_find(*a))
    assert (
        client.cash_refund(source=("cashSale", cash_sale), external_id="shopify-refund-2", body=body) == first
    )
    assert len(state(sandbox)["cash_refunds"]) == 1


def test_a_real_refusal_still_raises(client):
    _, cash_sale = billed_order(client)
    body = one_cream_refund(client, "cashSale", cash_sale, "shopify-refund-3")
    body["item"]["items"][0]["quantity"] = 5  # more creams than were sold
    with pytest.raises(RemoteValidationError):
        client.cash_refund(source=("cashSale", cash_sale), external_id="shopify-refund-3", body=body)


def test_credit_memo_then_customer_refund_pays_it_out_once(client, sandbox):
    _, invoice = billed_order(client, "invoice")
    body = one_cream_refund(client, "invoice", invoice, "shopify-refund-4")
    memo = client.credit_memo(source=("invoice", invoice), external_id="shopify-refund-4", body=body)
    payout = dict(external_id="payout-4", customer_id="5000", credit_memo_id=memo, amount=Decimal("84.16"))
    refund = client.customer_refund(**payout, payment_method_id="5")
    assert client.customer_refund(**payout) == refund
    [record] = state(sandbox)["customer_refunds"]
    assert record["apply"] == [{"doc": memo, "amount": "84.16"}]
    assert state(sandbox)["credit_memos"][0]["status"] == "B"


def test_rma_route_gives_the_same_refund_where_direct_transforms_are_refused(client, sandbox):
    order_id, cash_sale = billed_order(client)
    account = f"{sandbox.url}/_sandbox/netsuite/account"
    httpx.post(account, json={"direct_refund_transforms": False}).raise_for_status()
    direct = one_cream_refund(client, "cashSale", cash_sale, "shopify-refund-6")
    with pytest.raises(RemoteValidationError):
        client.cash_refund(source=("cashSale", cash_sale), external_id="shopify-refund-6", body=direct)
    rma_body = {**one_cream_refund(client, "salesOrder", order_id, "rma-6"), "orderStatus": {"id": "B"}}
    rma = client.return_authorization(source=("salesOrder", order_id), external_id="rma-6", body=rma_body)
    body = one_cream_refund(client, "returnAuthorization", rma, "shopify-refund-6")
    client.cash_refund(source=("returnAuthorization", rma), external_id="shopify-refund-6", body=body)
    assert state(sandbox)["cash_refunds"][0]["total"] == "84.16"
    assert state(sandbox)["return_authorizations"][0]["status"] == "G"


def test_refunds_between_lists_cash_and_customer_refunds_of_the_window(client, sandbox):
    _, cash_sale = billed_order(client, key="7")
    body = one_cream_refund(client, "cashSale", cash_sale, "shopify-refund-7")
    cash_refund = client.cash_refund(
        source=("cashSale", cash_sale),
        external_id="shopify-refund-7",
        body={**body, "tranDate": "2026-12-05"},
    )
    _, invoice = billed_order(client, "invoice", key="8")
    memo_body = {**one_cream_refund(client, "invoice", invoice, "cm-8"), "tranDate": "2026-11-30"}
    memo = client.credit_memo(source=("invoice", invoice), external_id="cm-8", body=memo_body)
    payout = client.customer_refund(
        external_id="payout-8", customer_id="5000", credit_memo_id=memo, amount=Decimal("10.50")
    )
    httpx.post(f"{sandbox.url}/_sandbox/netsuite/preferences", json={"date_format": "D/M/YYYY"})
    window = client.refunds_between(date(2026, 12, 5), date(2026, 12, 6))
    assert window == [
        {
            "id": cash_refund,
            "type": "CashRfnd",
            "externalId": "shopify-refund-7",
            "tranDate": "2026-12-05",
            "total": "84.16",
            "memo": "Shopify refund",
        }
    ]
    today = sandbox.hub.world.now().date()  # the payout is dated by the sandbox clock
    later = client.refunds_between(today, today + timedelta(days=1))
    assert [(row["id"], row["type"], row["total"]) for row in later] == [(payout, "CustRfnd", "10.50")]
