"""The Shopify fake's returns are as strict as Shopify: raw GraphQL against the sandbox over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mienne_ops.integrations.http import HttpCore, RetryPolicy
from mienne_ops.integrations.shopify import ShopifyClient
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.shopify import topic_name
from mienne_ops_tests.support import single_system_server

server = single_system_server("shopify")
HEADERS = {"X-Shopify-Access-Token": credentials.SHOPIFY["access_token"]}
ORDER = {
    "line_items": [
        {"sku": "MN-SERUM-001", "quantity": 2, "price": "20.00"},
        {"sku": "MN-CREAM-002", "quantity": 1, "price": "35.00"},
    ],
    "total_price": "75.00",
}
RETURN = "return { id status } userErrors { code field message }"


@pytest.fixture
def sandbox(server) -> Iterator:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server


@pytest.fixture
def client(sandbox) -> Iterator[ShopifyClient]:
    core = HttpCore(
        "shopify",
        f"{sandbox.url}/shopify",
        headers=HEADERS,
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02),
        sleep=lambda _s: None,
    )
    shopify = ShopifyClient(core)
    yield shopify
    shopify.close()


def gql(sandbox, query: str, variables: dict | None = None) -> dict:
    url = f"{sandbox.url}/shopify/admin/api/2026-04/graphql.json"
    body = httpx.post(url, json={"query": query, "variables": variables or {}}, headers=HEADERS).json()
    assert "errors" not in body, body
    return body["data"]


def shipped(sandbox, client) -> tuple[str, dict[str, str]]:
    order_id = str(httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=ORDER).json()["id"])
    [fo] = client.fulfillment_orders(int(order_id))
    client.create_fulfillment([(fo["id"], [])], tracking_company="UPS", tracking_numbers=["1Z1"])
    return order_id, {
        line.sku or "": line.fulfillment_line_item_id for line in client.returnable_lines(order_id)
    }


def errors(payload: dict) -> list[tuple[str | None, str]]:
    return [(e["code"], ".".join(e["field"] or [])) for e in payload["userErrors"]]


def test_return_topics_map_to_their_rest_names():
    assert topic_name("RETURNS_REQUEST") == "returns/request"
    assert topic_name("RETURNS_PROCESS") == "returns/process"
    assert topic_name("REVERSE_DELIVERIES_ATTACH_DELIVERABLE") == "reverse_deliveries/attach_deliverable"
    assert topic_name("REVERSE_FULFILLMENT_ORDERS_DISPOSE") == "reverse_fulfillment_orders/dispose"


def test_a_requested_return_cannot_be_processed_labelled_closed_or_cancelled(sandbox, client):
    order_id, flis = shipped(sandbox, client)
    data = gql(
        sandbox,
        "mutation($input: ReturnRequestInput!) { returnRequest(input: $input) { return { id status "
        "reverseFulfillmentOrders(first: 1) { nodes { id } } returnLineItems(first: 5) { nodes { id } } } "
        "userErrors { code field message } } }",
        {
            "input": {
                "orderId": f"gid://shopify/Order/{order_id}",
                "returnLineItems": [{"fulfillmentLineItemId": flis["MN-SERUM-001"], "quantity": 1}],
            }
        },
    )["returnRequest"]
    assert (
        data["return"]["status"] == "REQUESTED" and data["return"]["reverseFulfillmentOrders"]["nodes"] == []
    )
    gid = data["return"]["id"]
    line = data["return"]["returnLineItems"]["nodes"][0]["id"]
    for mutation in (f'returnClose(id: "{gid}")', f'returnCancel(id: "{gid}")'):
        answer = gql(sandbox, f"mutation {{ {mutation} {{ {RETURN} }} }}")
        assert errors(next(iter(answer.values()))) == [("INVALID_STATE", "id")]
    process = gql(
        sandbox,
        f"mutation($input: ReturnProcessInput!) {{ returnProcess(input: $input) {{ {RETURN} }} }}",
        {"input": {"returnId": gid, "returnLineItems": [{"id": line, "quantity": 1}]}},
    )["returnProcess"]
    assert errors(process) == [("INVALID_STATE", "input.returnId")]
    order = gql(sandbox, f'{{ order(id: "gid://shopify/Order/{order_id}") {{ returnStatus }} }}')["order"]
    assert order["returnStatus"] == "RETURN_REQUESTED"
    found = gql(sandbox, '{ orders(first: 5, query: "return_status:return_requested") { nodes { id } } }')
    assert [n["id"] for n in found["orders"]["nodes"]] == [f"gid://shopify/Order/{order_id}"]
    missing = gql(sandbox, f'mutation {{ returnClose(id: "gid://shopify/Return/1") {{ {RETURN} }} }}')
    assert errors(missing["returnClose"]) == [("NOT_FOUND", "id")]


def test_labels_dispositions_and_refunds_are_checked(sandbox, client):
    order_id, flis = shipped(sandbox, client)
    created = client.create_return(order_id, [(flis["MN-SERUM-001"], 2)], reason="DEFECTIVE")
    rfo = created.reverse_fulfillment_order_ids[0]
    label = (
        "mutation($rfo: ID!, $url: URL!) { reverseDeliveryCreateWithShipping("
        "reverseFulfillmentOrderId: $rfo, "
        'reverseDeliveryLineItems: [], trackingInput: {number: "1Z2"}, labelInput: {fileUrl: $url}) '
        "{ reverseDelivery { id } userErrors { code field message } } }"
    )
    bad = gql(sandbox, label, {"rfo": rfo, "url": "not a url"})["reverseDeliveryCreateWithShipping"]
    assert errors(bad) == [("INVALID", "labelInput.fileUrl")]
    good = gql(sandbox, label, {"rfo": rfo, "url": "https://x.example/l.pdf"})[
        "reverseDeliveryCreateWithShipping"
    ]
    assert good["userErrors"] == [] and good["reverseDelivery"]["id"].startswith(
        "gid://shopify/ReverseDelivery/"
    )

    rfo_line = gql(
        sandbox, f'{{ reverseFulfillmentOrder(id: "{rfo}") {{ lineItems(first: 5) {{ nodes {{ id }} }} }} }}'
    )["reverseFulfillmentOrder"]["lineItems"]["nodes"][0]["id"]
    process = f"mutation($input: ReturnProcessInput!) {{ returnProcess(input: $input) {{ {RETURN} }} }}"
    line = created.lines[0].id
    uneven = {
        "returnId": created.gid,
        "returnLineItems": [
            {
                "id": line,
                "quantity": 2,
                "dispositions": [
                    {
                        "reverseFulfillmentOrderLineItemId": rfo_line,
                        "quantity": 1,
                        "dispositionType": "RESTOCKED",
                    }
                ],
            }
        ],
    }
    assert errors(gql(sandbox, process, {"input": uneven})["returnProcess"]) == [
        ("INVALID", "input.returnLineItems.0.dispositions")
    ]
    money = client.order_money(order_id)
    sale = money.transactions[0].gid
    too_much = {
        "returnId": created.gid,
        "returnLineItems": [{"id": line, "quantity": 1}],
        "financialTransfer": {
            "issueRefund": {
                "orderTransactions": [
                    {"parentId": sale, "transactionAmount": {"amount": "75.01", "currencyCode": "USD"}}
                ]
            }
        },
    }
    refused = gql(sandbox, process, {"input": too_much})["returnProcess"]
    assert refused["userErrors"] and refused["userErrors"][0]["code"] == "INVALID"
    euros = {**too_much}
    euros["financialTransfer"] = {
        "issueRefund": {
            "orderTransactions": [
                {"parentId": sale, "transactionAmount": {"amount": "1.00", "currencyCode": "EUR"}}
            ]
        }
    }
    assert gql(sandbox, process, {"input": euros})["returnProcess"]["userErrors"][0]["code"] == "INVALID"
    # Nothing was booked by the refusals.
    assert (
        client.order_money(order_id).refunds == []
        and client.get_return(created.gid).lines[0].processed_quantity == 0
    )
    order = gql(sandbox, f'{{ order(id: "gid://shopify/Order/{order_id}") {{ returnStatus }} }}')["order"]
    assert order["returnStatus"] == "IN_PROGRESS"


def test_fulfillments_show_their_delivery(sandbox, client):
    order_id, _ = shipped(sandbox, client)
    [fulfillment] = client.fulfillments(int(order_id))
    number = fulfillment["id"].rsplit("/", 1)[-1]
    query = f'{{ fulfillment(id: "{fulfillment["id"]}") {{ deliveredAt displayStatus }} }}'
    assert gql(sandbox, query)["fulfillment"] == {"deliveredAt": None, "displayStatus": "FULFILLED"}
    httpx.post(f"{sandbox.url}/_sandbox/shopify/fulfillments/{number}/delivered", json={}).raise_for_status()
    shown = gql(sandbox, query)["fulfillment"]
    assert shown["displayStatus"] == "DELIVERED" and shown["deliveredAt"]


def test_orders_can_be_searched_by_customer(sandbox):
    mine = {**ORDER, "customer": {"id": 7001, "email": "a@example.com"}}
    theirs = {**ORDER, "customer": {"id": 7002, "email": "b@example.com"}}
    ids = [
        str(httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=o).json()["id"]) for o in (mine, theirs)
    ]
    found = gql(sandbox, '{ orders(first: 5, query: "customer_id:7001") { nodes { legacyResourceId } } }')
    assert [n["legacyResourceId"] for n in found["orders"]["nodes"]] == [ids[0]]
