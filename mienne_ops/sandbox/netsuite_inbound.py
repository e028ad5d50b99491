"""NetSuite sandbox, inbound side: purchase orders, transfer orders and their item receipts (flow D).

Follows netsuite.md §7 and §9.3. POs and TOs live in the same ``ns_transaction`` /
``ns_transactionline`` tables as sales orders (so SuiteQL sees them), with positive line quantities
and ``quantityshiprecv`` as the quantity received. `netsuite.py` routes here for PATCH of a
``purchaseOrder`` / ``transferOrder``, for ``!transform/itemReceipt`` from them, for the control routes
below and for their part of ``GET /_sandbox/state``.

Status letters (SuiteQL ``transaction.status``):

- purchaseOrder: A Pending Supervisor Approval (created so), B Pending Receipt, D Partially Received,
  F Pending Bill (everything received; nothing is billed in the sandbox, so E and G never appear),
  H Closed (every line closed).
- transferOrder: B Pending Fulfillment (``"shipped": false``), F Pending Receipt (shipped, receipts
  may be partial), G Received, H Closed.

Item receipts: ``POST …/purchaseOrder/{id}/!transform/itemReceipt`` → 204 + ``Location`` of the new
``itemReceipt``. Lines not named in ``item.items`` are received in full ("mark all"), a line with
``itemReceive: false`` is skipped, more than the open quantity → 400 ``USER_ERROR`` (the sandbox
allows no over-receipt), a used ``externalId`` → 400 ``DUP_RCRD``. Receiving raises on-hand stock
at the line's location. Sandbox defaults (our design choice): custom body fields
``custbody_sent_to_3pl`` and ``custbody_dcl_po_number`` exist on every transaction (so SuiteQL can
select them before first use); the TO destination is the SuiteQL column ``transferlocation``.

Control routes (under ``/_sandbox/netsuite``):

- ``POST /purchase_orders`` ``{"lines": [{"sku" | "item", "quantity", "rate"?}], "location"?: 1,
  "vendor"?: 501, "tranDate"?, "dueDate"?, "approved"?: true, "externalId"?, "memo"?,
  "custbody_…"?}`` → ``{"id", "tranId", "status"}``
- ``POST /transfer_orders`` ``{"lines": [...], "from_location"?: 2, "to_location"?: 1,
  "shipped"?: true, "tranDate"?, "dueDate"?}`` → ``{"id", "tranId", "status"}``
- ``POST /purchase_orders/{id}/close``, ``POST /transfer_orders/{id}/close`` close every line (H)
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mienne_ops.sandbox import netsuite_records as records
from mienne_ops.sandbox.netsuite_store import (
    NOTHING_TO_DO,
    NsError,
    assert_external_id_free,
    custom_fields,
    ensure_column,
    invalid_reference,
    item_lines,
    load_transaction,
    number,
    refresh_total,
    require_item,
    require_location,
    sql_value,
    to_decimal,
    to_int,
)

#: REST record type -> (SuiteQL type code, tranId prefix).
RECORD_TYPES = {"purchaseOrder": ("PurchOrd", "PO"), "transferOrder": ("TrnfrOrd", "TO")}
RECEIPT_SOURCES = set(RECORD_TYPES)
CUSTOM_HEADER_COLUMNS = ("custbody_dcl_po_number",)
DEFAULT_VENDOR = 501
RECEIVABLE = {"purchaseOrder": ("B", "D", "E"), "transferOrder": ("D", "E", "F")}


def create_schema(conn: sqlite3.Connection) -> None:
    """Columns the inbound records need beyond the shared schema (idempotent)."""
    ensure_column(conn, "ns_transaction", "transferlocation")
    for column in CUSTOM_HEADER_COLUMNS:
        ensure_column(conn, "ns_transaction", column)


# -- create ---------------------------------------------------------------------------------------


def create_order(ctx: records.Ctx, record_type: str, body: dict[str, Any]) -> dict[str, Any]:
    """A PO or TO from the control plane; returns ``{id, tranId, status}``."""
    tran_type, prefix = RECORD_TYPES[record_type]
    lines = body.get("lines") or (body.get("item") or {}).get("items") or []
    if not lines:
        raise NsError(400, "USER_ERROR", NOTHING_TO_DO, "item")
    external_id = body.get("externalId")
    assert_external_id_free(ctx.conn, record_type, external_id)
    if record_type == "purchaseOrder":
        location = require_location(ctx.conn, body.get("location", 1), "location")
        transfer_location = None
        entity: int | None = int(body.get("vendor") or DEFAULT_VENDOR)
        header: dict[str, Any] = {"_approved": body.get("approved", True)}
    else:
        location = require_location(ctx.conn, body.get("from_location", 2), "from_location")
        transfer_location = require_location(ctx.conn, body.get("to_location", 1), "to_location")
        entity = None
        header = {"_shipped": body.get("shipped", True)}
    if body.get("memo"):
        header["memo"] = body["memo"]
    transaction_id = ctx.next_id("netsuite:transaction", 4321)
    tranid = f"{prefix}{ctx.next_id(f'netsuite:tranid:{tran_type}', 1001)}"
    ctx.conn.execute(
        "INSERT INTO ns_transaction (id, tranid, type, rectype, trandate, duedate, entity, externalid, "
        "memo, location, transferlocation, createddate, lastmodifieddate, record) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            transaction_id,
            tranid,
            tran_type,
            record_type,
            body.get("tranDate") or ctx.today,
            body.get("dueDate"),
            entity,
            external_id,
            body.get("memo"),
            location,
            transfer_location,
            ctx.now,
            ctx.now,
            json.dumps(header),
        ),
    )
    _set_custom(ctx, transaction_id, header, body)
    for index, line in enumerate(lines):
        _insert_line(ctx, transaction_id, line, f"item.items[{index}]")
    status = refresh_status(ctx, transaction_id)
    return {"id": str(transaction_id), "tranId": tranid, "status": status}


def _resolve_item(ctx: records.Ctx, line: dict[str, Any], path: str) -> sqlite3.Row:
    if "sku" in line and "item" not in line:
        row = ctx.conn.execute("SELECT id FROM ns_item WHERE itemid = ?", (line["sku"],)).fetchone()
        if row is None:
            raise invalid_reference("item", line["sku"], path)
        return require_item(ctx.conn, row["id"], path)
    return require_item(ctx.conn, line.get("item"), f"{path}.item")


def _insert_line(ctx: records.Ctx, transaction_id: int, line: dict[str, Any], path: str) -> int:
    item = _resolve_item(ctx, line, path)
    quantity = to_decimal(line.get("quantity", 1), f"{path}.quantity")
    if quantity <= 0:
        raise NsError(400, "INVALID_CONTENT", "Quantity must be greater than 0.", f"{path}.quantity")
    rate = to_decimal(line.get("rate", item["baseprice"] or 0), f"{path}.rate")
    location = require_location(ctx.conn, line.get("location"), f"{path}.location")
    line_id = ctx.conn.execute(
        "SELECT COALESCE(MAX(id), 0) + 1 FROM ns_transactionline WHERE [transaction] = ?", (transaction_id,)
    ).fetchone()[0]
    ctx.conn.execute(
        "INSERT INTO ns_transactionline ([transaction], id, linesequencenumber, item, quantity, rate, "
        "netamount, location, isclosed, itemtype, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}')",
        (
            transaction_id,
            line_id,
            line_id,
            item["id"],
            str(quantity),
            str(rate),
            str(rate * quantity),
            location,
            "T" if line.get("isClosed") else "F",
            item["itemtype"],
        ),
    )
    return line_id


def _set_custom(ctx: records.Ctx, transaction_id: int, header: dict[str, Any], body: dict[str, Any]) -> None:
    for name, value in custom_fields(body, "custbody").items():
        ensure_column(ctx.conn, "ns_transaction", name)
        header[name] = value
        ctx.conn.execute(
            f"UPDATE ns_transaction SET {name} = ? WHERE id = ?", (sql_value(value), transaction_id)
        )
    ctx.conn.execute(
        "UPDATE ns_transaction SET record = ?, lastmodifieddate = ? WHERE id = ?",
        (json.dumps(header), ctx.now, transaction_id),
    )


# -- update (PATCH) -------------------------------------------------------------------------------


def update_order(ctx: records.Ctx, row: sqlite3.Row, body: dict[str, Any], replace: set[str]) -> None:
    """PATCH a PO / TO: header fields, custom fields, and item lines (merge or ``replace=item``)."""
    header = json.loads(row["record"])
    if "item" in body and row["status"] == "H":
        raise NsError(400, "USER_ERROR", "You cannot edit a closed transaction.")
    for name, column in (("memo", "memo"), ("dueDate", "duedate"), ("tranDate", "trandate")):
        if name in body:
            header[name] = body[name]
            ctx.conn.execute(f"UPDATE ns_transaction SET {column} = ? WHERE id = ?", (body[name], row["id"]))
    if "location" in body and row["rectype"] == "purchaseOrder":
        location = require_location(ctx.conn, body["location"], "location")
        ctx.conn.execute("UPDATE ns_transaction SET location = ? WHERE id = ?", (location, row["id"]))
    _set_custom(ctx, row["id"], header, body)
    if "item" in body:
        _merge_lines(ctx, row["id"], (body.get("item") or {}).get("items") or [], "item" in replace)
    refresh_status(ctx, row["id"])


def _merge_lines(ctx: records.Ctx, transaction_id: int, lines: list[dict[str, Any]], replace: bool) -> None:
    existing = {line["id"]: line for line in item_lines(ctx.conn, transaction_id)}
    kept: set[int] = set()
    for index, line in enumerate(lines):
        path = f"item.items[{index}]"
        if line.get("line") is None:
            kept.add(_insert_line(ctx, transaction_id, line, path))
            continue
        line_id = to_int(line["line"], f"{path}.line")
        if line_id not in existing:
            raise invalid_reference("line", line_id, f"{path}.line")
        _update_line(ctx, existing[line_id], line, path)
        kept.add(line_id)
    if not replace:
        return
    for line_id, row in existing.items():
        if line_id in kept:
            continue
        if Decimal(str(row["quantityshiprecv"])) > 0:
            raise NsError(400, "USER_ERROR", f"Line {line_id} has been received and cannot be removed.")
        ctx.conn.execute(
            "DELETE FROM ns_transactionline WHERE [transaction] = ? AND id = ?", (transaction_id, line_id)
        )


def _update_line(ctx: records.Ctx, row: sqlite3.Row, line: dict[str, Any], path: str) -> None:
    received = Decimal(str(row["quantityshiprecv"]))
    quantity = Decimal(str(row["quantity"]))
    if "quantity" in line:
        quantity = to_decimal(line["quantity"], f"{path}.quantity")
        if quantity < received:
            raise NsError(400, "USER_ERROR", "The quantity cannot be less than the quantity received.")
    rate = to_decimal(line["rate"], f"{path}.rate") if "rate" in line else Decimal(str(row["rate"] or 0))
    closed = row["isclosed"] if "isClosed" not in line else ("T" if line["isClosed"] else "F")
    ctx.conn.execute(
        "UPDATE ns_transactionline SET quantity = ?, rate = ?, netamount = ?, isclosed = ? "
        "WHERE [transaction] = ? AND id = ?",
        (str(quantity), str(rate), str(rate * quantity), closed, row["transaction"], row["id"]),
    )


def close_order(ctx: records.Ctx, record_type: str, transaction_id: int) -> str:
    row = load_transaction(ctx.conn, record_type, str(transaction_id))
    ctx.conn.execute("UPDATE ns_transactionline SET isclosed = 'T' WHERE [transaction] = ?", (row["id"],))
    return refresh_status(ctx, row["id"])


# -- status ---------------------------------------------------------------------------------------


def order_status(rectype: str, header: dict[str, Any], lines: list[sqlite3.Row]) -> str:
    if lines and all(line["isclosed"] == "T" for line in lines):
        return "H"
    received = sum(Decimal(str(line["quantityshiprecv"])) for line in lines)
    expected = sum(
        Decimal(str(line["quantityshiprecv"])) if line["isclosed"] == "T" else Decimal(str(line["quantity"]))
        for line in lines
    )
    if rectype == "transferOrder":
        if not header.get("_shipped", True):
            return "B"
        return "G" if received >= expected else "F"
    if received == 0:
        return "B" if header.get("_approved", True) else "A"
    return "F" if received >= expected else "D"


def refresh_status(ctx: records.Ctx, transaction_id: int) -> str:
    row = ctx.conn.execute(
        "SELECT rectype, record FROM ns_transaction WHERE id = ?", (transaction_id,)
    ).fetchone()
    letter = order_status(row["rectype"], json.loads(row["record"]), item_lines(ctx.conn, transaction_id))
    ctx.conn.execute(
        "UPDATE ns_transaction SET status = ?, lastmodifieddate = ? WHERE id = ?",
        (letter, ctx.now, transaction_id),
    )
    refresh_total(ctx.conn, transaction_id)
    return letter


# -- transform: itemReceipt ------------------------------------------------------------------------


def receive(ctx: records.Ctx, source_type: str, source_ref: str, target: str, body: dict[str, Any]) -> int:
    """``!transform/itemReceipt`` from a PO or TO; returns the new item receipt's id."""
    if target != "itemReceipt":
        raise NsError(400, "INVALID_CONTENT", f"Transform from {source_type} to {target} is not supported.")
    order = load_transaction(ctx.conn, source_type, source_ref)
    assert_external_id_free(ctx.conn, "itemReceipt", body.get("externalId"))
    if order["status"] not in RECEIVABLE[source_type]:
        raise NsError(400, "USER_ERROR", NOTHING_TO_DO, "item.items")

    def open_quantity(line: sqlite3.Row) -> Decimal:
        if line["isclosed"] == "T":
            return Decimal(0)
        return Decimal(str(line["quantity"])) - Decimal(str(line["quantityshiprecv"]))

    selected = records._selected_quantities(ctx, order, body, open_quantity)
    header: dict[str, Any] = {k: body[k] for k in ("memo", "tranDate") if k in body}
    header.update(custom_fields(body, "custbody"))
    default_location = order["transferlocation"] if source_type == "transferOrder" else order["location"]
    new_id = ctx.next_id("netsuite:transaction", 4321)
    tranid = f"IR{ctx.next_id('netsuite:tranid:ItemRcpt', 1001)}"
    ctx.conn.execute(
        "INSERT INTO ns_transaction (id, tranid, type, rectype, trandate, entity, externalid, memo, "
        "createdfrom, location, createddate, lastmodifieddate, record) "
        "VALUES (?, ?, 'ItemRcpt', 'itemReceipt', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new_id,
            tranid,
            body.get("tranDate") or ctx.today,
            order["entity"],
            body.get("externalId"),
            body.get("memo"),
            order["id"],
            default_location,
            ctx.now,
            ctx.now,
            json.dumps(header),
        ),
    )
    for sequence, (line, quantity, spec) in enumerate(selected, start=1):
        location = require_location(ctx.conn, spec.get("location"), "item.items.location")
        location = location or line["location"] or default_location
        ctx.conn.execute(
            "INSERT INTO ns_transactionline ([transaction], id, linesequencenumber, item, quantity, rate, "
            "netamount, location, itemtype, createdfrom, orderline, record) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}')",
            (
                new_id,
                sequence,
                sequence,
                line["item"],
                str(quantity),
                str(line["rate"] or 0),
                str(Decimal(str(line["rate"] or 0)) * quantity),
                location,
                line["itemtype"],
                order["id"],
                line["id"],
            ),
        )
        ctx.conn.execute(
            "UPDATE ns_transactionline SET quantityshiprecv = quantityshiprecv + ? "
            "WHERE [transaction] = ? AND id = ?",
            (str(quantity), order["id"], line["id"]),
        )
        _add_stock(ctx.conn, line["item"], location, quantity)
    refresh_status(ctx, order["id"])
    return new_id


def _add_stock(conn: sqlite3.Connection, item_id: int, location: int | None, quantity: Decimal) -> None:
    if location is None:
        return
    conn.execute(
        "INSERT INTO ns_aggregateitemlocation (item, location, quantityonhand, quantityavailable) "
        "VALUES (?, ?, ?, ?) ON CONFLICT(item, location) DO UPDATE SET "
        "quantityonhand = quantityonhand + excluded.quantityonhand, "
        "quantityavailable = quantityavailable + excluded.quantityavailable",
        (item_id, location, str(quantity), str(quantity)),
    )


# -- control plane and state ------------------------------------------------------------------------


def control_routes(sandbox: Any) -> list[BaseRoute]:
    """Control routes; ``sandbox`` is the NetSuite `Sandbox` (its world and clock)."""

    def ctx(conn: sqlite3.Connection) -> records.Ctx:
        now = sandbox.world.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        return records.Ctx(conn, now, sandbox.world.next_id, "")

    def creator(record_type: str):
        async def create(request: Request) -> Response:
            body = json.loads(await request.body() or b"{}")
            try:
                with sandbox.world.tx() as conn:
                    return JSONResponse(create_order(ctx(conn), record_type, body))
            except NsError as error:
                return JSONResponse({"error": error.detail, "code": error.code}, status_code=error.status)

        return create

    def closer(record_type: str):
        def close(request: Request) -> Response:
            try:
                with sandbox.world.tx() as conn:
                    letter = close_order(ctx(conn), record_type, int(request.path_params["id"]))
            except (NsError, ValueError) as error:
                return JSONResponse({"error": str(error)}, status_code=404)
            return JSONResponse({"id": request.path_params["id"], "status": letter})

        return close

    return [
        Route("/purchase_orders", creator("purchaseOrder"), methods=["POST"]),
        Route("/transfer_orders", creator("transferOrder"), methods=["POST"]),
        Route("/purchase_orders/{id}/close", closer("purchaseOrder"), methods=["POST"]),
        Route("/transfer_orders/{id}/close", closer("transferOrder"), methods=["POST"]),
    ]


def state(conn: sqlite3.Connection) -> dict[str, Any]:
    rows = conn.execute(
        "SELECT * FROM ns_transaction WHERE type IN ('PurchOrd', 'TrnfrOrd', 'ItemRcpt') ORDER BY id"
    ).fetchall()
    return {
        "purchase_orders": [_state_order(conn, row) for row in rows if row["type"] == "PurchOrd"],
        "transfer_orders": [_state_order(conn, row) for row in rows if row["type"] == "TrnfrOrd"],
        "item_receipts": [_state_receipt(conn, row) for row in rows if row["type"] == "ItemRcpt"],
    }


def _state_lines(conn: sqlite3.Connection, transaction_id: int) -> list[dict[str, Any]]:
    result = []
    for line in item_lines(conn, transaction_id):
        sku = conn.execute("SELECT itemid FROM ns_item WHERE id = ?", (line["item"],)).fetchone()
        result.append(
            {
                "line": line["id"],
                "item": str(line["item"]),
                "sku": sku["itemid"] if sku else None,
                "quantity": number(line["quantity"]),
                "quantityReceived": number(line["quantityshiprecv"]),
                "location": line["location"],
                "isClosed": line["isclosed"] == "T",
                "orderLine": line["orderline"],
            }
        )
    return result


def _state_order(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    header = json.loads(row["record"])
    return {
        "id": str(row["id"]),
        "type": row["rectype"],
        "tranId": row["tranid"],
        "status": row["status"],
        "location": row["location"],
        "transferLocation": row["transferlocation"],
        "vendor": row["entity"],
        "externalId": row["externalid"],
        "custbody_sent_to_3pl": row["custbody_sent_to_3pl"] == "T",
        "custbody_dcl_po_number": row["custbody_dcl_po_number"],
        "custom": {k: v for k, v in header.items() if k.startswith("custbody_")},
        "lines": _state_lines(conn, row["id"]),
    }


def _state_receipt(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "tranId": row["tranid"],
        "externalId": row["externalid"],
        "createdFrom": str(row["createdfrom"]),
        "tranDate": row["trandate"],
        "lines": _state_lines(conn, row["id"]),
    }
