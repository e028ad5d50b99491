"""The NetSuite sandbox's standard SuiteQL columns and kit member lines, as NetSuite has them.

The admin queries run through a plain HTTP client (`requests`) signed by an independent OAuth 1.0a
implementation (requests-oauthlib, HMAC-SHA256 with the account as realm), not by our own client:
what passes here would pass for anyone pointing a SuiteQL tool at the fake.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256
from requests_oauthlib import OAuth1

from mienne_ops.sandbox import netsuite_store
from mienne_ops.sandbox.catalog import build_catalog
from mienne_ops.sandbox.credentials import NETSUITE
from mienne_ops.sandbox.server import SandboxServer
from mienne_ops_tests.support import single_system_server

server = single_system_server("netsuite")

CATALOG = build_catalog()
KIT = CATALOG.bundles[0]  # MN-KIT-01: 4 x MN-TOOL-070 + 3 x MN-TONER-064
KIT_ITEM, PLAIN_ITEM = "1300", "1001"
PLAIN_SKU = next(sku.sku for sku in CATALOG.skus if sku.netsuite_item_id == int(PLAIN_ITEM))


class Admin:
    """A NetSuite admin's tool: requests + requests-oauthlib, nothing of mienne-ops."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.auth = OAuth1(
            NETSUITE["consumer_key"],
            NETSUITE["consumer_secret"],
            NETSUITE["token_id"],
            NETSUITE["token_secret"],
            signature_method=SIGNATURE_HMAC_SHA256,
            realm=NETSUITE["account_id"],
        )

    def suiteql(self, q: str) -> requests.Response:
        return self.session.post(
            f"{self.base}/services/rest/query/v1/suiteql",
            json={"q": q},
            headers={"Prefer": "transient"},
            timeout=30,
        )

    def rows(self, q: str) -> list[dict[str, str]]:
        answer = self.suiteql(q)
        assert answer.status_code == 200, answer.text
        return [{k: v for k, v in row.items() if k != "links"} for row in answer.json()["items"]]

    def record(self, method: str, path: str, body: Any = None, **params: str) -> requests.Response:
        url = f"{self.base}/services/rest/record/v1/{path}"
        return self.session.request(method, url, json=body, params=params or None, timeout=30)


@pytest.fixture
def admin(server: SandboxServer) -> Iterator[Admin]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    client = Admin(f"{server.url}/netsuite")
    yield client
    client.session.close()


def kit_order(admin: Admin, kits: int = 2) -> str:
    """A sales order: 3 x a plain item (line 1), then ``kits`` x MN-KIT-01 (line 2)."""
    body = {
        "entity": {"id": "5000"},
        "orderStatus": {"id": "B"},
        "location": {"id": "1"},
        "item": {
            "items": [
                {"item": {"id": PLAIN_ITEM}, "quantity": 3, "rate": 10, "location": {"id": "1"}},
                {"item": {"id": KIT_ITEM}, "quantity": kits, "rate": 50, "location": {"id": "1"}},
            ]
        },
    }
    answer = admin.record("PUT", "salesOrder/eid:kit-order-1", body)
    assert answer.status_code == 204, answer.text
    return answer.headers["Location"].rsplit("/", 1)[-1]


LINE_COLUMNS = (
    "SELECT tl.id, tl.mainline, tl.taxline, tl.kitmemberof, tl.isclosed, tl.itemtype, "
    "ABS(tl.quantity) AS qty, tl.quantityshiprecv, BUILTIN.DF(tl.item) AS sku FROM transactionline tl "
    "WHERE tl.transaction = {id} ORDER BY tl.linesequencenumber"
)


def test_the_admin_queries_run_with_netsuite_values(admin):
    order_id = kit_order(admin)
    assert admin.rows("SELECT id, tranid FROM transaction WHERE recordtype = 'salesorder'") == [
        {"id": order_id, "tranid": "SO1001"}
    ]
    (header,) = admin.rows(
        "SELECT t.recordtype, t.type, t.tranid, t.trandate, t.status, t.entity, t.createddate, "
        f"t.lastmodifieddate, t.externalid, t.voided FROM transaction t WHERE t.id = {order_id}"
    )
    assert {k: header[k] for k in ("recordtype", "type", "tranid", "status", "entity", "externalid")} == {
        "recordtype": "salesorder",
        "type": "SalesOrd",
        "tranid": "SO1001",
        "status": "B",
        "entity": "5000",
        "externalid": "kit-order-1",
    }
    assert header["voided"] == "F"
    assert {"trandate", "createddate", "lastmodifieddate"} <= set(header)  # formats: the date preference

    # One main line (no item) and, for the kit, one hidden line per BOM member pointing at it.
    first, second = KIT.components
    assert admin.rows(LINE_COLUMNS.format(id=order_id)) == [
        {"id": "0", "mainline": "T", "taxline": "F", "isclosed": "F", "quantityshiprecv": "0"},
        row(1, "InvtPart", 3, PLAIN_SKU),
        row(2, "Kit", 2, KIT.sku),
        row(3, "InvtPart", 2 * first.quantity, first.component_sku, kit_line=2),
        row(4, "InvtPart", 2 * second.quantity, second.component_sku, kit_line=2),
    ]
    item_lines = admin.rows(
        f"SELECT tl.id FROM transactionline tl WHERE tl.transaction = {order_id} "
        "AND tl.mainline = 'F' AND tl.taxline = 'F' AND tl.kitmemberof IS NULL"
    )
    assert item_lines == [{"id": "1"}, {"id": "2"}]
    # The total the lines add up to (3 x 10 + 2 x 50), positive; a line key unique across transactions.
    assert admin.rows(f"SELECT foreigntotal FROM transaction WHERE id = {order_id}") == [
        {"foreigntotal": "130"}
    ]
    keys = admin.rows("SELECT tl.uniquekey FROM transactionline tl")
    assert len(keys) == 5 and len({row["uniquekey"] for row in keys}) == 5
    items = admin.rows(f"SELECT id, itemid, fullname, itemtype, isinactive FROM item WHERE id = {KIT_ITEM}")
    assert items == [
        {"id": KIT_ITEM, "itemid": KIT.sku, "fullname": KIT.sku, "itemtype": "Kit", "isinactive": "F"}
    ]


def row(line: int, item_type: str, qty: int, sku: str, kit_line: int | None = None, shipped: int = 0) -> dict:
    result = {
        "id": str(line),
        "mainline": "F",
        "taxline": "F",
        "isclosed": "F",
        "itemtype": item_type,
        "qty": str(qty),
        "quantityshiprecv": str(shipped),
        "sku": sku,
    }
    if kit_line is not None:
        result["kitmemberof"] = str(kit_line)
    return result


def test_an_unknown_column_is_netsuites_400(admin):
    answer = admin.suiteql("SELECT id, nosuchcolumn FROM transaction")
    assert answer.status_code == 400
    detail = answer.json()["o:errorDetails"][0]
    assert detail["o:errorCode"] == "INVALID_PARAMETER" and "nosuchcolumn" in detail["detail"]
    assert answer.json()["status"] == 400 and answer.json()["title"] == "Bad Request"


def test_fulfilling_a_kit_line_fulfils_its_members_and_their_stock(admin):
    order_id = kit_order(admin, kits=2)
    first, second = KIT.components
    stock = (
        "SELECT ail.item, ail.quantityonhand FROM aggregateItemLocation ail JOIN item i ON i.id = ail.item "
        f"WHERE ail.location = 1 AND i.itemid IN ('{first.component_sku}', '{second.component_sku}')"
    )
    before = {r["item"]: int(r["quantityonhand"]) for r in admin.rows(stock)}
    body = {
        "externalId": "ship-1",
        "shipStatus": {"id": "C"},
        "item": {
            "items": [
                {"orderLine": 2, "itemReceive": True, "quantity": 1, "location": {"id": "1"}},
                {"orderLine": 1, "itemReceive": False},
            ]
        },
    }
    answer = admin.record("POST", f"salesOrder/{order_id}/!transform/itemFulfillment", body)
    assert answer.status_code == 204, answer.text
    fulfillment_id = answer.headers["Location"].rsplit("/", 1)[-1]

    assert admin.rows(
        "SELECT t.recordtype, t.type, t.status FROM transaction t "
        f"WHERE t.createdfrom = {order_id} AND t.recordtype = 'itemfulfillment'"
    ) == [{"recordtype": "itemfulfillment", "type": "ItemShip", "status": "C"}]
    fulfilled = admin.rows(
        "SELECT tl.id, tl.orderline, tl.kitmemberof, ABS(tl.quantity) AS qty FROM transactionline tl "
        f"WHERE tl.transaction = {fulfillment_id} AND tl.mainline = 'F' ORDER BY tl.linesequencenumber"
    )
    assert fulfilled == [
        {"id": "1", "orderline": "2", "qty": "1"},
        {"id": "2", "orderline": "3", "kitmemberof": "1", "qty": str(first.quantity)},
        {"id": "3", "orderline": "4", "kitmemberof": "1", "qty": str(second.quantity)},
    ]
    lines = admin.rows(LINE_COLUMNS.format(id=order_id))
    assert [(r["id"], r["quantityshiprecv"]) for r in lines[2:]] == [
        ("2", "1"),
        ("3", str(first.quantity)),
        ("4", str(second.quantity)),
    ]
    # Pending Billing/Partially Fulfilled: the kit line (not its members) is half shipped.
    assert admin.rows(f"SELECT status FROM transaction WHERE id = {order_id}") == [{"status": "E"}]
    after = {r["item"]: int(r["quantityonhand"]) for r in admin.rows(stock)}
    assert sorted(before[item] - after[item] for item in before) == sorted([first.quantity, second.quantity])

    # REST: the sales order shows the kit line only; the fulfillment lists members after their kit.
    so_lines = admin.record("GET", f"salesOrder/{order_id}/item").json()["items"]
    assert [line["line"] for line in so_lines] == [1, 2]
    if_lines = admin.record("GET", f"itemFulfillment/{fulfillment_id}/item").json()["items"]
    assert [(line["orderLine"], line.get("kitMemberOf")) for line in if_lines] == [(2, None), (3, 1), (4, 1)]


def test_member_lines_follow_their_kit_line(admin):
    order_id = kit_order(admin, kits=2)
    first, second = KIT.components
    admin.record("PATCH", f"salesOrder/{order_id}", {"item": {"items": [{"line": 2, "quantity": 5}]}})
    members = admin.rows(
        f"SELECT tl.id, ABS(tl.quantity) AS qty FROM transactionline tl WHERE tl.transaction = {order_id} "
        "AND tl.kitmemberof = 2 ORDER BY tl.id"
    )
    assert members == [
        {"id": "3", "qty": str(5 * first.quantity)},
        {"id": "4", "qty": str(5 * second.quantity)},
    ]

    admin.record("PATCH", f"salesOrder/{order_id}", {"item": {"items": [{"line": 2, "isClosed": True}]}})
    closed = admin.rows("SELECT tl.isclosed FROM transactionline tl WHERE tl.kitmemberof = 2")
    assert closed == [{"isclosed": "T"}, {"isclosed": "T"}]

    # The kit line becomes a plain item: its members go; replacing the sublist drops a removed kit's.
    to_plain = {"item": {"items": [{"line": 2, "item": {"id": "1002"}}]}}
    admin.record("PATCH", f"salesOrder/{order_id}", to_plain)
    assert admin.rows("SELECT tl.id FROM transactionline tl WHERE tl.kitmemberof IS NOT NULL") == []
    admin.record("PATCH", f"salesOrder/{order_id}", {"item": {"items": [{"item": {"id": KIT_ITEM}}]}})
    (new_kit,) = admin.rows(
        f"SELECT tl.id FROM transactionline tl WHERE tl.transaction = {order_id} AND tl.itemtype = 'Kit'"
    )
    members_of_new = f"SELECT tl.id FROM transactionline tl WHERE tl.kitmemberof = {new_kit['id']}"
    assert len(admin.rows(members_of_new)) == 2
    replaced = admin.record(
        "PATCH", f"salesOrder/{order_id}", {"item": {"items": [{"line": 1}]}}, replace="item"
    )
    assert replaced.status_code == 204, replaced.text
    remaining = admin.rows(
        f"SELECT tl.id FROM transactionline tl WHERE tl.transaction = {order_id} AND tl.mainline = 'F'"
    )
    assert remaining == [{"id": "1"}]


def test_a_sandbox_file_from_before_gains_the_standard_columns():
    """`mienne-ops dev` keeps its world in a file: an older file must get the new columns, not fail."""
    conn = sqlite3.connect(":memory:")
    for statement in netsuite_store.SCHEMA.split(";"):  # the tables as the first version made them
        if statement.strip():
            conn.execute(statement)
    conn.execute(
        "INSERT INTO ns_transaction (id, type, rectype, record) VALUES (1, 'SalesOrd', 'salesOrder', '{}')"
    )
    netsuite_store.create_schema(conn)
    netsuite_store.create_schema(conn)  # idempotent
    assert conn.execute("SELECT recordtype, voided FROM ns_transaction").fetchall() == [("salesorder", "F")]
    conn.execute(
        "INSERT INTO ns_transaction (id, type, rectype, record) VALUES (2, 'PurchOrd', 'purchaseOrder', '{}')"
    )
    assert conn.execute(
        "SELECT [transaction], id, mainline, kitmemberof FROM ns_transactionline"
    ).fetchall() == [(2, 0, "T", None)]
