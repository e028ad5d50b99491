"""Bulk query operations in the Shopify fake, over real HTTP: lifecycle, JSONL, rules, limits, URLs.

Driven by a plain httpx client and by Shopify's own Python client (``ShopifyAPI``). An operation
moves one step per status read, so every test polls a known number of times and never waits.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.server import SandboxServer
from mienne_ops_tests.support import single_system_server

TOKEN = {"X-Shopify-Access-Token": credentials.SHOPIFY["access_token"]}
RUN = """mutation Run($query: String!, $group: Boolean!) {
  bulkOperationRunQuery(query: $query, groupObjects: $group) {
    bulkOperation { id status url }
    userErrors { field message code }
  }
}"""
STATUS = """query Status($id: ID!) {
  bulkOperation(id: $id) {
    id status errorCode objectCount rootObjectCount fileSize url partialDataUrl createdAt completedAt
    query type
  }
}"""
INVENTORY = """{ inventoryItems { edges { node { id sku
  inventoryLevels { edges { node { id location { id } quantities(names: ["available"]) { name quantity } } } }
} } } }"""
ORDERS_WITH_LINES = """{ orders(query: "financial_status:paid") { nodes { id name
  lineItems { nodes { id sku quantity } } } } }"""

server = single_system_server("shopify")


@pytest.fixture
def sandbox(server) -> Iterator[SandboxServer]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server
    server.world.clock_offset = timedelta(0)


def gql(sandbox, query: str, variables: dict | None = None) -> dict:
    url = f"{sandbox.url}/shopify/admin/api/2026-04/graphql.json"
    body = httpx.post(url, json={"query": query, "variables": variables or {}}, headers=TOKEN).json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def run(sandbox, query: str, group: bool = False) -> dict:
    return gql(sandbox, RUN, {"query": query, "group": group})["bulkOperationRunQuery"]


def status(sandbox, op_id: str) -> dict:
    return gql(sandbox, STATUS, {"id": op_id})["bulkOperation"]


def finished(sandbox, query: str, group: bool = False) -> dict:
    """Run a bulk query and read its status twice: RUNNING, then COMPLETED."""
    started = run(sandbox, query, group)
    assert started["userErrors"] == [] and started["bulkOperation"]["status"] == "CREATED"
    op_id = started["bulkOperation"]["id"]
    assert status(sandbox, op_id)["status"] == "RUNNING"
    done = status(sandbox, op_id)
    assert done["status"] == "COMPLETED", done
    return done


def lines(url: str) -> list[dict]:
    response = httpx.get(url)  # no access token: a signed URL
    assert response.status_code == 200
    return [json.loads(line) for line in response.text.splitlines()]


def inject(sandbox, skus: list[str]) -> dict:
    payload = {"line_items": [{"sku": sku, "quantity": 1} for sku in skus]}
    response = httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=payload)
    assert response.status_code == 201
    return response.json()


def test_a_bulk_query_runs_to_a_jsonl_file_with_parent_ids(sandbox):
    done = finished(sandbox, INVENTORY)
    rows = lines(done["url"])
    items = [r for r in rows if "__parentId" not in r]
    levels = [r for r in rows if "__parentId" in r]
    assert int(done["objectCount"]) == len(rows) and int(done["rootObjectCount"]) == len(items)
    assert int(done["fileSize"]) == len(httpx.get(done["url"]).content)
    assert done["type"] == "QUERY" and done["query"] == INVENTORY and done["completedAt"]
    # Every item of the shop, not a page of 250; nested levels point at their item and are not
    # embedded in it; without grouping every parent line comes before the children.
    state = httpx.get(f"{sandbox.url}/_sandbox/state").json()["shopify"]["inventory"]["levels"]
    assert len(items) == len({lv["inventory_item_id"] for lv in state}) > 250
    assert all("inventoryLevels" not in item for item in items)
    item_ids = {item["id"] for item in items}
    assert {lv["__parentId"] for lv in levels} == item_ids
    assert rows.index(levels[0]) > rows.index(items[-1])
    by_key = {
        (f"gid://shopify/InventoryItem/{lv['inventory_item_id']}", lv["location_id"]): lv for lv in state
    }
    for level in levels:
        location = int(level["location"]["id"].rsplit("/", 1)[1])
        assert level["quantities"] == [
            {"name": "available", "quantity": by_key[(level["__parentId"], location)]["available"]}
        ]


def test_grouped_objects_put_children_right_after_their_parent(sandbox):
    first = inject(sandbox, ["MN-SERUM-001", "MN-CREAM-002"])
    second = inject(sandbox, ["MN-SERUM-001"])
    rows = lines(finished(sandbox, ORDERS_WITH_LINES, group=True)["url"])
    assert [r.get("__parentId", r["id"]) for r in rows] == [
        *[first["admin_graphql_api_id"]] * 3,
        *[second["admin_graphql_api_id"]] * 2,
    ]
    assert [r["sku"] for r in rows if "__parentId" in r] == ["MN-SERUM-001", "MN-CREAM-002", "MN-SERUM-001"]


def test_one_bulk_query_at_a_time_unless_the_shop_allows_five(sandbox):
    first = run(sandbox, INVENTORY)["bulkOperation"]
    refused = run(sandbox, ORDERS_WITH_LINES)
    assert refused["bulkOperation"] is None
    (error,) = refused["userErrors"]
    assert error["code"] == "OPERATION_IN_PROGRESS" and first["id"] in error["message"]
    current = gql(sandbox, "{ currentBulkOperation { id status } }")["currentBulkOperation"]
    assert current == {"id": first["id"], "status": "RUNNING"}  # reading it moved it on
    assert status(sandbox, first["id"])["status"] == "COMPLETED"
    assert run(sandbox, ORDERS_WITH_LINES)["userErrors"] == []

    httpx.post(f"{sandbox.url}/_sandbox/reset").raise_for_status()
    httpx.post(f"{sandbox.url}/_sandbox/shopify/bulk_operations", json={"concurrent_queries": 5})
    for _ in range(5):
        assert run(sandbox, INVENTORY)["userErrors"] == []
    assert run(sandbox, INVENTORY)["userErrors"][0]["code"] == "LIMIT_REACHED"


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("{ shop { name } }", "at least one connection"),
        ('{ node(id: "gid://shopify/Order/1") { id } }', "`node` and `nodes`"),
        ("{ orders { nodes { id notAField } } }", "notAField"),
        ("{ orders { nodes { name lineItems { nodes { id } } } } }", "must select the 'id' field"),
        (
            "{ orders { nodes { id fulfillmentOrders { nodes { id lineItems { nodes { id } } } } } } }",
            "nested 3 levels deep",
        ),
        (
            """{ orders { nodes { id lineItems { nodes { id } } fulfillmentOrders { nodes { id } }
               fulfillments { id } transactions { id } events { nodes { id } }
               refunds { id } returns { nodes { id } } agreements { nodes { id } } } } }""",
            "more than 5 connections",
        ),
    ],
)
def test_documents_that_break_the_bulk_rules_are_refused_with_user_errors(sandbox, query, problem):
    refused = run(sandbox, query)
    assert refused["bulkOperation"] is None
    (error,) = refused["userErrors"]
    assert error["code"] == "INVALID" and error["field"] == ["query"] and problem in error["message"]
    assert gql(sandbox, "{ currentBulkOperation { id } }")["currentBulkOperation"] is None


def test_bulk_queries_are_exempt_from_the_single_query_cost_limit(sandbox):
    inject(sandbox, ["MN-SERUM-001"])
    query = """{ orders(first: 250) { nodes { id lineItems(first: 250) { nodes { id sku } }
      fulfillmentOrders(first: 250) { nodes { id } } shippingLines(first: 250) { nodes { id } } } } }"""
    url = f"{sandbox.url}/shopify/admin/api/2026-04/graphql.json"
    direct = httpx.post(url, json={"query": query}, headers=TOKEN).json()
    assert direct["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert [r["sku"] for r in lines(finished(sandbox, query)["url"]) if "sku" in r] == ["MN-SERUM-001"]


def test_cancel_then_canceled_and_a_finished_operation_cannot_be_cancelled(sandbox):
    cancel = """mutation($id: ID!) {
      bulkOperationCancel(id: $id) { bulkOperation { status } userErrors { message } } }"""
    op_id = run(sandbox, INVENTORY)["bulkOperation"]["id"]
    assert (
        gql(sandbox, cancel, {"id": op_id})["bulkOperationCancel"]["bulkOperation"]["status"] == "CANCELING"
    )
    cancelled = status(sandbox, op_id)
    assert cancelled["status"] == "CANCELED" and cancelled["url"] is None
    again = gql(sandbox, cancel, {"id": op_id})["bulkOperationCancel"]
    assert "cannot be canceled" in again["userErrors"][0]["message"]
    assert run(sandbox, INVENTORY)["userErrors"] == []  # a cancelled one no longer blocks


def test_result_urls_are_signed_and_expire_after_seven_days(sandbox):
    done = finished(sandbox, INVENTORY)
    assert httpx.get(done["url"].replace("signature=", "signature=0")).status_code == 403
    sandbox.world.clock_offset = timedelta(days=7, minutes=1)
    assert httpx.get(done["url"]).status_code == 400
    expired = status(sandbox, done["id"])
    assert expired["status"] == "EXPIRED" and expired["url"] is None


def test_a_failed_operation_keeps_its_partial_data(sandbox):
    knobs = httpx.post(f"{sandbox.url}/_sandbox/shopify/bulk_operations", json={"fail_next": "TIMEOUT"})
    assert knobs.json()["fail_next"] == "TIMEOUT"
    op_id = run(sandbox, INVENTORY)["bulkOperation"]["id"]
    status(sandbox, op_id)
    failed = status(sandbox, op_id)
    assert failed["status"] == "FAILED" and failed["errorCode"] == "TIMEOUT" and failed["url"] is None
    partial = lines(failed["partialDataUrl"])
    assert 0 < len(partial) == int(failed["objectCount"])
    assert finished(sandbox, INVENTORY)["status"] == "COMPLETED"  # the knob fails one run only


def test_held_operations_stay_running_until_released(sandbox):
    httpx.post(f"{sandbox.url}/_sandbox/shopify/bulk_operations", json={"hold": True})
    op_id = run(sandbox, INVENTORY)["bulkOperation"]["id"]
    assert [status(sandbox, op_id)["status"] for _ in range(3)] == ["RUNNING"] * 3
    httpx.post(f"{sandbox.url}/_sandbox/shopify/bulk_operations", json={"hold": False})
    assert status(sandbox, op_id)["status"] == "COMPLETED"


def test_the_finish_webhook_reaches_subscribers(sandbox):
    received: list[tuple[str, dict]] = []
    arrived = threading.Event()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["X-Shopify-Topic"], json.loads(body)))
            self.send_response(200)
            self.end_headers()
            arrived.set()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
        subscribe = f"""mutation {{ webhookSubscriptionCreate(topic: BULK_OPERATIONS_FINISH,
          webhookSubscription: {{uri: "{uri}", format: JSON}}) {{ userErrors {{ message }} }} }}"""
        assert gql(sandbox, subscribe)["webhookSubscriptionCreate"]["userErrors"] == []
        done = finished(sandbox, INVENTORY)
        assert arrived.wait(60), "no bulk_operations/finish delivery"  # a hang guard
    finally:
        httpd.shutdown()
    topic, payload = received[0]
    assert topic == "bulk_operations/finish"
    assert payload["admin_graphql_api_id"] == done["id"]
    assert (payload["status"], payload["type"], payload["error_code"]) == ("completed", "query", None)


def test_shopifys_own_python_client_runs_a_bulk_query(sandbox):
    import shopify  # ShopifyAPI, a dev dependency: a missing install must fail, not skip

    inject(sandbox, ["MN-SERUM-001", "MN-CREAM-002"])
    session = shopify.Session("mienne-sandbox.myshopify.com", "2026-04", credentials.SHOPIFY["access_token"])
    shopify.ShopifyResource.activate_session(session)
    shopify.ShopifyResource.set_site(f"{sandbox.url}/shopify/admin/api/2026-04")
    try:
        client = shopify.GraphQL()
        started = json.loads(client.execute(RUN, {"query": ORDERS_WITH_LINES, "group": False}))
        op_id = started["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"]
        states = []
        for _ in range(2):
            current = json.loads(client.execute("{ currentBulkOperation { id status url } }"))
            states.append(current["data"]["currentBulkOperation"])
    finally:
        shopify.ShopifyResource.clear_session()
    assert [s["status"] for s in states] == ["RUNNING", "COMPLETED"] and states[1]["id"] == op_id
    rows = lines(states[1]["url"])
    (order,) = [r for r in rows if "__parentId" not in r]
    assert sorted(r["sku"] for r in rows if r.get("__parentId") == order["id"]) == [
        "MN-CREAM-002",
        "MN-SERUM-001",
    ]


def test_a_query_that_matches_nothing_completes_without_a_file(sandbox):
    done = finished(sandbox, '{ orders(query: "tag:nothing-has-this") { nodes { id } } }')
    assert (done["objectCount"], done["rootObjectCount"], done["url"], done["fileSize"]) == (
        "0",
        "0",
        None,
        None,
    )
