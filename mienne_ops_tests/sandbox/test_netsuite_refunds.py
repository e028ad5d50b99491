"""The NetSuite sandbox's returns and refunds on the wire: one test per rule (netsuite_refunds)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mienne_ops.integrations.netsuite import NetSuiteTbaAuth
from mienne_ops.sandbox.credentials import NETSUITE
from mienne_ops.sandbox.server import SandboxServer
from mienne_ops_tests.support import single_system_server

RECORD = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
CREAM, CLEANSER, TAX = "1001", "1002", "900"

server = single_system_server("netsuite")


@pytest.fixture
def ns(server: SandboxServer) -> Iterator[httpx.Client]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    auth = NetSuiteTbaAuth(**NETSUITE)
    with httpx.Client(base_url=f"{server.url}/netsuite", auth=auth) as client:
        yield client


def account(server: SandboxServer, **settings) -> dict:
    answer = httpx.post(f"{server.url}/_sandbox/netsuite/account", json=settings)
    answer.raise_for_status()
    return answer.json()


def state(server: SandboxServer) -> dict:
    return server.hub.system("netsuite").state()


def error_code(response: httpx.Response) -> str:
    return response.json()["o:errorDetails"][0]["o:errorCode"]


def new_id(response: httpx.Response) -> str:
    assert response.status_code == 204, response.text
    return response.headers["Location"].rsplit("/", 1)[-1]


def transform(ns: httpx.Client, source: str, source_id: str, target: str, body: dict) -> httpx.Response:
    return ns.post(f"{RECORD}/{source}/{source_id}/!transform/{target}", json=body)


def billed_order(ns: httpx.Client, billing: str = "cashSale", key: str = "1") -> tuple[str, str]:
    """A sales order (2 creams at 75.95, 1 cleanser at 53.32, tax 16.42, shipping 5.00) shipped and
    billed in full: (sales order id, cash sale or invoice id). The bill's total is 226.64."""
    body = {
        "entity": {"id": "5000"},
        "orderStatus": {"id": "B"},
        "location": {"id": "1"},
        "shippingCost": 5.0,
        "item": {
            "items": [
                {"item": {"id": CREAM}, "quantity": 2, "rate": 75.95, "amount": 151.9},
                {"item": {"id": CLEANSER}, "quantity": 1, "rate": 53.32, "amount": 53.32},
                {"item": {"id": TAX}, "quantity": 1, "rate": 16.42, "amount": 16.42},
            ]
        },
    }
    order_id = new_id(ns.put(f"{RECORD}/salesOrder/eid:shopify-order-{key}", json=body))
    new_id(transform(ns, "salesOrder", order_id, "itemFulfillment", {"externalId": f"ship-{key}"}))
    bill_id = new_id(transform(ns, "salesOrder", order_id, billing, {"externalId": f"bill-{key}"}))
    return order_id, bill_id


def one_cream(**extra) -> dict:
    """Refund one cream (line 1) and nothing else: lines 2 and 3 are excluded explicitly."""
    return {
        "shippingCost": 0,
        "item": {
            "items": [
                {"orderLine": 1, "quantity": 1, "rate": 75.95, "amount": 75.95},
                {"orderLine": 2, "itemReceive": False},
                {"orderLine": 3, "itemReceive": False},
            ]
        },
        **extra,
    }


def test_the_first_bill_carries_the_orders_shipping_in_its_total(ns, server):
    _, cash_sale = billed_order(ns)
    record = next(c for c in state(server)["cash_sales"] if c["id"] == cash_sale)
    assert record["lines"][2]["sku"] == "SHOPIFY-TAX"
    rows = ns.post(
        SUITEQL,
        json={"q": f"SELECT foreigntotal FROM transaction WHERE id = {cash_sale}"},
        headers={"Prefer": "transient"},
    ).json()["items"]
    assert rows[0]["foreigntotal"] == "226.64"


def test_cash_refund_from_a_cash_sale_takes_only_the_named_lines(ns, server):
    _, cash_sale = billed_order(ns)
    refund = new_id(transform(ns, "cashSale", cash_sale, "cashRefund", one_cream(externalId="rf-1")))
    [record] = state(server)["cash_refunds"]
    assert record["id"] == refund and record["createdFrom"] == cash_sale
    assert record["total"] == "75.95" and record["externalId"] == "rf-1"
    assert [(line["orderLine"], line["quantity"]) for line in record["lines"]] == [(1, 1)]
    read = ns.get(f"{RECORD}/cashRefund/{refund}").json()
    assert read["total"] == 75.95 and read["createdFrom"]["id"] == cash_sale


def test_unnamed_lines_and_shipping_are_taken_with_their_defaults(ns, server):
    _, cash_sale = billed_order(ns)
    new_id(transform(ns, "cashSale", cash_sale, "cashRefund", {"externalId": "rf-all"}))
    [record] = state(server)["cash_refunds"]
    assert record["total"] == "226.64" and record["shippingCost"] == "5.00"


def test_direct_transforms_can_be_refused_like_any_unsupported_transform(ns, server):
    _, cash_sale = billed_order(ns)
    account(server, direct_refund_transforms=False)
    refused = transform(ns, "cashSale", cash_sale, "cashRefund", one_cream())
    assert refused.status_code == 400 and error_code(refused) == "INVALID_CONTENT"
    assert "not supported" in refused.json()["o:errorDetails"][0]["detail"]
    _, invoice = billed_order(ns, "invoice", key="2")
    assert transform(ns, "invoice", invoice, "creditMemo", one_cream()).status_code == 400


def test_more_units_than_left_on_a_line_is_a_user_error(ns):
    _, cash_sale = billed_order(ns)
    new_id(transform(ns, "cashSale", cash_sale, "cashRefund", one_cream(externalId="rf-1")))
    new_id(transform(ns, "cashSale", cash_sale, "cashRefund", one_cream(externalId="rf-2")))
    third = transform(ns, "cashSale", cash_sale, "cashRefund", one_cream(externalId="rf-3"))
    assert third.status_code == 400 and error_code(third) == "USER_ERROR"


def test_a_total_beyond_what_is_left_to_refund_is_a_user_error(ns):
    _, cash_sale = billed_order(ns)
    tax_only = {
        "shippingCost": 0,
        "item": {
            "items": [
                {"orderLine": 1, "itemReceive": False},
                {"orderLine": 2, "itemReceive": False},
                {"orderLine": 3, "quantity": 1, "amount": 16.42},
                # an added adjustment line: bigger than anything left on the cash sale
                {"item": {"id": "907"}, "quantity": 1, "amount": 300},
            ]
        },
    }
    refused = transform(ns, "cashSale", cash_sale, "cashRefund", tax_only)
    assert refused.status_code == 400 and error_code(refused) == "USER_ERROR"
    assert "exceeds" in refused.json()["o:errorDetails"][0]["detail"]


def test_a_lines_amount_beyond_what_is_left_of_it_is_a_user_error(ns):
    _, cash_sale = billed_order(ns)
    body = one_cream()
    body["item"]["items"][0] = {"orderLine": 1, "quantity": 1, "amount": 200}
    refused = transform(ns, "cashSale", cash_sale, "cashRefund", body)
    assert refused.status_code == 400 and error_code(refused) == "USER_ERROR"


def test_amount_must_be_rate_times_quantity(ns):
    _, cash_sale = billed_order(ns)
    body = one_cream()
    body["item"]["items"][0] = {"orderLine": 1, "quantity": 1, "rate": 70, "amount": 75.95}
    refused = transform(ns, "cashSale", cash_sale, "cashRefund", body)
    assert refused.status_code == 400 and error_code(refused) == "INVALID_CONTENT"


def test_shipping_refunded_at_most_once(ns):
    _, cash_sale = billed_order(ns)
    new_id(transform(ns, "cashSale", cash_sale, "cashRefund", one_cream(externalId="a", shippingCost=5)))
    again = transform(ns, "cashSale", cash_sale, "cashRefund", one_cream(externalId="b", shippingCost=5))
    assert again.status_code == 400 and error_code(again) == "USER_ERROR"


def test_without_a_shipping_cost_field_the_header_is_dropped_or_refused(ns, server):
    _, cash_sale = billed_order(ns)
    account(server, refund_shipping_cost=False)
    strict = ns.post(
        f"{RECORD}/cashSale/{cash_sale}/!transform/cashRefund",
        json=one_cream(externalId="a", shippingCost=5),
        headers={"X-NetSuite-PropertyNameValidation": "Error"},
    )
    assert strict.status_code == 400 and error_code(strict) == "INVALID_CONTENT"
    new_id(transform(ns, "cashSale", cash_sale, "cashRefund", one_cream(externalId="b", shippingCost=5)))
    [record] = state(server)["cash_refunds"]
    assert record["total"] == "75.95" and record["shippingCost"] is None


def test_external_id_is_unique_per_record_type(ns):
    _, cash_sale = billed_order(ns)
    new_id(transform(ns, "cashSale", cash_sale, "cashRefund", one_cream(externalId="rf-1")))
    dup = transform(ns, "cashSale", cash_sale, "cashRefund", one_cream(externalId="rf-1"))
    assert dup.status_code == 400 and error_code(dup) == "DUP_RCRD"


def test_credit_memo_from_invoice_then_customer_refund_applies_it(ns, server):
    _, invoice = billed_order(ns, "invoice")
    memo = new_id(transform(ns, "invoice", invoice, "creditMemo", one_cream(externalId="cm-1")))
    assert ns.get(f"{RECORD}/creditMemo/{memo}").json()["unapplied"] == 75.95

    def pay(amount: float, external_id: str) -> httpx.Response:
        apply = {"items": [{"doc": {"id": memo}, "apply": True, "amount": amount}]}
        body = {"externalId": external_id, "customer": {"id": "5000"}, "apply": apply}
        return ns.post(f"{RECORD}/customerRefund", json=body)

    too_much = pay(80, "crf-0")
    assert too_much.status_code == 400 and error_code(too_much) == "USER_ERROR"
    new_id(pay(50, "crf-1"))
    assert error_code(pay(30, "crf-2")) == "USER_ERROR"  # 25.95 left
    new_id(pay(25.95, "crf-3"))
    memos = state(server)["credit_memos"]
    assert memos[0]["status"] == "B"  # fully applied
    assert [r["total"] for r in state(server)["customer_refunds"]] == ["50.00", "25.95"]
    assert pay(1, "crf-3").status_code == 400  # DUP_RCRD


def test_customer_refund_applies_only_the_customers_credit_memos(ns):
    _, invoice = billed_order(ns, "invoice")
    memo = new_id(transform(ns, "invoice", invoice, "creditMemo", one_cream()))
    apply = {"items": [{"doc": {"id": memo}, "apply": True, "amount": 10}]}
    other = ns.post(f"{RECORD}/customerRefund", json={"customer": {"id": "5002"}, "apply": apply})
    assert other.status_code == 400 and error_code(other) == "INVALID_CONTENT"


def test_rma_route_approve_then_refund_without_receipt(ns, server):
    order_id, _ = billed_order(ns)
    rma = new_id(transform(ns, "salesOrder", order_id, "returnAuthorization", one_cream(externalId="rma-1")))
    pending = transform(ns, "returnAuthorization", rma, "cashRefund", {"externalId": "rf-1"})
    assert pending.status_code == 400 and "pending approval" in pending.text
    assert (
        ns.patch(f"{RECORD}/returnAuthorization/{rma}", json={"orderStatus": {"id": "B"}}).status_code == 204
    )
    new_id(transform(ns, "returnAuthorization", rma, "cashRefund", {"externalId": "rf-1"}))
    [record] = state(server)["return_authorizations"]
    assert record["status"] == "G" and record["total"] == "75.95"
    assert state(server)["cash_refunds"][0]["total"] == "75.95"
    done = transform(ns, "returnAuthorization", rma, "creditMemo", {"externalId": "cm-1"})
    assert done.status_code == 400 and error_code(done) == "USER_ERROR"


def test_rma_from_an_order_covers_only_what_was_billed(ns):
    body = {
        "entity": {"id": "5000"},
        "orderStatus": {"id": "B"},
        "item": {"items": [{"item": {"id": CREAM}, "quantity": 2, "rate": 75.95, "location": {"id": "1"}}]},
    }
    order_id = new_id(ns.put(f"{RECORD}/salesOrder/eid:unbilled", json=body))
    refused = transform(ns, "salesOrder", order_id, "returnAuthorization", {"orderStatus": {"id": "B"}})
    assert refused.status_code == 400 and error_code(refused) == "USER_ERROR"


def test_refund_records_are_visible_to_suiteql_with_their_type_codes(ns):
    order_id, cash_sale = billed_order(ns)
    new_id(transform(ns, "cashSale", cash_sale, "cashRefund", one_cream(externalId="rf-1")))
    rma_body = one_cream(externalId="rma-1", orderStatus={"id": "B"})
    new_id(transform(ns, "salesOrder", order_id, "returnAuthorization", rma_body))
    rows = ns.post(
        SUITEQL,
        json={
            "q": "SELECT type, externalid, foreigntotal, BUILTIN.DF(status) AS status FROM transaction "
            "WHERE type IN ('CashRfnd', 'RtnAuth') ORDER BY id"
        },
        headers={"Prefer": "transient"},
    ).json()["items"]
    assert [(r["type"], r["externalid"], r["foreigntotal"]) for r in rows] == [
        ("CashRfnd", "rf-1", "75.95"),
        ("RtnAuth", "rma-1", "75.95"),
    ]
    assert rows[1]["status"] == "Pending Receipt"


def test_closing_every_line_closes_the_order_and_it_can_no_longer_be_fulfilled(ns, server):
    body = {
        "entity": {"id": "5000"},
        "orderStatus": {"id": "B"},
        "item": {"items": [{"item": {"id": CREAM}, "quantity": 2, "rate": 75.95, "location": {"id": "1"}}]},
    }
    order_id = new_id(ns.put(f"{RECORD}/salesOrder/eid:to-close", json=body))
    closed = ns.patch(
        f"{RECORD}/salesOrder/{order_id}", json={"item": {"items": [{"line": 1, "isClosed": True}]}}
    )
    assert closed.status_code == 204
    assert state(server)["sales_orders"][0]["status"] == "H"
    for target in ("itemFulfillment", "cashSale", "invoice"):
        refused = transform(ns, "salesOrder", order_id, target, {})
        assert refused.status_code == 400 and error_code(refused) == "USER_ERROR"
