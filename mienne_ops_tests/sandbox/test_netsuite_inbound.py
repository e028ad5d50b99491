"""Inbound in the sandboxes: NetSuite POs / TOs and item receipts, DCL ASN updates and dock receipts."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mienne_ops.integrations.netsuite import NetSuiteTbaAuth
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.catalog import build_catalog
from mienne_ops.sandbox.server import SandboxServer

RECORD = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
SKUS = [s.sku for s in build_catalog().skus if s.item_type == "InvtPart" and s.active][:3]
DCL_AUTH = (credentials.DCL["username"], credentials.DCL["password"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    with SandboxServer(
        tmp_path_factory.mktemp("inbound") / "w.db",
        modules=("mienne_ops.sandbox.netsuite", "mienne_ops.sandbox.dcl"),
    ) as running:
        yield running


@pytest.fixture
def ns(server: SandboxServer) -> Iterator[httpx.Client]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    httpx.post(f"{server.url}/_sandbox/dcl/limits", json={"requests_per_second": 1000}).raise_for_status()
    with httpx.Client(base_url=f"{server.url}/netsuite", auth=NetSuiteTbaAuth(**credentials.NETSUITE)) as c:
        yield c


def _create_po(server: SandboxServer, **body) -> dict:
    body.setdefault("lines", [{"sku": SKUS[0], "quantity": 10}, {"sku": SKUS[1], "quantity": 5}])
    response = httpx.post(f"{server.url}/_sandbox/netsuite/purchase_orders", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _row(ns: httpx.Client, transaction_id: str) -> dict:
    q = (
        "SELECT t.id, t.type, t.status, t.custbody_sent_to_3pl, t.custbody_dcl_po_number, t.location "
        f"FROM transaction t WHERE t.id = {transaction_id}"
    )
    response = ns.post(SUITEQL, json={"q": q}, headers={"Prefer": "transient"})
    return response.json()["items"][0]


def _receive(ns: httpx.Client, kind: str, record_id: str, body: dict) -> httpx.Response:
    return ns.post(f"{RECORD}/{kind}/{record_id}/!transform/itemReceipt", json=body)


def test_po_lifecycle_patch_partial_receipts_status_letters_and_close(server, ns):
    po = _create_po(server, dueDate="2026-06-01")
    assert po["tranId"].startswith("PO") and po["status"] == "B"
    row = _row(ns, po["id"])
    assert row["type"] == "PurchOrd" and row["custbody_sent_to_3pl"] == "F"
    assert "custbody_dcl_po_number" not in row  # exists, NULL -> omitted like SuiteQL does

    flags = {"custbody_sent_to_3pl": True, "custbody_dcl_po_number": "1"}
    patched = ns.patch(f"{RECORD}/purchaseOrder/{po['id']}", json=flags)
    assert patched.status_code == 204
    assert _row(ns, po["id"])["custbody_sent_to_3pl"] == "T"

    first = _receive(
        ns,
        "purchaseOrder",
        po["id"],
        {
            "externalId": "dcl-receipt-1-R1",
            "item": {
                "items": [
                    {"orderLine": 1, "itemReceive": True, "quantity": 4, "location": {"id": "1"}},
                    {"orderLine": 2, "itemReceive": False},
                ]
            },
        },
    )
    assert first.status_code == 204 and "/itemReceipt/" in first.headers["Location"]
    assert _row(ns, po["id"])["status"] == "D"
    again = _receive(ns, "purchaseOrder", po["id"], {"externalId": "dcl-receipt-1-R1"})
    assert again.status_code == 400
    assert again.json()["o:errorDetails"][0]["o:errorCode"] == "DUP_RCRD"
    too_much = _receive(ns, "purchaseOrder", po["id"], {"item": {"items": [{"orderLine": 1, "quantity": 7}]}})
    assert too_much.status_code == 400
    assert too_much.json()["o:errorDetails"][0]["o:errorCode"] == "USER_ERROR"
    rest = _receive(ns, "purchaseOrder", po["id"], {"externalId": "dcl-receipt-1-R2"})  # mark all
    assert rest.status_code == 204
    assert _row(ns, po["id"])["status"] == "F"

    lines = ns.get(f"{RECORD}/purchaseOrder/{po['id']}/item").json()["items"]
    closed = ns.patch(
        f"{RECORD}/purchaseOrder/{po['id']}",
        json={"item": {"items": [{"line": line["line"], "isClosed": True} for line in lines]}},
    )
    assert closed.status_code == 204
    assert _row(ns, po["id"])["status"] == "H"
    state = httpx.get(f"{server.url}/_sandbox/state").json()["netsuite"]
    assert [r["externalId"] for r in state["item_receipts"]] == ["dcl-receipt-1-R1", "dcl-receipt-1-R2"]
    assert state["purchase_orders"][0]["lines"][0]["quantityReceived"] == 10


def test_po_edit_adds_lines_and_changes_quantities(server, ns):
    po = _create_po(server)
    edit = {"item": {"items": [{"line": 1, "quantity": 12}, {"item": {"id": "0"}, "quantity": 1}]}}
    assert ns.patch(f"{RECORD}/purchaseOrder/{po['id']}", json=edit).status_code == 400  # bad item
    item_id = next(s.netsuite_item_id for s in build_catalog().skus if s.sku == SKUS[2])
    edit["item"]["items"][1]["item"] = {"id": str(item_id)}
    assert ns.patch(f"{RECORD}/purchaseOrder/{po['id']}", json=edit).status_code == 204
    lines = httpx.get(f"{server.url}/_sandbox/state").json()["netsuite"]["purchase_orders"][0]["lines"]
    assert [(line["sku"], line["quantity"]) for line in lines] == [(SKUS[0], 12), (SKUS[1], 5), (SKUS[2], 1)]


def test_transfer_order_receives_at_its_destination_and_closes(server, ns):
    to = httpx.post(
        f"{server.url}/_sandbox/netsuite/transfer_orders",
        json={"from_location": 2, "to_location": 1, "lines": [{"sku": SKUS[0], "quantity": 3}]},
    ).json()
    assert to["tranId"].startswith("TO") and to["status"] == "F"
    one = _receive(ns, "transferOrder", to["id"], {"item": {"items": [{"orderLine": 1, "quantity": 1}]}})
    assert one.status_code == 204
    assert _row(ns, to["id"])["status"] == "F"
    assert _receive(ns, "transferOrder", to["id"], {}).status_code == 204
    assert _row(ns, to["id"])["status"] == "G"
    state = httpx.get(f"{server.url}/_sandbox/state").json()["netsuite"]
    assert all(line["location"] == 1 for r in state["item_receipts"] for line in r["lines"])
    nothing = _receive(ns, "transferOrder", to["id"], {})
    assert nothing.status_code == 400
    closed = httpx.post(f"{server.url}/_sandbox/netsuite/purchase_orders/{_create_po(server)['id']}/close")
    assert closed.json()["status"] == "H"


def _notify(server, reference: str, lines: list[dict], order_number: str = "PO1001") -> httpx.Response:
    return httpx.post(
        f"{server.url}/dcl/api/v1/po_notifications",
        auth=DCL_AUTH,
        json={
            "account_number": credentials.DCL["account_number"],
            "location": "FR",
            "reference_transaction_number": reference,
            "reference_order_number": order_number,
            "order_date": "2026-05-01",
            "expected_delivery_date": "2026-05-10",
            "supplier_reference": "VENDOR-501",
            "lines": lines,
        },
    )


def test_dcl_update_keeps_the_po_number_and_dock_receipts_may_exceed_the_asn(server, ns):
    first = _notify(server, "PO1001-1", [{"line_number": 1, "item_number": SKUS[0], "quantity": 10}])
    assert first.status_code == 201
    number = first.json()["dcl_po_number"]
    duplicate = _notify(server, "PO1001-1", [{"line_number": 1, "item_number": SKUS[0], "quantity": 10}])
    assert duplicate.status_code == 400 and duplicate.json()["error_code"] != 0

    part = httpx.post(
        f"{server.url}/_sandbox/dcl/po/{number}/receive",
        json={"lines": [{"line_number": 1, "quantity": 4}]},
    ).json()
    update = _notify(
        server,
        "PO1001-2",
        [
            {"line_number": 1, "item_number": SKUS[0], "quantity": 12},
            {"line_number": 2, "item_number": SKUS[1], "quantity": 2},
        ],
    )
    assert update.status_code == 201 and update.json()["dcl_po_number"] == number
    state = httpx.get(f"{server.url}/_sandbox/state").json()["dcl"]
    assert len(state["po_notifications"]) == 1
    po = state["po_notifications"][0]
    assert po["references"] == ["PO1001-1", "PO1001-2"]
    assert [(x["quantity"], x["quantity_received"]) for x in po["lines"]] == [(12, 4), (2, 0)]

    over = httpx.post(
        f"{server.url}/_sandbox/dcl/po/{number}/receive",
        json={
            "lines": [
                {"line_number": 1, "quantity": 9},
                {"item_number": SKUS[2], "quantity": 1},
            ]
        },
    ).json()
    assert over["lines"] == [
        {"line_number": 1, "item_number": SKUS[0], "quantity_received": 9},
        {"item_number": SKUS[2], "quantity_received": 1},
    ]
    receipts = httpx.get(
        f"{server.url}/dcl/api/v1/po_receipts", auth=DCL_AUTH, params={"dcl_po_number": number}
    ).json()["po_receipts"]
    assert [r["receipt_id"] for r in receipts] == [part["receipt_id"], over["receipt_id"]]
    assert receipts[1]["supplier_reference"] == "VENDOR-501"
    missing = httpx.post(f"{server.url}/_sandbox/dcl/po/1/receive", json={})
    assert missing.status_code == 404
