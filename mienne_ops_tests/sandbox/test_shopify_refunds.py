"""The Shopify fake's money rules over real HTTP: transactions, suggestedRefund, refundCreate
(@idempotent), orderCancel (2026-04), the admin refund route and the refund webhooks."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.catalog import build_catalog
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops.sandbox.server import SandboxServer
from mienne_ops_tests.support import single_system_server

TOKEN = {"X-Shopify-Access-Token": credentials.SHOPIFY["access_token"]}

server = single_system_server("shopify")


@pytest.fixture
def sandbox(server) -> Iterator[SandboxServer]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server
    httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True})


def gql(sandbox, query: str, variables: dict | None = None, version: str = "2026-04") -> dict:
    url = f"{sandbox.url}/shopify/admin/api/{version}/graphql.json"
    return httpx.post(url, json={"query": query, "variables": variables or {}}, headers=TOKEN).json()


def data(sandbox, query: str, variables: dict | None = None) -> dict:
    body = gql(sandbox, query, variables)
    assert "errors" not in body, body["errors"]
    return body["data"]


ORDER = {
    "line_items": [
        {
            "sku": "MN-SERUM-001",
            "quantity": 3,
            "price": "10.00",
            "discount_allocations": [{"amount": "1.00"}],
            "tax_lines": [{"title": "Tax", "price": "2.00", "rate": 0.08}],
        },
        {"sku": "MN-CREAM-002", "quantity": 1, "price": "20.00"},
    ],
    "shipping_lines": [{"title": "Ground", "price": "6.00", "tax_lines": [{"price": "0.60", "rate": 0.1}]}],
    "total_discounts": "1.00",
    "total_tax": "2.60",
    "total_price": "57.60",  # 30 - 1 + 20 + 6 + 2.60
}


def inject(sandbox, **changes) -> dict:
    response = httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json={**ORDER, **changes})
    assert response.status_code == 201, response.text
    return response.json()


MONEY = """query($id: ID!) { order(id: $id) {
  displayFinancialStatus cancelledAt
  totalRefundedSet { shopMoney { amount } }
  lineItems(first: 10) { nodes { id sku quantity currentQuantity refundableQuantity unfulfilledQuantity } }
  transactions { id kind status gateway amountSet { shopMoney { amount } } parentTransaction { id } }
  refunds { id note totalRefundedSet { shopMoney { amount } }
    refundLineItems(first: 10) { nodes { quantity restockType subtotalSet { shopMoney { amount } } } } }
} }"""

SUGGEST = """query($id: ID!, $lines: [RefundLineItemInput!], $shipping: Boolean, $amount: Money) {
  order(id: $id) {
  suggestedRefund(refundLineItems: $lines, refundShipping: $shipping, shippingAmount: $amount) {
    amountSet { shopMoney { amount } } subtotalSet { shopMoney { amount } }
    totalTaxSet { shopMoney { amount } }
    maximumRefundableSet { shopMoney { amount } }
    shipping { amountSet { shopMoney { amount } } taxSet { shopMoney { amount } }
               maximumRefundableSet { shopMoney { amount } } }
    refundLineItems { quantity subtotalSet { shopMoney { amount } } totalTaxSet { shopMoney { amount } } }
    suggestedTransactions { kind gateway amountSet { shopMoney { amount } } parentTransaction { id } }
} } }"""

REFUND = """mutation($input: RefundInput!, $key: String!) {
  refundCreate(input: $input) @idempotent(key: $key) {
    refund { id totalRefundedSet { shopMoney { amount } } transactions(first: 5) { nodes { kind amountSet {
      shopMoney { amount } } } } }
    userErrors { field message }
} }"""

CANCEL = """mutation($id: ID!, $refund: Boolean, $restock: Boolean!) {
  orderCancel(orderId: $id, reason: CUSTOMER, restock: $restock,
              refundMethod: {originalPaymentMethodsRefund: $refund}, staffNote: "asked by phone") {
    job { id done } orderCancelUserErrors { code field message } } }"""


def money(sandbox, order: dict) -> dict:
    return data(sandbox, MONEY, {"id": order["admin_graphql_api_id"]})["order"]


def amount(bag: dict) -> str:
    return bag["shopMoney"]["amount"]


def suggest(sandbox, order: dict, lines: list[tuple[str, int]], **args) -> dict:
    variables = {
        "id": order["admin_graphql_api_id"],
        "lines": [{"lineItemId": i, "quantity": q} for i, q in lines],
    }
    return data(sandbox, SUGGEST, {**variables, **args})["order"]["suggestedRefund"]


def refund_input(order: dict, suggested: dict, lines: list[tuple[str, int]], **extra) -> dict:
    return {
        "orderId": order["admin_graphql_api_id"],
        "refundLineItems": [{"lineItemId": i, "quantity": q} for i, q in lines],
        "transactions": [
            {
                "orderId": order["admin_graphql_api_id"],
                "parentId": t["parentTransaction"]["id"],
                "gateway": t["gateway"],
                "kind": "REFUND",
                "amount": amount(t["amountSet"]),
            }
            for t in suggested["suggestedTransactions"]
        ],
        **extra,
    }


def create(sandbox, input: dict, key: str = "key-1") -> dict:
    return data(sandbox, REFUND, {"input": input, "key": key})["refundCreate"]


# -- transactions ---------------------------------------------------------------------------------
def test_every_paid_order_has_a_successful_sale_for_its_total(sandbox):
    paid = money(sandbox, inject(sandbox))
    assert [(t["kind"], t["status"], t["gateway"], amount(t["amountSet"])) for t in paid["transactions"]] == [
        ("SALE", "SUCCESS", "shopify_payments", "57.60")
    ]
    authorized = money(sandbox, inject(sandbox, financial_status="authorized"))
    assert [t["kind"] for t in authorized["transactions"]] == ["AUTHORIZATION"]
    assert money(sandbox, inject(sandbox, financial_status="pending"))["transactions"] == []
    # The order factory (traffic, e2e) pays some orders partly with a gift card: two sales, one total.
    factory = build_order(build_catalog(), random.Random(3), gift_card=True)
    created = httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=factory).json()
    sales = money(sandbox, created)["transactions"]
    assert [t["gateway"] for t in sales] == ["gift_card", "shopify_payments"]
    assert sum(float(amount(t["amountSet"])) for t in sales) == pytest.approx(float(factory["total_price"]))


def test_an_order_stored_before_transactions_existed_gets_them_on_read(sandbox):
    order = inject(sandbox)
    stored = sandbox.world.get("shopify", "order", order["id"])
    del stored["_transactions"], stored["refunds"]
    sandbox.world.put("shopify", "order", order["id"], stored)
    read = money(sandbox, order)
    assert [(t["kind"], amount(t["amountSet"])) for t in read["transactions"]] == [("SALE", "57.60")]
    assert read["refunds"] == [] and money(sandbox, order)["transactions"] == read["transactions"]


# -- suggestedRefund ------------------------------------------------------------------------------
def test_suggested_refund_prices_lines_from_discounts_and_tax_and_persists_nothing(sandbox):
    order = inject(sandbox)
    serum = money(sandbox, order)["lineItems"]["nodes"][0]
    one = suggest(sandbox, order, [(serum["id"], 1)])
    # (3 × 10 − 1) / 3 = 9.67; tax 2.00 / 3 = 0.67.
    assert [
        (x["quantity"], amount(x["subtotalSet"]), amount(x["totalTaxSet"])) for x in one["refundLineItems"]
    ] == [(1, "9.67", "0.67")]
    assert amount(one["amountSet"]) == "10.34" and amount(one["maximumRefundableSet"]) == "57.60"
    assert [(t["kind"], t["gateway"], amount(t["amountSet"])) for t in one["suggestedTransactions"]] == [
        ("SUGGESTED_REFUND", "shopify_payments", "10.34")
    ]
    assert money(sandbox, order)["refunds"] == []
    # Refunded one by one, the last unit takes what is left: the parts add up to the line.
    parts = []
    for key in ("a", "b", "c"):
        suggested = suggest(sandbox, order, [(serum["id"], 1)])
        parts.append(amount(suggested["refundLineItems"][0]["subtotalSet"]))
        assert create(sandbox, refund_input(order, suggested, [(serum["id"], 1)]), key)["userErrors"] == []
    assert parts == ["9.67", "9.67", "9.66"]


def test_shipping_refundable_is_what_was_charged_less_what_was_refunded(sandbox):
    order = inject(sandbox)
    part = suggest(sandbox, order, [], amount="2.00")
    assert amount(part["shipping"]["amountSet"]) == "2.00" and amount(part["shipping"]["taxSet"]) == "0.20"
    assert amount(part["shipping"]["maximumRefundableSet"]) == "6.00"
    assert create(sandbox, refund_input(order, part, [], shipping={"amount": "2.00"}))["userErrors"] == []
    rest = suggest(sandbox, order, [], shipping=True)
    assert amount(rest["shipping"]["maximumRefundableSet"]) == "4.00"
    assert amount(rest["shipping"]["amountSet"]) == "4.00" and amount(rest["shipping"]["taxSet"]) == "0.40"
    too_much = create(sandbox, refund_input(order, rest, [], shipping={"amount": "4.01"}), "key-2")
    assert too_much["refund"] is None and too_much["userErrors"][0]["field"] == ["shipping", "amount"]


# -- refundCreate ---------------------------------------------------------------------------------
def test_refund_create_needs_the_idempotent_directive_from_2026_04(sandbox):
    order = inject(sandbox)
    bare = REFUND.replace(" @idempotent(key: $key)", "").replace(", $key: String!", "")
    body = gql(sandbox, bare, {"input": {"orderId": order["admin_graphql_api_id"]}})
    assert "data" not in body and "@idempotent" in body["errors"][0]["message"]
    older = gql(sandbox, bare, {"input": {"orderId": order["admin_graphql_api_id"]}}, version="2026-01")
    assert "errors" not in older


def test_the_same_key_replays_and_another_key_is_another_refund(sandbox):
    order = inject(sandbox)
    serum = money(sandbox, order)["lineItems"]["nodes"][0]
    suggested = suggest(sandbox, order, [(serum["id"], 1)])
    request = refund_input(order, suggested, [(serum["id"], 1)])
    first = create(sandbox, request, "same")
    assert create(sandbox, request, "same") == first
    assert len(money(sandbox, order)["refunds"]) == 1
    mismatch = gql(sandbox, REFUND, {"input": {**request, "note": "changed"}, "key": "same"})
    assert mismatch["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"
    second = create(sandbox, request, "other")
    assert second["userErrors"] == [] and second["refund"]["id"] != first["refund"]["id"]
    assert len(money(sandbox, order)["refunds"]) == 2


def test_a_refund_above_what_is_refundable_is_refused_unless_over_refunding_is_allowed(sandbox):
    order = inject(sandbox)
    state = money(sandbox, order)
    serum, sale = state["lineItems"]["nodes"][0], state["transactions"][0]
    too_many = create(sandbox, {"orderId": order["admin_graphql_api_id"],
                                "refundLineItems": [{"lineItemId": serum["id"], "quantity": 4}]})  # fmt: skip
    assert too_many["refund"] is None and too_many["userErrors"][0]["field"][-1] == "quantity"
    over = {
        "orderId": order["admin_graphql_api_id"],
        "transactions": [
            {"orderId": order["admin_graphql_api_id"], "parentId": sale["id"], "gateway": "shopify_payments",
             "kind": "REFUND", "amount": "57.61"}
        ],
    }  # fmt: skip
    refused = create(sandbox, over, "over-1")
    assert refused["refund"] is None and "exceeds" in refused["userErrors"][0]["message"]
    assert money(sandbox, order)["refunds"] == []
    allowed = create(sandbox, {**over, "allowOverRefunding": True}, "over-2")
    assert allowed["userErrors"] == [] and amount(allowed["refund"]["totalRefundedSet"]) == "57.61"
    assert money(sandbox, order)["displayFinancialStatus"] == "REFUNDED"


def test_financial_status_follows_the_money_refunded(sandbox):
    order = inject(sandbox)
    cream = money(sandbox, order)["lineItems"]["nodes"][1]
    part = suggest(sandbox, order, [(cream["id"], 1)])
    create(sandbox, refund_input(order, part, [(cream["id"], 1)]), "p")
    after = money(sandbox, order)
    assert after["displayFinancialStatus"] == "PARTIALLY_REFUNDED"
    assert amount(after["totalRefundedSet"]) == "20.00"
    line = after["lineItems"]["nodes"][1]
    quantities = ("quantity", "currentQuantity", "refundableQuantity", "unfulfilledQuantity")
    assert [line[name] for name in quantities] == [1, 0, 0, 0]
    serum = after["lineItems"]["nodes"][0]
    rest = suggest(sandbox, order, [(serum["id"], 3)], shipping=True)
    create(sandbox, refund_input(order, rest, [(serum["id"], 3)], shipping={"fullRefund": True}), "r")
    final = money(sandbox, order)
    assert final["displayFinancialStatus"] == "REFUNDED" and amount(final["totalRefundedSet"]) == "57.60"


def available(sandbox, sku: str) -> int:
    levels = httpx.get(f"{sandbox.url}/_sandbox/shopify/inventory", params={"sku": sku}).json()["levels"]
    return sum(level["available"] for level in levels)


def test_restock_puts_unfulfilled_units_back_and_cancel_restock_refuses_shipped_units(sandbox):
    before = available(sandbox, "MN-SERUM-001")
    order = inject(sandbox)
    assert available(sandbox, "MN-SERUM-001") == before - 3
    serum = money(sandbox, order)["lineItems"]["nodes"][0]
    suggested = suggest(sandbox, order, [(serum["id"], 2)])
    request = refund_input(order, suggested, [(serum["id"], 2)])
    request["refundLineItems"][0]["restockType"] = "CANCEL"
    assert create(sandbox, request)["userErrors"] == []
    assert available(sandbox, "MN-SERUM-001") == before - 1
    lines = [
        {**line, "fulfillable_quantity": 0, "fulfillment_status": "fulfilled"} for line in ORDER["line_items"]
    ]
    shipped = inject(sandbox, fulfillment_status="fulfilled", line_items=lines)
    line = money(sandbox, shipped)["lineItems"]["nodes"][0]
    refused = create(sandbox, {"orderId": shipped["admin_graphql_api_id"], "refundLineItems": [
        {"lineItemId": line["id"], "quantity": 1, "restockType": "CANCEL"}]}, "shipped")  # fmt: skip
    assert refused["refund"] is None and refused["userErrors"][0]["field"][-1] == "restockType"


# -- webhooks -------------------------------------------------------------------------------------
@pytest.fixture
def receiver(sandbox) -> Iterator[list[tuple[str, dict]]]:
    received: list[tuple[str, dict]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["X-Shopify-Topic"], json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    for topic in ("REFUNDS_CREATE", "ORDERS_UPDATED", "ORDERS_CANCELLED"):
        subscribe = f"""mutation {{ webhookSubscriptionCreate(topic: {topic},
          webhookSubscription: {{uri: "{uri}", format: JSON}}) {{ userErrors {{ message }} }} }}"""
        assert data(sandbox, subscribe)["webhookSubscriptionCreate"]["userErrors"] == []
    yield received
    httpd.shutdown()


def wait_for(received: list, topic: str, count: int = 1) -> list[dict]:
    deadline = time.monotonic() + 60  # a guard against a hang on a loaded box, not a timing assertion
    while time.monotonic() < deadline:
        found = [body for name, body in received if name == topic]
        if len(found) >= count:
            return found
        time.sleep(0.02)
    raise AssertionError(f"no {topic} webhook; got {[name for name, _ in received]}")


def test_refund_create_sends_refunds_create_in_the_rest_shape_and_orders_updated(sandbox, receiver):
    order = inject(sandbox)
    cream = money(sandbox, order)["lineItems"]["nodes"][1]
    suggested = suggest(sandbox, order, [(cream["id"], 1)])
    created = create(sandbox, refund_input(order, suggested, [(cream["id"], 1)], note="damaged"))
    payload = wait_for(receiver, "refunds/create")[0]
    assert payload["order_id"] == order["id"] and payload["admin_graphql_api_id"] == created["refund"]["id"]
    assert payload["note"] == "damaged" and payload["restock"] is False
    assert {
        "id",
        "created_at",
        "processed_at",
        "refund_line_items",
        "transactions",
        "order_adjustments",
    } <= set(payload)
    line = payload["refund_line_items"][0]
    assert (line["quantity"], line["subtotal"], line["restock_type"], line["line_item"]["sku"]) == (
        1, "20.00", "no_restock", "MN-CREAM-002",
    )  # fmt: skip
    assert line["subtotal_set"]["shop_money"] == {"amount": "20.00", "currency_code": "USD"}
    tx = payload["transactions"][0]
    assert (tx["kind"], tx["status"], tx["amount"], tx["order_id"]) == (
        "refund",
        "success",
        "20.00",
        order["id"],
    )
    assert isinstance(tx["parent_id"], int)
    updated = wait_for(receiver, "orders/updated", 2)[-1]  # after orders/create's orders/updated
    assert updated["id"] == order["id"] and updated["financial_status"] == "partially_refunded"
    assert updated["refunds"][0]["id"] == payload["id"]


# -- orderCancel ----------------------------------------------------------------------------------
def test_order_cancel_2026_04_refunds_restocks_and_runs_as_a_job(sandbox, receiver):
    before = available(sandbox, "MN-SERUM-001")
    order = inject(sandbox)
    answer = data(sandbox, CANCEL, {"id": order["admin_graphql_api_id"], "refund": True, "restock": True})
    job = answer["orderCancel"]["job"]
    assert answer["orderCancel"]["orderCancelUserErrors"] == [] and job["done"] is False
    polled = data(sandbox, "query($id: ID!) { job(id: $id) { id done } }", {"id": job["id"]})["job"]
    assert polled == {"id": job["id"], "done": True}
    state = money(sandbox, order)
    assert state["cancelledAt"] and state["displayFinancialStatus"] == "REFUNDED"
    assert amount(state["totalRefundedSet"]) == "57.60"
    assert [t["kind"] for t in state["transactions"]] == ["SALE", "REFUND"]
    assert state["transactions"][1]["parentTransaction"]["id"] == state["transactions"][0]["id"]
    assert {x["restockType"] for x in state["refunds"][0]["refundLineItems"]["nodes"]} == {"CANCEL"}
    assert available(sandbox, "MN-SERUM-001") == before
    assert wait_for(receiver, "refunds/create")[0]["order_id"] == order["id"]
    cancelled = wait_for(receiver, "orders/cancelled")[0]
    assert cancelled["cancel_reason"] == "customer" and cancelled["financial_status"] == "refunded"
    assert sandbox.world.get("shopify", "cancel_staff_note", order["id"])["note"] == "asked by phone"
    again = data(sandbox, CANCEL, {"id": order["admin_graphql_api_id"], "refund": True, "restock": True})
    assert again["orderCancel"]["job"] is None
    assert again["orderCancel"]["orderCancelUserErrors"][0]["code"] == "INVALID"


def test_cancel_without_refund_keeps_the_money_and_unpaid_orders_are_voided(sandbox):
    httpx.post(f"{sandbox.url}/_sandbox/shopify/jobs", json={"cancel_job_requests": 0}).raise_for_status()
    kept = inject(sandbox)
    answer = data(sandbox, CANCEL, {"id": kept["admin_graphql_api_id"], "refund": False, "restock": False})
    assert answer["orderCancel"]["job"]["done"] is True
    assert money(sandbox, kept)["displayFinancialStatus"] == "PAID"
    authorized = inject(sandbox, financial_status="authorized")
    data(sandbox, CANCEL, {"id": authorized["admin_graphql_api_id"], "refund": True, "restock": False})
    state = money(sandbox, authorized)
    assert state["displayFinancialStatus"] == "VOIDED"
    assert [t["kind"] for t in state["transactions"]] == ["AUTHORIZATION", "VOID"]
    pending = inject(sandbox, financial_status="pending")
    data(sandbox, CANCEL, {"id": pending["admin_graphql_api_id"], "refund": True, "restock": False})
    assert money(sandbox, pending)["displayFinancialStatus"] == "VOIDED"


def test_an_order_with_fulfilled_items_cannot_be_cancelled(sandbox):
    order = inject(sandbox, fulfillment_status="fulfilled")
    answer = data(sandbox, CANCEL, {"id": order["admin_graphql_api_id"], "refund": True, "restock": False})
    assert answer["orderCancel"]["orderCancelUserErrors"][0]["code"] == "INVALID"
    assert money(sandbox, order)["cancelledAt"] is None


# -- the merchant's admin refund ------------------------------------------------------------------
def test_admin_refund_route_books_a_refund_like_refund_create(sandbox, receiver):
    order = inject(sandbox)
    url = f"{sandbox.url}/_sandbox/shopify/orders/{order['id']}/refunds"
    answer = httpx.post(
        url, json={"lines": [{"sku": "MN-SERUM-001", "quantity": 1}], "shipping": "6.00", "note": "admin"}
    )
    assert answer.status_code == 201, answer.text
    refund = answer.json()["refund"]
    assert refund["note"] == "admin" and refund["order_id"] == order["id"]
    # 9.67 + 0.67 tax + 6.00 shipping + 0.60 its tax
    assert [t["amount"] for t in refund["transactions"]] == ["16.94"]
    assert wait_for(receiver, "refunds/create")[0]["id"] == refund["id"]
    state = money(sandbox, order)
    assert (
        state["displayFinancialStatus"] == "PARTIALLY_REFUNDED"
        and amount(state["totalRefundedSet"]) == "16.94"
    )
    refused = httpx.post(url, json={"lines": [{"sku": "MN-SERUM-001", "quantity": 3}]})
    assert refused.status_code == 422 and "quantity" in json.dumps(refused.json()["errors"])
    assert httpx.post(f"{sandbox.url}/_sandbox/shopify/orders/1/refunds", json={}).status_code == 404
    shown = httpx.get(f"{sandbox.url}/_sandbox/state").json()["shopify"]["orders"]
    [stored] = [o for o in shown if o["id"] == order["id"]]
    assert [r["id"] for r in stored["refunds"]] == [refund["id"]]
    assert [t["kind"] for t in stored["transactions"]] == ["sale", "refund"]


def test_captured_payments_are_refunded_from_the_capture_not_the_authorization(sandbox):
    order = inject(
        sandbox,
        transactions=[
            {"id": 71, "kind": "authorization", "gateway": "shopify_payments", "amount": "57.60"},
            {"id": 72, "kind": "capture", "gateway": "shopify_payments", "amount": "57.60", "parent_id": 71},
        ],
    )
    cream = money(sandbox, order)["lineItems"]["nodes"][1]
    suggested = suggest(sandbox, order, [(cream["id"], 1)])
    assert [t["parentTransaction"]["id"] for t in suggested["suggestedTransactions"]] == [
        "gid://shopify/OrderTransaction/72"
    ]
    wrong_parent = refund_input(order, suggested, [(cream["id"], 1)])
    wrong_parent["transactions"][0]["parentId"] = "gid://shopify/OrderTransaction/71"
    refused = create(sandbox, wrong_parent, "auth")
    assert refused["refund"] is None and refused["userErrors"][0]["field"][-1] == "parentId"
    assert create(sandbox, refund_input(order, suggested, [(cream["id"], 1)]), "capture")["userErrors"] == []


def test_refunded_units_leave_the_open_fulfillment_order_and_a_return_takes_shipped_ones(sandbox):
    lines = [{**ORDER["line_items"][0], "fulfillable_quantity": 2}, ORDER["line_items"][1]]  # 1 of 3 shipped
    order = inject(sandbox, line_items=lines, fulfillment_status="partial")
    serum = money(sandbox, order)["lineItems"]["nodes"][0]

    def one_unit(restock_type: str) -> dict:
        line = {"lineItemId": serum["id"], "quantity": 1, "restockType": restock_type}
        return {"orderId": order["admin_graphql_api_id"], "refundLineItems": [line]}

    assert create(sandbox, one_unit("RETURN"), "return")["userErrors"] == []
    after = money(sandbox, order)["lineItems"]["nodes"][0]
    assert (after["refundableQuantity"], after["unfulfilledQuantity"]) == (2, 2)
    assert create(sandbox, one_unit("NO_RESTOCK"), "cancel")["userErrors"] == []
    after = money(sandbox, order)["lineItems"]["nodes"][0]
    assert (after["refundableQuantity"], after["unfulfilledQuantity"]) == (1, 1)
    query = """query($id: ID!) { order(id: $id) { fulfillmentOrders(first: 5) { nodes { status
      lineItems(first: 5) { nodes { sku remainingQuantity } } } } } }"""
    fos = data(sandbox, query, {"id": order["admin_graphql_api_id"]})["order"]["fulfillmentOrders"]["nodes"]
    open_serum = [
        line["remainingQuantity"]
        for fo in fos
        if fo["status"] == "OPEN"
        for line in fo["lineItems"]["nodes"]
        if line["sku"] == "MN-SERUM-001"
    ]
    assert open_serum == [1]


def test_a_refund_in_another_currency_and_a_cancel_with_a_pending_authorization_are_refused(sandbox):
    order = inject(sandbox)
    cream = money(sandbox, order)["lineItems"]["nodes"][1]
    suggested = suggest(sandbox, order, [(cream["id"], 1)])
    euros = create(sandbox, refund_input(order, suggested, [(cream["id"], 1)], currency="EUR"))
    assert euros["refund"] is None and euros["userErrors"][0]["field"] == ["currency"]
    pending = inject(
        sandbox,
        financial_status="pending",
        transactions=[
            {"kind": "authorization", "status": "pending", "gateway": "shopify_payments", "amount": "57.60"}
        ],
    )
    answer = data(sandbox, CANCEL, {"id": pending["admin_graphql_api_id"], "refund": True, "restock": False})
    assert "pending authorization" in answer["orderCancel"]["orderCancelUserErrors"][0]["message"]
