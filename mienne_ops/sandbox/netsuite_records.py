"""NetSuite sandbox record operations: sales orders, customers, transforms, and their GET shapes.

Writes go to the relational tables of `netsuite_store` (so SuiteQL sees them at once); reads render
the REST representation: string ids, ``links``, references ``{id, refName, links}``, enums
``{id, refName}``, sublists as links unless expanded. Every function runs inside the caller's
`World.tx()` and raises `NsError` for NetSuite's 4xx answers.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mienne_ops.sandbox import netsuite_refunds as refunds
from mienne_ops.sandbox import netsuite_returns as returns
from mienne_ops.sandbox.netsuite_store import (
    CUSTOMER_FIELDS,
    ITEM_RECORD_TYPES,
    LINE_FIELDS,
    NEGATIVE_QUANTITY_TYPES,
    NOTHING_TO_DO,
    PACKAGE_SUBLISTS,
    PAYMENT_METHODS,
    SALES_ORDER_FIELDS,
    TRANID_PREFIX,
    TRANSACTION_TYPES,
    AccountSettings,
    NsError,
    assert_external_id_free,
    check_property_names,
    custom_fields,
    ensure_column,
    invalid_reference,
    item_lines,
    kit_member_lines,
    kit_members,
    load_transaction,
    not_found,
    number,
    ref_id,
    refresh_total,
    require_customer,
    require_item,
    require_location,
    require_ship_method,
    sales_order_status,
    sql_value,
    status_name,
    to_decimal,
    to_int,
)


@dataclass
class Ctx:
    """What a record operation needs besides the body: the connection, clock, id source, URLs."""

    conn: sqlite3.Connection
    now: str
    next_id: Any  # callable(name, start) -> int
    record_root: str  # ".../services/rest/record/v1"
    name_validation: str = "Warning"
    account: AccountSettings = field(default_factory=AccountSettings)

    @property
    def today(self) -> str:
        return self.now[:10]

    def href(self, record_type: str, record_id: Any) -> str:
        return f"{self.record_root}/{record_type}/{record_id}"


# -- sales orders ---------------------------------------------------------------------------------


def create_sales_order(ctx: Ctx, body: dict[str, Any], external_id: str | None = None) -> int:
    check_property_names(body, SALES_ORDER_FIELDS, ctx.name_validation)
    external_id = external_id or body.get("externalId")
    assert_external_id_free(ctx.conn, "salesOrder", external_id)
    if ref_id(body.get("entity")) is None and not isinstance(body.get("entity"), dict):
        raise NsError(400, "USER_ERROR", "Please enter value(s) for: Customer", "entity")
    lines = (body.get("item") or {}).get("items") or []
    if not lines:
        raise NsError(400, "USER_ERROR", NOTHING_TO_DO, "item")
    transaction_id = ctx.next_id("netsuite:transaction", 4321)
    tranid = f"SO{ctx.next_id('netsuite:tranid:SalesOrd', 1001)}"
    ctx.conn.execute(
        "INSERT INTO ns_transaction (id, tranid, type, rectype, trandate, externalid, createddate, record) "
        "VALUES (?, ?, 'SalesOrd', 'salesOrder', ?, ?, ?, '{}')",
        (transaction_id, tranid, body.get("tranDate") or ctx.today, external_id, ctx.now),
    )
    header = {"orderStatus": {"id": "A"}}
    _apply_header(ctx, transaction_id, header, {**body, "externalId": external_id})
    _merge_lines(ctx, transaction_id, lines, replace=True)
    refresh_sales_order(ctx, transaction_id)
    return transaction_id


def update_sales_order(ctx: Ctx, row: sqlite3.Row, body: dict[str, Any], replace: set[str]) -> None:
    check_property_names(body, SALES_ORDER_FIELDS, ctx.name_validation)
    header = json.loads(row["record"])
    if header.get("_cancelled") or row["status"] in ("C", "H"):
        raise NsError(400, "USER_ERROR", "You cannot edit a closed or cancelled transaction.")
    _apply_header(ctx, row["id"], header, {k: v for k, v in body.items() if k != "externalId"})
    if "item" in body:
        _merge_lines(ctx, row["id"], (body.get("item") or {}).get("items") or [], "item" in replace)
    refresh_sales_order(ctx, row["id"])


def _apply_header(ctx: Ctx, transaction_id: int, header: dict[str, Any], body: dict[str, Any]) -> None:
    conn = ctx.conn
    if "entity" in body:
        header["entity"] = {"id": str(require_customer(conn, body["entity"]))}
    if "location" in body:
        location = require_location(conn, body["location"], "location")
        header["location"] = {"id": str(location)} if location else None
    if "shipMethod" in body:
        method = require_ship_method(conn, body["shipMethod"])
        header["shipMethod"] = {"id": str(method)} if method else None
    if "orderStatus" in body:
        letter = ref_id(body["orderStatus"])
        if letter not in ("A", "B"):
            raise NsError(400, "INVALID_CONTENT", f"Invalid orderStatus {letter!r}.", "orderStatus")
        header["orderStatus"] = {"id": letter}
    known = SALES_ORDER_FIELDS - {"entity", "location", "shipMethod", "orderStatus", "item", "tranId"}
    header.update({k: v for k, v in body.items() if k in known})
    for name, value in custom_fields(body, "custbody").items():
        ensure_column(conn, "ns_transaction", name)
        header[name] = value
        conn.execute(f"UPDATE ns_transaction SET {name} = ? WHERE id = ?", (sql_value(value), transaction_id))
    conn.execute(
        "UPDATE ns_transaction SET entity = ?, location = ?, shipmethod = ?, otherrefnum = ?, memo = ?, "
        "trandate = COALESCE(?, trandate), shipdate = ?, lastmodifieddate = ?, record = ? WHERE id = ?",
        (
            ref_id(header.get("entity")),
            ref_id(header.get("location")),
            ref_id(header.get("shipMethod")),
            header.get("otherRefNum"),
            header.get("memo"),
            header.get("tranDate"),
            header.get("shipDate"),
            ctx.now,
            json.dumps(header),
            transaction_id,
        ),
    )


def _merge_lines(ctx: Ctx, transaction_id: int, lines: list[dict[str, Any]], replace: bool) -> None:
    """Merge (a line with ``line`` updates it, without adds one) or replace the item sublist."""
    conn = ctx.conn
    existing = {row["id"]: row for row in item_lines(conn, transaction_id)}
    kept: set[int] = set()
    for index, line in enumerate(lines):
        path = f"item.items[{index}]"
        check_property_names(line, LINE_FIELDS, ctx.name_validation, f"{path}.")
        if line.get("line") is not None:
            line_id = to_int(line["line"], f"{path}.line")
            if line_id not in existing:
                raise invalid_reference("line", line_id, f"{path}.line")
            _update_line(ctx, existing[line_id], line, path)
            kept.add(line_id)
        else:
            kept.add(_insert_line(ctx, transaction_id, line, path))
    if replace:
        for line_id, row in existing.items():
            if line_id in kept:
                continue
            if Decimal(str(row["quantityshiprecv"])) > 0:
                raise NsError(400, "USER_ERROR", f"Line {line_id} has been fulfilled and cannot be removed.")
            conn.execute(
                "DELETE FROM ns_transactionline WHERE [transaction] = ? AND (id = ? OR kitmemberof = ?)",
                (transaction_id, line_id, line_id),
            )


def _insert_line(ctx: Ctx, transaction_id: int, line: dict[str, Any], path: str) -> int:
    conn = ctx.conn
    item = require_item(conn, line.get("item"), f"{path}.item")
    quantity = to_decimal(line.get("quantity", 1), f"{path}.quantity")
    if quantity <= 0:
        raise NsError(400, "INVALID_CONTENT", "Quantity must be greater than 0.", f"{path}.quantity")
    rate = to_decimal(line.get("rate", item["baseprice"] or 0), f"{path}.rate")
    location = require_location(conn, line.get("location"), f"{path}.location")
    line_id = conn.execute(
        "SELECT COALESCE(MAX(id), 0) + 1 FROM ns_transactionline WHERE [transaction] = ?", (transaction_id,)
    ).fetchone()[0]
    amount = to_decimal(line["amount"], f"{path}.amount") if "amount" in line else rate * quantity
    record = {k: v for k, v in line.items() if k in ("description", "price", "taxCode", "units")}
    conn.execute(
        "INSERT INTO ns_transactionline ([transaction], id, linesequencenumber, item, quantity, rate, "
        "netamount, "
        "location, isclosed, itemtype, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            transaction_id,
            line_id,
            line_id,
            item["id"],
            str(-quantity),
            str(rate),
            str(-amount),
            location,
            "T" if line.get("isClosed") else "F",
            item["itemtype"],
            json.dumps(record),
        ),
    )
    _set_custom_columns(conn, transaction_id, line_id, line)
    _rebuild_kit_members(ctx, transaction_id, line_id)
    return line_id


def _update_line(ctx: Ctx, row: sqlite3.Row, line: dict[str, Any], path: str) -> None:
    conn = ctx.conn
    fulfilled = Decimal(str(row["quantityshiprecv"]))
    item_changed = False
    if "item" in line and fulfilled == 0:
        item = require_item(conn, line["item"], f"{path}.item")
        item_changed = item["id"] != row["item"]
        conn.execute(
            "UPDATE ns_transactionline SET item = ?, itemtype = ? WHERE [transaction] = ? AND id = ?",
            (item["id"], item["itemtype"], row["transaction"], row["id"]),
        )
    quantity = abs(Decimal(str(row["quantity"])))
    if "quantity" in line:
        quantity = to_decimal(line["quantity"], f"{path}.quantity")
        if quantity < fulfilled:
            raise NsError(400, "USER_ERROR", "The quantity cannot be less than the quantity fulfilled.")
    rate = to_decimal(line["rate"], f"{path}.rate") if "rate" in line else Decimal(str(row["rate"]))
    closed = row["isclosed"] if "isClosed" not in line else ("T" if line["isClosed"] else "F")
    location = row["location"]
    if "location" in line:
        location = require_location(conn, line["location"], f"{path}.location")
    conn.execute(
        "UPDATE ns_transactionline SET quantity = ?, rate = ?, netamount = ?, isclosed = ?, location = ? "
        "WHERE [transaction] = ? AND id = ?",
        (str(-quantity), str(rate), str(-(rate * quantity)), closed, location, row["transaction"], row["id"]),
    )
    _set_custom_columns(conn, row["transaction"], row["id"], line)
    if item_changed:
        _rebuild_kit_members(ctx, row["transaction"], row["id"])
    else:
        _follow_kit_line(ctx, row["transaction"], row["id"])


# -- kit component lines --------------------------------------------------------------------------
# A kit on a sales order is the kit line plus one hidden line per BOM member whose ``kitmemberof`` is
# the kit line's id; a member line's quantity is the kit quantity times the member quantity, and it
# follows its kit line (quantity, location, closing). Public SuiteQL code filters these rows with
# ``kitmemberof IS NULL``; item fulfillments carry them (see `fulfil`).


def _rebuild_kit_members(ctx: Ctx, transaction_id: int, kit_line_id: int) -> None:
    """(Re)create the member lines of a line from its item's BOM (none unless the item is a kit)."""
    conn = ctx.conn
    conn.execute(
        "DELETE FROM ns_transactionline WHERE [transaction] = ? AND kitmemberof = ?",
        (transaction_id, kit_line_id),
    )
    kit = conn.execute(
        "SELECT * FROM ns_transactionline WHERE [transaction] = ? AND id = ?", (transaction_id, kit_line_id)
    ).fetchone()
    if kit["itemtype"] != "Kit":
        return
    kit_quantity = Decimal(str(kit["quantity"]))  # signed like the kit line
    for member in kit_members(conn, kit["item"]):
        member_id = conn.execute(
            "SELECT COALESCE(MAX(id), 0) + 1 FROM ns_transactionline WHERE [transaction] = ?",
            (transaction_id,),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO ns_transactionline ([transaction], id, linesequencenumber, item, quantity, "
            "location, isclosed, itemtype, kitmemberof, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '{}')",
            (
                transaction_id,
                member_id,
                member_id,
                member["item"],
                str(kit_quantity * Decimal(str(member["quantity"]))),
                kit["location"],
                kit["isclosed"],
                member["itemtype"],
                kit_line_id,
            ),
        )


def _follow_kit_line(ctx: Ctx, transaction_id: int, kit_line_id: int) -> None:
    """Member lines take the kit line's quantity (times their BOM quantity), location and closing."""
    conn = ctx.conn
    kit = conn.execute(
        "SELECT * FROM ns_transactionline WHERE [transaction] = ? AND id = ?", (transaction_id, kit_line_id)
    ).fetchone()
    per_kit = {member["item"]: Decimal(str(member["quantity"])) for member in kit_members(conn, kit["item"])}
    for member in kit_member_lines(conn, transaction_id, kit_line_id):
        quantity = Decimal(str(kit["quantity"])) * per_kit.get(member["item"], Decimal(0))
        conn.execute(
            "UPDATE ns_transactionline SET quantity = ?, location = ?, isclosed = ? "
            "WHERE [transaction] = ? AND id = ?",
            (str(quantity), kit["location"], kit["isclosed"], transaction_id, member["id"]),
        )


def _set_custom_columns(conn: sqlite3.Connection, transaction_id: int, line_id: int, line: dict) -> None:
    for name, value in custom_fields(line, "custcol").items():
        ensure_column(conn, "ns_transactionline", name)
        conn.execute(
            f"UPDATE ns_transactionline SET {name} = ? WHERE [transaction] = ? AND id = ?",
            (sql_value(value), transaction_id, line_id),
        )


def refresh_sales_order(ctx: Ctx, transaction_id: int) -> str:
    row = ctx.conn.execute("SELECT record FROM ns_transaction WHERE id = ?", (transaction_id,)).fetchone()
    letter = sales_order_status(json.loads(row["record"]), item_lines(ctx.conn, transaction_id))
    ctx.conn.execute(
        "UPDATE ns_transaction SET status = ?, lastmodifieddate = ? WHERE id = ?",
        (letter, ctx.now, transaction_id),
    )
    refresh_total(ctx.conn, transaction_id)
    return letter


def cancel_sales_order(ctx: Ctx, transaction_id: int) -> str:
    """Close every line; nothing fulfilled -> C Cancelled, else H Closed (control plane only)."""
    row = load_transaction(ctx.conn, "salesOrder", str(transaction_id))
    header = json.loads(row["record"])
    ctx.conn.execute(
        "UPDATE ns_transactionline SET isclosed = 'T' WHERE [transaction] = ?", (transaction_id,)
    )
    shipped = sum(Decimal(str(line["quantityshiprecv"])) for line in item_lines(ctx.conn, transaction_id))
    if shipped == 0:
        header["_cancelled"] = True
    ctx.conn.execute(
        "UPDATE ns_transaction SET record = ? WHERE id = ?", (json.dumps(header), transaction_id)
    )
    return refresh_sales_order(ctx, transaction_id)


# -- generic header PATCH of transforms' targets ----------------------------------------------------


def update_simple_transaction(ctx: Ctx, row: sqlite3.Row, body: dict[str, Any], stock: Any) -> None:
    """PATCH of an itemFulfillment / cashSale header (memo, custom fields, shipStatus)."""
    header = json.loads(row["record"])
    for name in ("memo", "tranDate", "shippedDate"):
        if name in body:
            header[name] = body[name]
    if row["type"] == "RtnAuth":
        returns.update(ctx, row, body, header)  # approve / cancel / close lines, then the letter
    if row["type"] == "ItemShip" and "shipStatus" in body:
        letter = ref_id(body["shipStatus"])
        if letter not in ("A", "B", "C"):
            raise NsError(400, "INVALID_CONTENT", f"Invalid shipStatus {letter!r}.", "shipStatus")
        if letter == "C" and row["status"] != "C":
            stock(row["id"])
        ctx.conn.execute("UPDATE ns_transaction SET status = ? WHERE id = ?", (letter, row["id"]))
    for name, value in custom_fields(body, "custbody").items():
        ensure_column(ctx.conn, "ns_transaction", name)
        header[name] = value
        ctx.conn.execute(f"UPDATE ns_transaction SET {name} = ? WHERE id = ?", (sql_value(value), row["id"]))
    ctx.conn.execute(
        "UPDATE ns_transaction SET memo = ?, record = ?, lastmodifieddate = ? WHERE id = ?",
        (header.get("memo"), json.dumps(header), ctx.now, row["id"]),
    )


# -- transforms -----------------------------------------------------------------------------------


def transform(ctx: Ctx, source_type: str, source_ref: str, target: str, body: dict[str, Any]) -> int:
    if refunds.handles(source_type, target):
        return refunds.transform(ctx, source_type, source_ref, target, body)
    if source_type != "salesOrder" or target not in ("itemFulfillment", "cashSale", "invoice"):
        raise NsError(400, "INVALID_CONTENT", f"Transform from {source_type} to {target} is not supported.")
    order = load_transaction(ctx.conn, "salesOrder", source_ref)
    assert_external_id_free(ctx.conn, target, body.get("externalId"))
    if target == "itemFulfillment":
        return fulfil(ctx, order, body)
    return bill(ctx, order, target, body)


def _selected_quantities(
    ctx: Ctx, order: sqlite3.Row, body: dict[str, Any], open_quantity: Any
) -> list[tuple[sqlite3.Row, Decimal, dict[str, Any]]]:
    """(SO line, quantity, request line) for each line the transform takes.

    Lines not named in ``item.items`` are taken with their defaults ("mark all" accounts); a named
    line with ``itemReceive: false`` is skipped; asking for more than is open fails the transform.
    """
    requested: dict[int, dict[str, Any]] = {}
    for index, line in enumerate((body.get("item") or {}).get("items") or []):
        requested[to_int(line.get("orderLine"), f"item.items[{index}].orderLine")] = line
    lines = {row["id"]: row for row in item_lines(ctx.conn, order["id"])}
    unknown = set(requested) - set(lines)
    if unknown:
        raise NsError(400, "USER_ERROR", NOTHING_TO_DO, "item.items")
    selected = []
    for line_id, row in lines.items():
        spec = requested.get(line_id, {})
        if spec.get("itemReceive") is False or spec.get("apply") is False:
            continue
        available = open_quantity(row)
        quantity = to_decimal(spec["quantity"], "quantity") if "quantity" in spec else available
        if quantity > available or quantity < 0:
            raise NsError(400, "USER_ERROR", NOTHING_TO_DO, "item.items")
        if quantity > 0:
            selected.append((row, quantity, spec))
    if not selected:
        raise NsError(400, "USER_ERROR", NOTHING_TO_DO, "item.items")
    return selected


def fulfil(ctx: Ctx, order: sqlite3.Row, body: dict[str, Any]) -> int:
    if order["status"] not in ("B", "D", "E"):
        raise NsError(400, "USER_ERROR", NOTHING_TO_DO, "item.items")

    def open_quantity(row: sqlite3.Row) -> Decimal:
        if row["isclosed"] == "T":
            return Decimal(0)
        return abs(Decimal(str(row["quantity"]))) - Decimal(str(row["quantityshiprecv"]))

    selected = _selected_quantities(ctx, order, body, open_quantity)
    ship_status = ref_id(body.get("shipStatus")) or "C"
    if ship_status not in ("A", "B", "C"):
        raise NsError(400, "INVALID_CONTENT", f"Invalid shipStatus {ship_status!r}.", "shipStatus")
    header: dict[str, Any] = {k: body[k] for k in ("memo", "tranDate", "shippedDate") if k in body}
    header.update(_packages(ctx, order, body))
    header.update(custom_fields(body, "custbody"))
    new_id = _insert_child(ctx, order, "itemFulfillment", ship_status, body, header)
    sequence = 0
    for row, quantity, spec in selected:
        location = require_location(ctx.conn, spec.get("location"), "item.items.location") or row["location"]
        location = location or order["location"]
        if location is None:
            raise NsError(400, "USER_ERROR", "Please enter value(s) for: Inventory Location", "item.items")
        sequence += 1
        kit_line = sequence
        _insert_child_line(ctx, new_id, sequence, order, row, quantity, location)
        _add_shipped(ctx, order["id"], row["id"], quantity)
        # Fulfilling a kit line fulfils its members: they are carried as lines of the fulfillment.
        for member in kit_member_lines(ctx.conn, order["id"], row["id"]):
            per_kit = abs(Decimal(str(member["quantity"]))) / abs(Decimal(str(row["quantity"])))
            member_quantity = quantity * per_kit
            sequence += 1
            _insert_child_line(ctx, new_id, sequence, order, member, member_quantity, location, kit_line)
            _add_shipped(ctx, order["id"], member["id"], member_quantity)
    if ship_status == "C":
        decrement_stock(ctx.conn, new_id)
    refresh_sales_order(ctx, order["id"])
    return new_id


def _add_shipped(ctx: Ctx, order_id: int, line_id: int, quantity: Decimal) -> None:
    ctx.conn.execute(
        "UPDATE ns_transactionline SET quantityshiprecv = quantityshiprecv + ? "
        "WHERE [transaction] = ? AND id = ?",
        (str(quantity), order_id, line_id),
    )


def _packages(ctx: Ctx, order: sqlite3.Row, body: dict[str, Any]) -> dict[str, Any]:
    """The fulfillment's package sublist: the one the order's ship method has, and only that one.

    An integrated UPS / FedEx ship method gives the form a ``packageUps`` / ``packageFedEx`` list
    instead of ``package``; a sublist the form lacks is an unknown field (dropped under the default
    ``X-NetSuite-PropertyNameValidation: Warning``, 400 under ``Error``), so its tracking is lost.
    """
    carrier = ctx.account.integrated_ship_methods.get(order["shipmethod"] or 0)
    name, suffix = PACKAGE_SUBLISTS[carrier]
    for other, _ in PACKAGE_SUBLISTS.values():
        if other != name and other in body and ctx.name_validation.lower() == "error":
            raise NsError(400, "INVALID_CONTENT", f"Unknown field '{other}'.", other)
    entries = (body.get(name) or {}).get("items") or []
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise NsError(400, "INVALID_CONTENT", f"Invalid value for the sublist '{name}'.", name)
    # `package` (as stored) keeps the common shape, so state and reads need not know the carrier.
    common = [
        {field: entry[f"{field}{suffix}"] for field in _PACKAGE_FIELDS if f"{field}{suffix}" in entry}
        for entry in entries
    ]
    return {"packageSublist": name, "package": common, name: entries}


_PACKAGE_FIELDS = ("packageTrackingNumber", "packageWeight", "packageDescr")


def bill(ctx: Ctx, order: sqlite3.Row, target: str, body: dict[str, Any]) -> int:
    if order["status"] in ("A", "C"):
        raise NsError(400, "USER_ERROR", NOTHING_TO_DO, "item.items")

    def open_quantity(row: sqlite3.Row) -> Decimal:
        return Decimal(str(row["quantityshiprecv"])) - Decimal(str(row["quantitybilled"]))

    selected = _selected_quantities(ctx, order, body, open_quantity)
    header: dict[str, Any] = {
        k: body[k] for k in ("memo", "tranDate", "paymentMethod", "account") if k in body
    }
    if target == "cashSale":
        _check_payment_method(
            ctx, header.get("paymentMethod") or json.loads(order["record"]).get("paymentMethod")
        )
    header.update(custom_fields(body, "custbody"))
    new_id = _insert_child(ctx, order, target, "B" if target == "cashSale" else "A", body, header)
    for sequence, (row, quantity, _spec) in enumerate(selected, start=1):
        _insert_child_line(ctx, new_id, sequence, order, row, quantity, row["location"])
        ctx.conn.execute(
            "UPDATE ns_transactionline SET quantitybilled = quantitybilled + ? "
            "WHERE [transaction] = ? AND id = ?",
            (str(quantity), order["id"], row["id"]),
        )
    refresh_total(ctx.conn, new_id)
    refunds.bill_shipping(ctx.conn, order, new_id)
    refresh_sales_order(ctx, order["id"])
    return new_id


def _check_payment_method(ctx: Ctx, value: Any) -> None:
    if ref_id(value) is None:
        if ctx.account.cash_sale_requires_payment_method:
            raise NsError(400, "USER_ERROR", "Please enter value(s) for: Payment Method", "paymentMethod")
        return
    if to_int(ref_id(value), "paymentMethod") not in PAYMENT_METHODS:
        raise invalid_reference("paymentMethod", ref_id(value), "paymentMethod")


def _insert_child(
    ctx: Ctx, order: sqlite3.Row, target: str, status: str, body: dict[str, Any], header: dict[str, Any]
) -> int:
    tran_type = TRANSACTION_TYPES[target]
    new_id = ctx.next_id("netsuite:transaction", 4321)
    tranid = f"{TRANID_PREFIX[tran_type]}{ctx.next_id(f'netsuite:tranid:{tran_type}', 1001)}"
    ctx.conn.execute(
        "INSERT INTO ns_transaction (id, tranid, type, rectype, status, trandate, entity, externalid, memo, "
        "createdfrom, location, shipmethod, createddate, lastmodifieddate, record) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new_id,
            tranid,
            tran_type,
            target,
            status,
            body.get("tranDate") or ctx.today,
            order["entity"],
            body.get("externalId"),
            body.get("memo"),
            order["id"],
            order["location"],
            order["shipmethod"],
            ctx.now,
            ctx.now,
            json.dumps(header),
        ),
    )
    for name, value in custom_fields(body, "custbody").items():
        ensure_column(ctx.conn, "ns_transaction", name)
        ctx.conn.execute(f"UPDATE ns_transaction SET {name} = ? WHERE id = ?", (sql_value(value), new_id))
    return new_id


def _insert_child_line(
    ctx: Ctx,
    new_id: int,
    sequence: int,
    order: sqlite3.Row,
    row: sqlite3.Row,
    quantity: Decimal,
    location: Any,
    kit_member_of: int | None = None,
) -> None:
    rate = Decimal(str(row["rate"] or 0))
    sign = -1 if order["type"] in NEGATIVE_QUANTITY_TYPES else 1
    ctx.conn.execute(
        "INSERT INTO ns_transactionline ([transaction], id, linesequencenumber, item, quantity, rate, "
        "netamount, location, itemtype, createdfrom, orderline, custcol_shopify_line_id, kitmemberof, "
        "record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}')",
        (
            new_id,
            sequence,
            sequence,
            row["item"],
            str(sign * quantity),
            str(rate),
            str(sign * rate * quantity),
            location,
            row["itemtype"],
            order["id"],
            row["id"],
            row["custcol_shopify_line_id"],
            kit_member_of,
        ),
    )


def decrement_stock(conn: sqlite3.Connection, fulfillment_id: int) -> None:
    """A shipped fulfilment takes stock out of its locations: a kit through its member lines."""
    lines = conn.execute(
        "SELECT * FROM ns_transactionline WHERE [transaction] = ? AND mainline = 'F' AND itemtype != 'Kit'",
        (fulfillment_id,),
    ).fetchall()
    for line in lines:
        quantity = abs(Decimal(str(line["quantity"])))
        conn.execute(
            "UPDATE ns_aggregateitemlocation SET quantityonhand = quantityonhand - ?, "
            "quantityavailable = quantityavailable - ? WHERE item = ? AND location = ?",
            (str(quantity), str(quantity), line["item"], line["location"]),
        )


# -- customers ------------------------------------------------------------------------------------


def write_customer(
    ctx: Ctx, body: dict[str, Any], existing: sqlite3.Row | None, external_id: str | None
) -> int:
    check_property_names(body, CUSTOMER_FIELDS, ctx.name_validation)
    record = json.loads(existing["record"]) if existing else {}
    record.update({k: v for k, v in body.items() if k in CUSTOMER_FIELDS and k != "externalId"})
    if not (record.get("companyName") or (record.get("firstName") and record.get("lastName"))):
        raise NsError(400, "USER_ERROR", "Please enter value(s) for: First Name, Last Name", "lastName")
    _check_subsidiary(ctx, record, creating=existing is None)
    if existing is None:
        external_id = external_id or body.get("externalId")
        if (
            external_id
            and ctx.conn.execute("SELECT 1 FROM ns_customer WHERE externalid = ?", (external_id,)).fetchone()
        ):
            raise NsError(
                400, "DUP_RCRD", f"A customer record with external ID {external_id} already exists."
            )
        customer_id = ctx.next_id("netsuite:customer", 9001)
        ctx.conn.execute(
            "INSERT INTO ns_customer (id, entityid, externalid, datecreated, record) "
            "VALUES (?, ?, ?, ?, '{}')",
            (customer_id, record.get("entityId") or f"CUST{customer_id}", external_id, ctx.now),
        )
    else:
        customer_id = existing["id"]
    ctx.conn.execute(
        "UPDATE ns_customer SET email = ?, firstname = ?, lastname = ?, companyname = ?, phone = ?, "
        "isinactive = ?, isperson = ?, lastmodifieddate = ?, record = ? WHERE id = ?",
        (
            record.get("email"),
            record.get("firstName"),
            record.get("lastName"),
            record.get("companyName"),
            record.get("phone"),
            "T" if record.get("isInactive") else "F",
            "F" if record.get("isPerson") is False else "T",
            ctx.now,
            json.dumps(record),
            customer_id,
        ),
    )
    return customer_id


def _check_subsidiary(ctx: Ctx, record: dict[str, Any], *, creating: bool) -> None:
    """OneWorld: every customer belongs to a (primary) subsidiary, mandatory on create."""
    if not ctx.account.one_world:
        record.pop("subsidiary", None)  # no such field outside OneWorld (dropped, as a Warning)
        return
    value = ref_id(record.get("subsidiary"))
    if value is None:
        if creating:
            raise NsError(400, "USER_ERROR", "Please enter value(s) for: Primary Subsidiary", "subsidiary")
        return
    if to_int(value, "subsidiary") not in ctx.account.subsidiaries:
        raise invalid_reference("subsidiary", value, "subsidiary")


def load_customer(conn: sqlite3.Connection, ref: str) -> sqlite3.Row:
    if ref.startswith("eid:"):
        row = conn.execute("SELECT * FROM ns_customer WHERE externalid = ?", (ref[4:],)).fetchone()
    else:
        row = (
            conn.execute("SELECT * FROM ns_customer WHERE id = ?", (ref,)).fetchone()
            if ref.isdigit()
            else None
        )
    if row is None:
        raise not_found("customer", ref)
    return row


def render_customer(ctx: Ctx, row: sqlite3.Row) -> dict[str, Any]:
    record = json.loads(row["record"])
    result = {
        "links": [{"rel": "self", "href": ctx.href("customer", row["id"])}],
        "id": str(row["id"]),
        "entityId": row["entityid"],
        "isInactive": row["isinactive"] == "T",
        "isPerson": row["isperson"] == "T",
        "dateCreated": row["datecreated"],
        "lastModifiedDate": row["lastmodifieddate"],
        **{k: v for k, v in record.items() if k not in ("isInactive", "isPerson")},
    }
    if row["externalid"]:
        result["externalId"] = row["externalid"]
    return {k: v for k, v in result.items() if v is not None}


# -- GET shapes -----------------------------------------------------------------------------------


class Renderer:
    """Turns transaction rows into NetSuite's REST representation."""

    def __init__(self, ctx: Ctx, expand: bool = False, simple_enums: bool = False) -> None:
        self.ctx = ctx
        self.expand = expand
        self.simple_enums = simple_enums

    def enum(self, letter: str, name: str) -> Any:
        return letter if self.simple_enums else {"id": letter, "refName": name}

    def ref(self, kind: str, value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        conn = self.ctx.conn
        record_type, name = kind, str(value)
        if kind == "customer":
            row = conn.execute(
                "SELECT entityid, firstname, lastname FROM ns_customer WHERE id = ?", (value,)
            ).fetchone()
            name = (
                f"{row['entityid']} {row['firstname'] or ''} {row['lastname'] or ''}".strip() if row else name
            )
        elif kind in ("item", "shipItem"):
            row = conn.execute("SELECT itemid, itemtype FROM ns_item WHERE id = ?", (value,)).fetchone()
            if row:
                name, record_type = row["itemid"], ITEM_RECORD_TYPES.get(row["itemtype"], "inventoryItem")
        elif kind == "location":
            row = conn.execute("SELECT name FROM ns_location WHERE id = ?", (value,)).fetchone()
            name = row["name"] if row else name
        elif kind in TRANSACTION_TYPES:
            row = conn.execute("SELECT tranid FROM ns_transaction WHERE id = ?", (value,)).fetchone()
            name = row["tranid"] if row else name
        link = [{"rel": "self", "href": self.ctx.href(record_type, value)}]
        return {"id": str(value), "refName": name, "links": link}

    def transaction(self, row: sqlite3.Row) -> dict[str, Any]:
        header = json.loads(row["record"])
        href = self.ctx.href(row["rectype"], row["id"])
        result: dict[str, Any] = {
            "links": [{"rel": "self", "href": href}],
            "id": str(row["id"]),
            "tranId": row["tranid"],
            "externalId": row["externalid"],
            "tranDate": row["trandate"],
            "createdDate": row["createddate"],
            "lastModifiedDate": row["lastmodifieddate"],
            "entity": self.ref("customer", row["entity"]),
            "status": self.enum(
                status_name(row["type"], row["status"]), status_name(row["type"], row["status"])
            )
            if row["status"]
            else None,
            "memo": row["memo"],
            "location": self.ref("location", row["location"]),
            "shipMethod": self.ref("shipItem", row["shipmethod"]),
        }
        result.update(self._type_fields(row, header))
        result.update({k: v for k, v in header.items() if k.startswith("custbody_")})
        result["item"] = self.sublist(row, "item")
        if row["type"] == "ItemShip":
            name = header.get("packageSublist", "package")
            result[name] = self.sublist(row, name)
        return {k: v for k, v in result.items() if v is not None}

    def _type_fields(self, row: sqlite3.Row, header: dict[str, Any]) -> dict[str, Any]:
        lines = item_lines(self.ctx.conn, row["id"])
        if row["type"] == "SalesOrd":
            # NetSuite's total is the lines (tax, discount and payment items included) plus the
            # header's shipping cost, as on the transaction's summary.
            total = sum(-Decimal(str(line["netamount"] or 0)) for line in lines)
            total += Decimal(str(header.get("shippingCost") or 0))
            fields = {k: header.get(k) for k in ("otherRefNum", "shipDate", "email", "shippingCost")}
            approval = ref_id(header.get("orderStatus")) or "B"
            letter = row["status"] if row["status"] in ("A", "B") else approval
            fields["orderStatus"] = self.enum(letter, status_name("SalesOrd", letter))
            fields["total"] = number(total)
            fields["custbody_sent_to_3pl"] = row["custbody_sent_to_3pl"] == "T"
            for address in ("shippingAddress", "billingAddress"):
                if address in header:
                    fields[address] = header[address] if self.expand else self._links(row, address)
            return fields
        fields = {"createdFrom": self.ref(self._source_type(row["createdfrom"]), row["createdfrom"])}
        if row["type"] in refunds.REFUND_STATE_KEYS:
            fields.update(refunds.render_fields(self.ctx.conn, row, header))
        payment_method = ref_id(header.get("paymentMethod"))
        if row["type"] == "CashSale" and payment_method is not None:
            name = PAYMENT_METHODS.get(int(payment_method), "")
            fields["paymentMethod"] = {"id": payment_method, "refName": name}
        if row["type"] == "ItemShip":
            fields["shipStatus"] = self.enum(row["status"], status_name("ItemShip", row["status"]))
            fields["shippedDate"] = header.get("shippedDate")
        return fields

    def _source_type(self, source_id: Any) -> str:
        found = self.ctx.conn.execute(
            "SELECT rectype FROM ns_transaction WHERE id = ?", (source_id,)
        ).fetchone()
        return found["rectype"] if found else "salesOrder"

    def _links(self, row: sqlite3.Row, sublist: str) -> dict[str, Any]:
        return {"links": [{"rel": "self", "href": f"{self.ctx.href(row['rectype'], row['id'])}/{sublist}"}]}

    def sublist(self, row: sqlite3.Row, name: str, force: bool = False) -> dict[str, Any]:
        if not (self.expand or force):
            return self._links(row, name)
        if name == "item":
            items = [self.line(row, line) for line in self._sublist_lines(row)]
        elif row["type"] == "ItemShip" and name == json.loads(row["record"]).get("packageSublist", "package"):
            items = [{"links": [], **package} for package in json.loads(row["record"]).get(name, [])]
        elif name in ("shippingAddress", "billingAddress"):
            return json.loads(row["record"]).get(name) or {}
        else:
            raise not_found(f"{row['rectype']} sublist", name)
        return {
            **self._links(row, name),
            "items": items,
            "totalResults": len(items),
            "count": len(items),
            "hasMore": False,
            "offset": 0,
        }

    def _sublist_lines(self, row: sqlite3.Row) -> list[sqlite3.Row]:
        """A sales order hides its kit member lines; a fulfillment lists them after their kit line."""
        if row["type"] != "ItemShip":
            return item_lines(self.ctx.conn, row["id"])
        return self.ctx.conn.execute(
            "SELECT * FROM ns_transactionline WHERE [transaction] = ? AND mainline = 'F' "
            "ORDER BY linesequencenumber",
            (row["id"],),
        ).fetchall()

    def line(self, row: sqlite3.Row, line: sqlite3.Row) -> dict[str, Any]:
        quantity = abs(Decimal(str(line["quantity"] or 0)))
        result: dict[str, Any] = {
            "links": [],
            "line": line["id"],
            "item": self.ref("item", line["item"]),
            "itemType": self.enum(line["itemtype"], line["itemtype"]),
            "quantity": number(quantity),
            "rate": number(line["rate"]),
            "amount": number(abs(Decimal(str(line["netamount"] or 0)))),
            "location": self.ref("location", line["location"]),
        }
        if row["type"] == "SalesOrd":
            result["quantityFulfilled"] = number(line["quantityshiprecv"])
            result["quantityBilled"] = number(line["quantitybilled"])
            result["isClosed"] = line["isclosed"] == "T"
            result.update(json.loads(line["record"] or "{}"))
        else:
            result["orderLine"] = line["orderline"]
            if row["type"] == "RtnAuth":
                result["quantityReceived"] = number(line["quantityshiprecv"])
                result["isClosed"] = line["isclosed"] == "T"
            if row["type"] == "ItemShip":
                result["itemReceive"] = True
            if line["kitmemberof"] is not None:
                result["kitMemberOf"] = line["kitmemberof"]
        for key in line.keys():  # noqa: SIM118 - sqlite3.Row iterates values
            if key.startswith("custcol_") and line[key] is not None:
                result[key] = line[key]
        return {k: v for k, v in result.items() if v is not None}
