"""The NetSuite sandbox on the wire: TBA rules, record shapes, transforms, SuiteQL, limits, faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256
from oauthlib.oauth1 import Client as OAuth1Client

from mienne_ops.integrations.netsuite import NetSuiteTbaAuth
from mienne_ops.sandbox.catalog import build_catalog
from mienne_ops.sandbox.credentials import NETSUITE
from mienne_ops.sandbox.server import SandboxServer
from mienne_ops_tests.support import single_system_server

RECORD = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"


server = single_system_server("netsuite")


@pytest.fixture
def ns(server: SandboxServer) -> Iterator[httpx.Client]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    auth = NetSuiteTbaAuth(**NETSUITE)
    with httpx.Client(base_url=f"{server.url}/netsuite", auth=auth) as client:
        yield client
    httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True})


def query(ns: httpx.Client, q: str, **params) -> httpx.Response:
    return ns.post(SUITEQL, params=params or None, json={"q": q}, headers={"Prefer": "transient"})


def error_code(response: httpx.Response) -> str:
    return response.json()["o:errorDetails"][0]["o:errorCode"]


def new_order(ns: httpx.Client, external_id: str = "shopify-order-1", **extra) -> str:
    body = {
        "entity": {"id": "5000"},
        "orderStatus": {"id": "B"},
        "item": {
            "items": [
                {"item": {"id": "1001"}, "quantity": 2, "rate": 10, "location": {"id": "1"}},
                {"item": {"id": "1300"}, "quantity": 1, "rate": 50, "location": {"id": "1"}},
            ]
        },
        **extra,
    }
    response = ns.put(f"{RECORD}/salesOrder/eid:{external_id}", json=body)
    assert response.status_code == 204, response.text
    return response.headers["Location"].rsplit("/", 1)[-1]


def test_stale_timestamp_and_unknown_token_are_invalid_login(ns, server):
    url = f"{server.url}/netsuite{RECORD}/customer/5000"
    keys = dict(
        client_secret=NETSUITE["consumer_secret"],
        resource_owner_secret=NETSUITE["token_secret"],
        signature_method=SIGNATURE_HMAC_SHA256,
        realm=NETSUITE["account_id"],
    )
    stale = OAuth1Client(
        NETSUITE["consumer_key"],
        resource_owner_key=NETSUITE["token_id"],
        timestamp=str(int(time.time()) - 3600),
        **keys,
    )
    _, headers, _ = stale.sign(url, "GET")
    answer = httpx.get(url, headers=headers)
    assert answer.status_code == 401 and error_code(answer) == "INVALID_LOGIN"
    other = OAuth1Client(NETSUITE["consumer_key"], resource_owner_key="revoked-token", **keys)
    answer = httpx.get(url, headers=other.sign(url, "GET")[1])
    assert answer.status_code == 401
    assert httpx.get(url).status_code == 401


def test_create_is_204_with_location_and_duplicate_external_id_is_dup_rcrd(ns):
    body = {"firstName": "Ada", "lastName": "Byron", "externalId": "shopify-customer-1"}
    created = ns.post(f"{RECORD}/customer", json=body)
    assert created.status_code == 204 and created.content == b""
    assert "/customer/" in created.headers["Location"]
    again = ns.post(f"{RECORD}/customer", json=body)
    assert again.status_code == 400 and error_code(again) == "DUP_RCRD"
    order_id = new_order(ns)
    dup = ns.post(
        f"{RECORD}/salesOrder",
        json={
            "externalId": "shopify-order-1",
            "entity": {"id": "5000"},
            "item": {"items": [{"item": {"id": "1001"}}]},
        },
    )
    assert dup.status_code == 400 and error_code(dup) == "DUP_RCRD"
    assert order_id.isdigit()


def test_validation_errors(ns):
    no_entity = ns.post(f"{RECORD}/salesOrder", json={"item": {"items": [{"item": {"id": "1001"}}]}})
    assert no_entity.status_code == 400 and error_code(no_entity) == "USER_ERROR"
    inactive = build_catalog().skus[298].netsuite_item_id  # a discontinued SKU
    bad_item = ns.post(
        f"{RECORD}/salesOrder",
        json={"entity": {"id": "5000"}, "item": {"items": [{"item": {"id": str(inactive)}}]}},
    )
    assert error_code(bad_item) == "INVALID_CONTENT"
    assert bad_item.json()["o:errorDetails"][0]["o:errorPath"] == "item.items[0].item"
    strict = ns.post(
        f"{RECORD}/salesOrder",
        json={"entity": {"id": "5000"}, "bogusField": 1, "item": {"items": [{"item": {"id": "1001"}}]}},
        headers={"X-NetSuite-PropertyNameValidation": "Error"},
    )
    assert strict.status_code == 400 and error_code(strict) == "INVALID_CONTENT"
    lenient = ns.post(
        f"{RECORD}/salesOrder",
        json={"entity": {"id": "5000"}, "bogusField": 1, "item": {"items": [{"item": {"id": "1001"}}]}},
    )
    assert lenient.status_code == 204


def test_get_shapes_links_refs_enums_and_expansion(ns):
    order_id = new_order(ns, otherRefNum="#1001")
    record = ns.get(f"{RECORD}/salesOrder/{order_id}").json()
    assert record["id"] == order_id and record["links"][0]["rel"] == "self"
    assert record["entity"]["id"] == "5000" and record["entity"]["refName"] and record["entity"]["links"]
    assert record["orderStatus"] == {"id": "B", "refName": "Pending Fulfillment"}
    assert set(record["item"]) == {"links"}
    expanded = ns.get(
        f"{RECORD}/salesOrder/eid:shopify-order-1", params={"expandSubResources": "true"}
    ).json()
    lines = expanded["item"]["items"]
    assert [line["line"] for line in lines] == [1, 2] and lines[1]["itemType"]["id"] == "Kit"
    simple = ns.get(f"{RECORD}/salesOrder/{order_id}", params={"simpleEnumFormat": "true"}).json()
    assert simple["orderStatus"] == "B"
    sublist = ns.get(f"{RECORD}/salesOrder/{order_id}/item").json()
    assert sublist["totalResults"] == 2
    assert ns.get(f"{RECORD}/salesOrder/999999").status_code == 404


def test_patch_merges_flags_and_lines_and_closing_all_lines_closes_the_order(ns):
    order_id = new_order(ns)
    unsent = (
        "SELECT t.id FROM transaction t "
        "WHERE t.type = 'SalesOrd' AND t.status = 'B' AND t.custbody_sent_to_3pl = 'F'"
    )
    assert query(ns, unsent).json()["totalResults"] == 1
    assert ns.patch(f"{RECORD}/salesOrder/{order_id}", json={"custbody_sent_to_3pl": True}).status_code == 204
    assert query(ns, unsent).json()["totalResults"] == 0
    ns.patch(
        f"{RECORD}/salesOrder/{order_id}", json={"item": {"items": [{"item": {"id": "1002"}, "quantity": 1}]}}
    )
    ns.patch(f"{RECORD}/salesOrder/{order_id}", json={"item": {"items": [{"line": 1, "quantity": 5}]}})
    lines = ns.get(f"{RECORD}/salesOrder/{order_id}/item").json()["items"]
    # Line 2 is a kit: its two hidden member lines took ids 3 and 4, so the new line is 5.
    assert [(line["line"], line["quantity"]) for line in lines] == [(1, 5), (2, 1), (5, 1)]
    close_all = {"item": {"items": [{"line": n, "isClosed": True} for n in (1, 2, 5)]}}
    ns.patch(f"{RECORD}/salesOrder/{order_id}", json=close_all)
    status = query(ns, f"SELECT BUILTIN.CF(status) AS s FROM transaction WHERE id = {order_id}").json()
    assert status["items"][0]["s"] == "SalesOrd:H"


def test_fulfilment_rules_and_stock(ns):
    order_id = new_order(ns)
    stock_sql = "SELECT quantityonhand FROM aggregateItemLocation WHERE item = 1001 AND location = 1"
    before = int(query(ns, stock_sql).json()["items"][0]["quantityonhand"])
    over = ns.post(
        f"{RECORD}/salesOrder/{order_id}/!transform/itemFulfillment",
        json={"item": {"items": [{"orderLine": 1, "quantity": 3}]}},
    )
    assert over.status_code == 400 and error_code(over) == "USER_ERROR"
    done = ns.post(f"{RECORD}/salesOrder/{order_id}/!transform/itemFulfillment", json={})
    assert done.status_code == 204 and "/itemFulfillment/" in done.headers["Location"]
    assert int(query(ns, stock_sql).json()["items"][0]["quantityonhand"]) == before - 2
    nothing = ns.post(f"{RECORD}/salesOrder/{order_id}/!transform/itemFulfillment", json={})
    assert nothing.json()["o:errorDetails"][0]["detail"].startswith("You must enter at least one line item")
    fulfilment_id = done.headers["Location"].rsplit("/", 1)[-1]
    rows = query(
        ns, f"SELECT id, status FROM transaction WHERE type = 'ItemShip' AND createdfrom = {order_id}"
    )
    assert rows.json()["items"] == [{"links": [], "id": fulfilment_id, "status": "C"}]
    lines = query(
        ns,
        "SELECT quantity, orderline, kitmemberof FROM transactionline "
        f"WHERE transaction = {fulfilment_id} AND mainline = 'F' ORDER BY linesequencenumber",
    )
    # The kit (SO line 2, MN-KIT-01 = 4 x MN-TOOL-070 + 3 x MN-TONER-064) brings its member lines.
    assert [{k: v for k, v in item.items() if k != "links"} for item in lines.json()["items"]] == [
        {"quantity": "-2", "orderline": "1"},
        {"quantity": "-1", "orderline": "2"},
        {"quantity": "-4", "orderline": "3", "kitmemberof": "2"},
        {"quantity": "-3", "orderline": "4", "kitmemberof": "2"},
    ]


def test_cancel_control_route(ns, server):
    order_id = new_order(ns)
    answer = httpx.post(f"{server.url}/_sandbox/netsuite/sales_orders/{order_id}/cancel")
    assert answer.json()["status"] == "C"
    refused = ns.post(f"{RECORD}/salesOrder/{order_id}/!transform/itemFulfillment", json={})
    assert refused.status_code == 400


def test_suiteql_envelope_paging_and_errors(ns):
    sql = "SELECT id, itemid FROM item WHERE itemtype = 'InvtPart' ORDER BY id"
    page = query(ns, sql, limit=2, offset=4).json()
    assert page["count"] == 2 and page["offset"] == 4 and page["hasMore"] is True
    assert [link["rel"] for link in page["links"]] == ["previous", "first", "next", "last", "self"]
    assert page["items"][0] == {"links": [], "id": "1004", "itemid": "MN-MASK-005"}
    assert query(ns, sql, limit=2, offset=3).status_code == 400
    assert query(ns, sql, limit=1001).status_code == 400
    no_prefer = ns.post(SUITEQL, json={"q": sql})
    assert no_prefer.status_code == 400
    bad = query(ns, "SELECT nothing FROM nowhere")
    assert bad.status_code == 400 and error_code(bad) == "INVALID_PARAMETER"
    assert query(ns, "DELETE FROM item").status_code == 400


def test_suiteql_kits_inventory_and_builtins(ns):
    kits = query(
        ns,
        "SELECT p.itemid AS kit_sku, c.itemid AS component_sku, im.quantity FROM itemMember im "
        "JOIN item p ON p.id = im.parentitem JOIN item c ON c.id = im.item "
        "WHERE p.itemtype = 'Kit' AND p.isinactive = 'F'",
    ).json()
    catalog = build_catalog()
    expected = sum(len(bundle.components) for bundle in catalog.bundles)
    assert kits["totalResults"] == expected
    first = catalog.bundles[0]
    assert {
        "links": [],
        "kit_sku": first.sku,
        "component_sku": first.components[0].component_sku,
        "quantity": str(first.components[0].quantity),
    } in kits["items"]
    stock = query(
        ns,
        "SELECT i.itemid AS sku, ail.quantityavailable FROM aggregateItemLocation ail "
        "JOIN item i ON i.id = ail.item WHERE ail.location = 2 AND i.isinactive = 'F'",
    ).json()
    assert stock["totalResults"] > 200 and all("sku" in row for row in stock["items"])
    new_order(ns)
    row = query(
        ns,
        "SELECT BUILTIN.DF(t.status) AS s, BUILTIN.CF(t.status) AS c, "
        "CASE WHEN t.trandate <= SYSDATE THEN 'T' ELSE 'F' END AS past "
        "FROM transaction t WHERE t.type = 'SalesOrd'",
    ).json()["items"][0]
    assert row == {"links": [], "s": "Pending Fulfillment", "c": "SalesOrd:B", "past": "T"}


def test_concurrency_pool_overflow_is_an_immediate_429(ns, server):
    limits = f"{server.url}/_sandbox/netsuite/limits"
    httpx.post(limits, json={"concurrency": 1, "hold": True}).raise_for_status()
    auth = NetSuiteTbaAuth(**NETSUITE)

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=f"{server.url}/netsuite", auth=auth) as client:
            calls = [asyncio.ensure_future(client.get(f"{RECORD}/customer/5000")) for _ in range(3)]
            # One call takes the only slot and is held there; the other two are answered at once.
            done: set = set()
            while len(done) < 2:  # the timeout only guards against a hang
                done, held = await asyncio.wait(calls, timeout=60, return_when=asyncio.FIRST_COMPLETED)
                assert done, "timed out"
            assert len(held) == 1 and all(call.result().status_code == 429 for call in done)
            async with httpx.AsyncClient() as control:
                (await control.post(limits, json={"hold": False})).raise_for_status()
            return [await call for call in calls]

    answers = asyncio.run(burst())
    refused = [answer for answer in answers if answer.status_code == 429]
    assert len(refused) == 2 and sum(answer.status_code == 200 for answer in answers) == 1
    assert refused[0].json()["title"] == "Too Many Requests"
    assert error_code(refused[0]) == "CONCURRENCY_LIMIT_EXCEEDED"
    assert "Retry-After" not in refused[0].headers
    assert httpx.post(limits, json={}).json()["refused"] == 2


def test_injected_503_uses_the_error_shape(ns, server):
    httpx.post(f"{server.url}/_sandbox/faults", json={"netsuite": {"error_rate": 1.0}}).raise_for_status()
    answer = ns.get(f"{RECORD}/customer/5000")
    assert answer.status_code == 503 and error_code(answer) == "SERVICE_UNAVAILABLE"


def test_state_lists_orders_fulfilments_and_customers(ns, server):
    order_id = new_order(ns)
    ns.post(
        f"{RECORD}/salesOrder/{order_id}/!transform/itemFulfillment",
        json={"externalId": "dcl-1", "package": {"items": [{"packageTrackingNumber": "1Z1"}]}},
    )
    dump = httpx.get(f"{server.url}/_sandbox/state").json()["netsuite"]
    order = dump["sales_orders"][0]
    assert order["status"] == "F" and order["lines"][1]["sku"] == "MN-KIT-01"
    assert dump["item_fulfillments"][0]["tracking"] == ["1Z1"]
    assert dump["item_fulfillments"][0]["createdFrom"] == order_id
    assert len(dump["customers"]) == 30
