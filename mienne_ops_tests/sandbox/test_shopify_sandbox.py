"""The Shopify fake over real HTTP: auth, versions, schema validation, search, cost, mutations."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.server import SandboxServer
from mienne_ops_tests.support import single_system_server

TOKEN = {"X-Shopify-Access-Token": credentials.SHOPIFY["access_token"]}


server = single_system_server("shopify")


@pytest.fixture
def sandbox(server) -> Iterator[SandboxServer]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server
    httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True})


def gql(sandbox, query: str, variables: dict | None = None, version: str = "2026-04", headers=TOKEN):
    url = f"{sandbox.url}/shopify/admin/api/{version}/graphql.json"
    return httpx.post(url, json={"query": query, "variables": variables or {}}, headers=headers)


def data(sandbox, query: str, variables: dict | None = None) -> dict:
    body = gql(sandbox, query, variables).json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def inject(sandbox, payload: dict) -> dict:
    response = httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=payload)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def fixture_order(shopify_fixtures) -> dict:
    examples = json.loads((shopify_fixtures / "rest_examples_2024-04" / "order.json").read_text())["examples"]
    return next(e for e in examples if e["test"] == "test_8")["response"]["order"]


def test_bad_token_is_401_in_shopify_shape(sandbox):
    response = gql(sandbox, "{ shop { name } }", headers={"X-Shopify-Access-Token": "shpat_nope"})
    assert response.status_code == 401
    assert response.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }
    assert response.headers["X-Request-Id"]


def test_unsupported_version_is_served_by_the_oldest_supported(sandbox):
    response = gql(sandbox, "{ locations(first: 5) { nodes { id name } } }", version="2023-01")
    assert response.headers["X-Shopify-API-Version"] == "2025-10"
    assert (
        gql(sandbox, "{ locations(first: 1) { nodes { id } } }").headers["X-Shopify-API-Version"] == "2026-04"
    )
    names = [n["name"] for n in response.json()["data"]["locations"]["nodes"]]
    assert names == ["DCL Fremont", "DCL Los Angeles"]


def test_documents_the_real_schema_rejects_are_rejected(sandbox):
    body = gql(sandbox, "{ orders(first: 1) { nodes { id notAField } } }").json()
    assert "data" not in body and "notAField" in body["errors"][0]["message"]
    too_many = gql(sandbox, "{ orders(first: 251) { nodes { id } } }").json()
    assert too_many["data"] is None and "250" in too_many["errors"][0]["message"]
    no_size = gql(sandbox, "{ orders { nodes { id } } }").json()
    assert "first or last" in no_size["errors"][0]["message"]


def test_injected_fixture_order_is_stored_in_rest_shape_and_served_in_graphql_shape(sandbox, fixture_order):
    created = inject(sandbox, {"order": fixture_order})
    assert created == {
        "id": 450789469,
        "name": "#1001",
        "admin_graphql_api_id": "gid://shopify/Order/450789469",
    }
    second = inject(sandbox, {"line_items": [{"sku": "MN-SERUM-001", "quantity": 1}]})
    assert second["name"] == "#1002" and second["id"] > 2**53  # 64-bit ids, like Shopify's

    query = """query($id: ID!) { order(id: $id) { id name tags displayFinancialStatus displayFulfillmentStatus
      customer { defaultEmailAddress { emailAddress } } shippingAddress { countryCodeV2 }
      totalPriceSet { shopMoney { amount currencyCode } }
      lineItems(first: 5) { nodes { id sku variant { id } } }
      fulfillmentOrders(first: 5) {
        nodes { id status lineItems(first: 5) { nodes { id lineItem { id } } } } } } }"""
    order = data(sandbox, query, {"id": created["admin_graphql_api_id"]})["order"]
    assert order["displayFinancialStatus"] == "PARTIALLY_REFUNDED"
    assert order["displayFulfillmentStatus"] == "UNFULFILLED"
    assert order["customer"]["defaultEmailAddress"]["emailAddress"] == fixture_order["customer"]["email"]
    assert order["shippingAddress"]["countryCodeV2"] == "US"
    assert order["totalPriceSet"]["shopMoney"] == {
        "amount": fixture_order["total_price"],
        "currencyCode": "USD",
    }
    [fo] = order["fulfillmentOrders"]["nodes"]
    fo_line_ids = {n["id"] for n in fo["lineItems"]["nodes"]}
    assert fo_line_ids.isdisjoint({n["id"] for n in order["lineItems"]["nodes"]})

    state = httpx.get(f"{sandbox.url}/_sandbox/state").json()["shopify"]
    stored = next(o for o in state["orders"] if o["id"] == 450789469)
    assert (
        stored["total_price"] == fixture_order["total_price"]
        and stored["tags"] == []
        and stored["tags_string"] == ""
    )
    assert stored["fulfillment_orders"][0]["status"] == "open"
    assert stored["transactions"][0]["gateway"] == "bogus"


def test_gift_card_transactions_from_the_payload_are_kept(sandbox):
    payload = {
        "line_items": [{"sku": "MN-SERUM-001", "quantity": 1, "price": "50.00"}],
        "payment_gateway_names": ["gift_card", "shopify_payments"],
        "transactions": [
            {"kind": "sale", "gateway": "gift_card", "amount": "20.00"},
            {"kind": "sale", "gateway": "shopify_payments", "amount": "30.00"},
        ],
    }
    created = inject(sandbox, payload)
    query = (
        "query($id: ID!) { order(id: $id) { transactions { gateway amountSet { shopMoney { amount } } } } }"
    )
    txs = data(sandbox, query, {"id": created["admin_graphql_api_id"]})["order"]["transactions"]
    assert [(t["gateway"], t["amountSet"]["shopMoney"]["amount"]) for t in txs] == [
        ("gift_card", "20.00"),
        ("shopify_payments", "30.00"),
    ]


def test_search_syntax_filters_orders(sandbox):
    paid = inject(sandbox, {"line_items": [{"sku": "MN-SERUM-001"}], "tags": "vip", "email": "a@example.com"})
    pending = inject(sandbox, {"line_items": [{"sku": "MN-SERUM-001"}], "financial_status": "pending"})
    cancelled = inject(sandbox, {"line_items": [{"sku": "MN-SERUM-001"}]})
    httpx.post(f"{sandbox.url}/_sandbox/shopify/orders/{cancelled['id']}/cancel").raise_for_status()

    def names(search: str) -> list[str]:
        query = "query($q: String) { orders(first: 50, query: $q, sortKey: CREATED_AT) { nodes { name } } }"
        return [n["name"] for n in data(sandbox, query, {"q": search})["orders"]["nodes"]]

    assert names("tag:vip") == [paid["name"]]
    assert names("-tag:vip status:open") == [pending["name"]]
    assert names("NOT tag:vip AND financial_status:pending") == [pending["name"]]
    assert names("status:cancelled") == [cancelled["name"]]
    assert names(f"name:{paid['name'].lstrip('#')}") == [paid["name"]]
    assert names("email:a@example.com") == [paid["name"]]
    assert names("updated_at:>='2000-01-01T00:00:00Z'") == [paid["name"], pending["name"], cancelled["name"]]
    assert names("created_at:<2000-01-01") == []
    assert names("fulfillment_status:unshipped financial_status:paid status:open") == [paid["name"]]


def test_pagination_cursors_walk_every_order_once(sandbox):
    created = [inject(sandbox, {"line_items": [{"sku": "MN-SERUM-001"}]})["name"] for _ in range(5)]
    query = """query($after: String) { orders(first: 2, after: $after, sortKey: UPDATED_AT, reverse: true) {
      edges { cursor node { name } } pageInfo { hasNextPage endCursor } } }"""
    seen, after = [], None
    while True:
        page = data(sandbox, query, {"after": after})["orders"]
        seen += [e["node"]["name"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == list(reversed(created))


def test_every_answer_carries_cost_and_a_tiny_bucket_throttles(sandbox):
    body = gql(sandbox, "{ locations(first: 10) { nodes { id } } }").json()
    cost = body["extensions"]["cost"]
    # 2 + first × 1 (one Location object each); the 8 of 10 locations that were not there: refunded.
    assert cost["requestedQueryCost"] == 12 and cost["actualQueryCost"] == 4
    assert cost["throttleStatus"]["maximumAvailable"] == 2000.0

    inject(sandbox, {"line_items": [{"sku": "MN-SERUM-001"}]})
    httpx.post(f"{sandbox.url}/_sandbox/shopify/limits", json={"bucket_size": 5, "restore_rate": 0.001})
    query = "{ orders(first: 1) { nodes { id } } }"  # costs 3, all of it used
    assert "data" in gql(sandbox, query).json()
    throttled = gql(sandbox, query)
    assert throttled.status_code == 200
    body = throttled.json()
    assert "data" not in body and body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert body["extensions"]["cost"]["actualQueryCost"] is None
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] < 3


NESTED = """{ orders(first: 2) { nodes { id
  lineItems(first: 20) { nodes { sku variant { id } } }
  shippingLines(first: 5) { nodes { code } }
  fulfillmentOrders(first: 2) { nodes { id lineItems(first: 20) { nodes { id } } } } } } }"""


def test_nested_connections_multiply_and_are_charged_for_what_they_returned(sandbox):
    inject(sandbox, {"line_items": [{"sku": "MN-SERUM-001"}, {"sku": "MN-SERUM-001"}]})
    # A bucket that holds two reservations (198) only thanks to the refund of the first.
    httpx.post(f"{sandbox.url}/_sandbox/shopify/limits", json={"bucket_size": 230, "restore_rate": 0.001})
    body = gql(sandbox, NESTED).json()
    assert "errors" not in body, body["errors"]
    (order,) = body["data"]["orders"]["nodes"]
    assert len(order["lineItems"]["nodes"]) == 2 and order["shippingLines"]["nodes"] == []
    (fulfillment_order,) = order["fulfillmentOrders"]["nodes"]
    assert len(fulfillment_order["lineItems"]["nodes"]) == 2
    cost = body["extensions"]["cost"]
    # Requested, one order node: 1 + lineItems (2 + 20 × (line 1 + variant 1)) + shippingLines
    # (2 + 5 × 1) + fulfillmentOrders (2 + 2 × (1 + 2 + 20 × 1)) = 1 + 42 + 7 + 48 = 98, and the
    # orders connection 2 + 2 × 98 = 198: nested connections multiply.
    # Actual, the same rule over what came back (1 order, 2 lines, no shipping line, 1 fulfillment
    # order of 2 lines): 2 + (1 + (2 + 2 × 2) + (2 + 0) + (2 + (1 + 2 + 2 × 1))) = 18.
    assert cost["requestedQueryCost"] == 198 and cost["actualQueryCost"] == 18
    assert cost["throttleStatus"]["currentlyAvailable"] == 230 - 18  # (bar a trickle of restore)
    second = gql(sandbox, NESTED).json()
    assert "errors" not in second
    assert second["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 230 - 18 - 18
    assert gql(sandbox, NESTED).json()["errors"][0]["extensions"]["code"] == "THROTTLED"  # 194 < 198


def test_a_missing_object_costs_nothing_and_a_mutation_10_plus_its_payload(sandbox):
    body = gql(sandbox, '{ order(id: "gid://shopify/Order/1") { id lineItems(first: 50) { nodes { id } } } }')
    cost = body.json()["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 1 + 2 + 50 and cost["actualQueryCost"] == 0
    order_id = inject(sandbox, {"line_items": [{"sku": "MN-SERUM-001"}]})["id"]
    order_gid = f"gid://shopify/Order/{order_id}"
    mutation = (
        f'mutation {{ tagsAdd(id: "{order_gid}", tags: ["x"]) {{ node {{ id }} userErrors {{ message }} }} }}'
    )
    cost = gql(sandbox, mutation).json()["extensions"]["cost"]
    # 10 for the mutation, 1 for `node`, 1 for the `userErrors` list (one UserError); none came back.
    assert cost["requestedQueryCost"] == 12 and cost["actualQueryCost"] == 11


def test_an_interface_costs_its_dearest_possible_selection(sandbox):
    order_gid = inject(sandbox, {"line_items": [{"sku": "MN-SERUM-001"}]})["admin_graphql_api_id"]
    query = """query($ids: [ID!]!) { nodes(ids: $ids) {
      ... on Order { id customer { id } shippingAddress { city } }
      ... on InventoryItem { id }
    } }"""
    body = gql(sandbox, query, {"ids": [order_gid, "gid://shopify/InventoryItem/1"]}).json()
    # Each id is priced as its dearest possible type: an Order (1 + customer 1 + address 1).
    assert body["extensions"]["cost"]["requestedQueryCost"] == 2 * 3


# The Orders document as it shipped before issue 7: every order with 50 line items.
OLD_ORDERS = """
query Orders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    nodes { ...OrderFields }
    pageInfo { hasNextPage endCursor }
  }
}
fragment Money on MoneyBag { shopMoney { amount currencyCode } }
fragment Address on MailingAddress { firstName lastName address1 city zip countryCodeV2 }
fragment OrderFields on Order {
  id legacyResourceId name email tags
  totalPriceSet { ...Money } subtotalPriceSet { ...Money } totalTaxSet { ...Money }
  totalDiscountsSet { ...Money } totalShippingPriceSet { ...Money }
  customer { id legacyResourceId firstName lastName defaultEmailAddress { emailAddress } }
  shippingAddress { ...Address }
  billingAddress { ...Address }
  taxLines { title rate priceSet { ...Money } }
  shippingLines(first: 10) {
    nodes {
      code title originalPriceSet { ...Money } discountedPriceSet { ...Money }
      taxLines { title rate priceSet { ...Money } }
    }
  }
  transactions(first: 20) { id kind status gateway amountSet { ...Money } }
  lineItems(first: 50) {
    nodes {
      id sku quantity currentQuantity unfulfilledQuantity
      variant { id legacyResourceId }
      originalUnitPriceSet { ...Money }
      discountedTotalSet { ...Money }
      discountAllocations { allocatedAmountSet { ...Money } }
      taxLines { title rate priceSet { ...Money } }
    }
  }
}
"""


def test_the_old_orders_document_is_refused_with_shopifys_exact_answer(sandbox):
    inject(sandbox, {"line_items": [{"sku": "MN-SERUM-001"}]})
    before = gql(sandbox, "{ locations(first: 1) { nodes { id } } }").json()["extensions"]["cost"][
        "throttleStatus"
    ]
    response = gql(sandbox, OLD_ORDERS, {"first": 50})
    assert response.status_code == 200
    body = response.json()
    # One order, by hand: the order 1; five money bags 5 × 2; customer 1 + email address 1; two
    # addresses 2; the order's tax lines (a plain list: one TaxLine 1 + its money 2) 3; shippingLines
    # 2 + 10 × (1 + 2 + 2 + 3) = 82; transactions (a list sized by `first`) 2 + 20 × (1 + 2) = 62;
    # lineItems 2 + 50 × (1 + variant 1 + 2 + 2 + allocations 3 + tax lines 3) = 602.
    # 1 + 10 + 2 + 2 + 3 + 82 + 62 + 602 = 764 per order, and 50 of them: 2 + 50 × 764 = 38,202.
    assert body == {
        "errors": [
            {
                "message": "Query cost is 38202, which exceeds the single query max cost limit (1000).\n\n"
                "See https://shopify.dev/docs/api/usage/rate-limits for more information on how the\n"
                "cost of a query is calculated.\n\n"
                "To query larger amounts of data with fewer limits, bulk operations should be used instead.\n"
                "See https://shopify.dev/docs/api/usage/bulk-operations/queries for usage details.\n",
                "extensions": {"code": "MAX_COST_EXCEEDED", "cost": 38202, "maxCost": 1000},
            }
        ]
    }
    # Nothing ran, so nothing was taken from the bucket.
    after = gql(sandbox, "{ locations(first: 1) { nodes { id } } }").json()["extensions"]["cost"][
        "throttleStatus"
    ]
    assert after["currentlyAvailable"] >= before["currentlyAvailable"] - 1
    # At one order per page it fits (2 + 764) and runs.
    assert "data" in gql(sandbox, OLD_ORDERS, {"first": 1}).json()


def test_cost_debug_header_adds_the_per_field_breakdown(sandbox):
    query = "{ orders(first: 3) { nodes { id customer { id } } } }"
    plain = gql(sandbox, query).json()["extensions"]["cost"]
    assert "fields" not in plain
    debug = gql(sandbox, query, headers={**TOKEN, "Shopify-GraphQL-Cost-Debug": "1"}).json()
    fields = {tuple(f["path"]): f for f in debug["extensions"]["cost"]["fields"]}
    assert fields[("orders",)] == {
        "path": ["orders"],
        "definedCost": 2,
        "requestedTotalCost": 2 + 3 * 2,
        "requestedChildrenCost": 3 * 2,
    }
    assert fields[("orders", "nodes", "customer")]["requestedTotalCost"] == 1
    assert fields[("orders", "nodes", "id")]["requestedTotalCost"] == 0
    assert debug["extensions"]["cost"]["requestedQueryCost"] == 8


def test_plan_presets_on_the_limits_route(sandbox):
    limits = f"{sandbox.url}/_sandbox/shopify/limits"
    expected = {
        "standard": (2000, 100),
        "advanced": (4000, 200),
        "plus": (20000, 1000),
        "enterprise": (40000, 2000),
    }
    for plan, (maximum, rate) in expected.items():
        status = httpx.post(limits, json={"plan": plan}).json()
        assert (status["maximumAvailable"], status["restoreRate"]) == (maximum, rate)
        seen = gql(sandbox, "{ locations(first: 1) { nodes { id } } }").json()["extensions"]["cost"][
            "throttleStatus"
        ]
        assert (seen["maximumAvailable"], seen["restoreRate"]) == (maximum, rate)
    # The explicit numbers outside harnesses send still work, alone or over a plan.
    status = httpx.post(limits, json={"plan": "plus", "bucket_size": 500}).json()
    assert (status["maximumAvailable"], status["restoreRate"]) == (500, 1000)
    status = httpx.post(limits, json={"restore_rate": 50, "bucket_size": 1000}).json()
    assert (status["maximumAvailable"], status["restoreRate"]) == (1000, 50)
    assert httpx.post(limits, json={"plan": "basic"}).status_code == 400


def test_listed_mutations_need_the_idempotent_directive_from_2026_04(sandbox):
    mutation = """mutation { inventorySetQuantities(input: {name: "available", reason: "correction",
      quantities: [{inventoryItemId: "gid://shopify/InventoryItem/1", locationId: "gid://shopify/Location/1",
      quantity: 1, changeFromQuantity: null}]}) { userErrors { field message } } }"""
    body = gql(sandbox, mutation).json()
    assert "data" not in body and "@idempotent" in body["errors"][0]["message"]
    older = gql(sandbox, mutation, version="2026-01").json()
    assert "@idempotent" not in json.dumps(older.get("errors", []))


FULFILL = """mutation($input: FulfillmentInput!) { fulfillmentCreate(fulfillment: $input) {
  fulfillment { id name status trackingInfo { company number url } fulfillmentLineItems(first: 10) {
  nodes { quantity lineItem { sku } } } } userErrors { field message } } }"""
FO_QUERY = """query($id: ID!) { order(id: $id) { displayFulfillmentStatus fulfillmentOrders(first: 5) {
  nodes { id status lineItems(first: 5) { nodes { id sku remainingQuantity } } } } } }"""


def test_fulfillment_create_user_errors_and_closing(sandbox):
    created = inject(sandbox, {"line_items": [{"sku": "MN-SERUM-001", "quantity": 2}]})
    order = data(sandbox, FO_QUERY, {"id": created["admin_graphql_api_id"]})["order"]
    fo = order["fulfillmentOrders"]["nodes"][0]
    line = fo["lineItems"]["nodes"][0]

    def fulfil(groups, tracking=None):
        variables = {"input": {"lineItemsByFulfillmentOrder": groups, "trackingInfo": tracking or {}}}
        return data(sandbox, FULFILL, variables)["fulfillmentCreate"]

    over = fulfil(
        [{"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": [{"id": line["id"], "quantity": 3}]}]
    )
    assert over["fulfillment"] is None and "quantity" in over["userErrors"][0]["message"]
    unknown = fulfil([{"fulfillmentOrderId": "gid://shopify/FulfillmentOrder/1"}])
    assert "does not exist" in unknown["userErrors"][0]["message"]
    wrong_line = fulfil(
        [
            {
                "fulfillmentOrderId": fo["id"],
                "fulfillmentOrderLineItems": [
                    {"id": "gid://shopify/FulfillmentOrderLineItem/9", "quantity": 1}
                ],
            }
        ]
    )
    assert wrong_line["userErrors"]

    done = fulfil([{"fulfillmentOrderId": fo["id"]}], {"number": "1Z999AA10123456784"})
    assert done["userErrors"] == []
    assert done["fulfillment"]["name"] == f"{created['name']}.1"
    assert done["fulfillment"]["trackingInfo"][0]["company"] == "UPS"
    assert "ups.com" in done["fulfillment"]["trackingInfo"][0]["url"]
    assert done["fulfillment"]["fulfillmentLineItems"]["nodes"] == [
        {"quantity": 2, "lineItem": {"sku": "MN-SERUM-001"}}
    ]
    order = data(sandbox, FO_QUERY, {"id": created["admin_graphql_api_id"]})["order"]
    assert order["displayFulfillmentStatus"] == "FULFILLED"
    assert order["fulfillmentOrders"]["nodes"][0]["status"] == "CLOSED"
    again = fulfil([{"fulfillmentOrderId": fo["id"]}])
    assert "closed" in again["userErrors"][0]["message"]

    refused = httpx.post(f"{sandbox.url}/_sandbox/shopify/orders/{created['id']}/cancel")
    assert refused.status_code == 422


def test_tags_add_and_order_cancel_mutations(sandbox):
    created = inject(sandbox, {"line_items": [{"sku": "MN-SERUM-001"}], "tags": "a"})
    add = """mutation($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) {
      node { ... on Order { tags } } userErrors { field message } } }"""
    result = data(sandbox, add, {"id": created["admin_graphql_api_id"], "tags": ["b", "a"]})["tagsAdd"]
    assert result == {"node": {"tags": ["a", "b"]}, "userErrors": []}

    cancel = """mutation($id: ID!) {
      orderCancel(orderId: $id, reason: CUSTOMER, restock: true, refund: true) {
      job { id done } orderCancelUserErrors { code field message } } }"""
    assert (
        data(sandbox, cancel, {"id": created["admin_graphql_api_id"]})["orderCancel"]["orderCancelUserErrors"]
        == []
    )
    twice = data(sandbox, cancel, {"id": created["admin_graphql_api_id"]})["orderCancel"]
    assert twice["orderCancelUserErrors"][0]["code"] == "INVALID"
    query = "query($id: ID!) { order(id: $id) { cancelledAt cancelReason closed displayFinancialStatus } }"
    order = data(sandbox, query, {"id": created["admin_graphql_api_id"]})["order"]
    assert order["cancelledAt"] and order["cancelReason"] == "CUSTOMER" and order["closed"] is True
    assert order["displayFinancialStatus"] == "REFUNDED"


def test_injected_faults_use_shopify_error_shapes(sandbox):
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"shopify": {"error_rate": 1.0, "error_status": 502}})
    failed = gql(sandbox, "{ locations(first: 1) { nodes { id } } }")
    assert failed.status_code == 502 and failed.json() == {"errors": "Internal Server Error"}
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"clear": True})
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"shopify": {"rate_429": 1.0}})
    limited = gql(sandbox, "{ locations(first: 1) { nodes { id } } }")
    assert limited.status_code == 429 and limited.headers["Retry-After"]
    assert limited.json()["errors"].startswith("Exceeded")


def test_dropped_webhooks_are_logged_not_sent(sandbox):
    subscribe = """mutation { webhookSubscriptionCreate(topic: ORDERS_CREATE,
      webhookSubscription: {uri: "http://127.0.0.1:9/unreachable", format: JSON}) {
      webhookSubscription { id topic uri } userErrors { field message } } }"""
    created = data(sandbox, subscribe)["webhookSubscriptionCreate"]
    assert created["webhookSubscription"]["topic"] == "ORDERS_CREATE"
    duplicate = data(sandbox, subscribe)["webhookSubscriptionCreate"]
    assert "already been taken" in duplicate["userErrors"][0]["message"]
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"shopify": {"webhook_drop_rate": 1.0}})
    inject(sandbox, {"line_items": [{"sku": "MN-SERUM-001"}]})  # a drop is logged before this returns
    log = httpx.get(f"{sandbox.url}/_sandbox/shopify/webhooks/log").json()
    assert [e["outcome"] for e in log["deliveries"]] == ["dropped"] and log["pending"] == 0
    state = httpx.get(f"{sandbox.url}/_sandbox/state").json()["shopify"]
    assert state["webhook_deliveries"] == 1 and len(state["webhook_subscriptions"]) == 1


def test_failed_webhook_deliveries_are_retried_with_the_same_event(sandbox):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    attempts: list[dict[str, str]] = []

    class FlakyReceiver(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            attempts.append(dict(self.headers))
            self.send_response(500 if len(attempts) < 3 else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FlakyReceiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
        subscribe = f"""mutation {{ webhookSubscriptionCreate(topic: ORDERS_PAID,
          webhookSubscription: {{uri: "{uri}", format: JSON}}) {{ userErrors {{ message }} }} }}"""
        assert data(sandbox, subscribe)["webhookSubscriptionCreate"]["userErrors"] == []
        inject(sandbox, {"line_items": [{"sku": "MN-SERUM-001"}]})
        deadline = time.monotonic() + 60  # a guard against a hang on a loaded box, not a timing assertion
        while len(attempts) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        httpd.shutdown()
    assert len(attempts) == 3
    assert len({a["X-Shopify-Event-Id"] for a in attempts}) == 1
    assert len({a["X-Shopify-Webhook-Id"] for a in attempts}) == 3
    log = httpx.get(f"{sandbox.url}/_sandbox/shopify/webhooks/log").json()["deliveries"]
    assert [e["outcome"] for e in log] == ["failed", "failed", "delivered"]


RISK = (
    "query($id: ID!) { order(id: $id) { risk { recommendation assessments { riskLevel provider { id } } } } }"
)


def test_order_risk_is_shopifys_low_accept_unless_the_order_says_otherwise(sandbox):
    plain = inject(sandbox, {"line_items": [{"sku": "MN-SERUM-001", "quantity": 1}]})
    risky = inject(
        sandbox, {"line_items": [{"sku": "MN-SERUM-001", "quantity": 1}], "risk": {"level": "high"}}
    )
    low = data(sandbox, RISK, {"id": plain["admin_graphql_api_id"]})["order"]["risk"]
    assert low == {"recommendation": "ACCEPT", "assessments": [{"riskLevel": "LOW", "provider": None}]}
    high = data(sandbox, RISK, {"id": risky["admin_graphql_api_id"]})["order"]["risk"]
    assert high["recommendation"] == "CANCEL" and high["assessments"][0]["riskLevel"] == "HIGH"
