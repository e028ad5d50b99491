"""NetSuite sandbox: the return authorization's life after it is created — approval, cancellation,
item receipts (goods back in stock), closing lines, and the status letters (netsuite.md §9.4, §10.2).

The RMA itself is created by `netsuite_refunds` (``salesOrder | cashSale | invoice ->
returnAuthorization``) and refunded there (``-> cashRefund | creditMemo``); this module owns what
happens in between and the letter the RMA shows.

Receiving: ``POST /returnAuthorization/{id}/!transform/itemReceipt`` → 204 + ``Location`` of the new
``itemReceipt`` (``createdFrom`` = the RMA). Line rules (400 ``USER_ERROR`` unless said):

- the RMA must be approved (B, D, E, F — and G while goods are still expected, see below): A
  Pending Approval, C Cancelled and H Closed refuse receipts;
- ``item.items[{orderLine, itemReceive, quantity, location}]``: ``orderLine`` is the RMA's line id;
  lines not named are received in full ("mark all" accounts, netsuite.md §9), unless marked
  ``itemReceive: false``; only inventory lines (InvtPart, Assembly, Kit) are receivable — naming a
  tax / service line is refused;
- a line's quantity is at most the RMA quantity less what earlier receipts took; a closed line
  receives nothing; ``location`` is required on every received line (400 ``USER_ERROR`` "Please
  enter value(s) for: Location") and must exist (400 ``INVALID_CONTENT``);
- ``externalId`` unique per record type (400 ``DUP_RCRD``).

Receiving raises on-hand and available stock (``aggregateItemLocation``) at the line's location —
a kit through its members — so flow E and SuiteQL see the goods at once. Refunds from the RMA
(cash refund, credit memo) never touch stock: the receipt did.

Approval and closing (``PATCH /returnAuthorization/{id}``):

- ``{"orderStatus": {"id": "B"}}`` approves a Pending Approval RMA (netsuite.md §9.4);
- ``{"orderStatus": {"id": "C"}}`` cancels a Pending Approval RMA (the UI's Cancel button exists
  only then) — **(unverified)**: the REST shape for cancelling an RMA is not documented;
- ``{"item": {"items": [{"line": n, "isClosed": true}]}}`` closes lines (netsuite.md §7's line
  closing, as on a sales order); a closed line cannot be reopened once the RMA is H.

Status letters (RtnAuth, netsuite.md §10.2), derived after every change — **(our design choice)**
where NetSuite's exact rule is not documented:

- A Pending Approval, C Cancelled (kept as set);
- G Refunded once refunds took the RMA's whole total (also before any receipt: flow F refunds
  money-only RMAs without goods); an RMA refunded before its goods arrive stays receivable while
  lines are open (instant refunds), and stays G;
- every line closed: F Pending Refund if received goods are worth more than what was refunded,
  else H Closed;
- nothing received: B Pending Receipt;
- some received, open quantity left: E Pending Refund/Partially Received if the received goods are
  worth more than what was refunded, else D Partially Received;
- everything received: F Pending Refund.
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from typing import Any

from mienne_ops.sandbox.netsuite_store import (
    NOTHING_TO_DO,
    NsError,
    assert_external_id_free,
    custom_fields,
    invalid_reference,
    item_lines,
    kit_members,
    load_transaction,
    ref_id,
    require_location,
    to_decimal,
    to_int,
)

#: Item types whose units come back and are received (service / tax lines are money only).
RECEIVABLE_ITEM_TYPES = ("InvtPart", "Assembly", "Kit")
#: Letters an RMA accepts a receipt in (G only while open quantity remains: see the module doc).
RECEIVING = ("B", "D", "E", "F", "G")
#: Children that take money back from an RMA.
REFUND_TYPES = ("CashRfnd", "CustCred")
CENT = Decimal("0.01")
RECEIPT_LINE_FIELDS = {"orderLine", "itemReceive", "quantity", "location", "item", "description"}


# -- receipts -------------------------------------------------------------------------------------


def receive(ctx: Any, rma_ref: str, body: dict[str, Any]) -> int:
    """``returnAuthorization -> itemReceipt``; returns the new item receipt's id."""
    conn = ctx.conn
    rma = load_transaction(conn, "returnAuthorization", rma_ref)
    assert_external_id_free(conn, "itemReceipt", body.get("externalId"))
    if rma["status"] == "A":
        raise NsError(400, "USER_ERROR", "The return authorization is pending approval.")
    if rma["status"] not in RECEIVING:
        raise NsError(400, "USER_ERROR", NOTHING_TO_DO, "item.items")
    selected = _selected(ctx, rma, body)
    header: dict[str, Any] = {k: body[k] for k in ("memo", "tranDate") if k in body}
    header.update(custom_fields(body, "custbody"))
    new_id = ctx.next_id("netsuite:transaction", 4321)
    tranid = f"IR{ctx.next_id('netsuite:tranid:ItemRcpt', 1001)}"
    conn.execute(
        "INSERT INTO ns_transaction (id, tranid, type, rectype, trandate, entity, externalid, memo, "
        "createdfrom, location, createddate, lastmodifieddate, record) "
        "VALUES (?, ?, 'ItemRcpt', 'itemReceipt', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new_id,
            tranid,
            body.get("tranDate") or ctx.today,
            rma["entity"],
            body.get("externalId"),
            body.get("memo"),
            rma["id"],
            selected[0][2],
            ctx.now,
            ctx.now,
            json.dumps(header),
        ),
    )
    for sequence, (line, quantity, location) in enumerate(selected, start=1):
        rate = Decimal(str(line["rate"] or 0))
        conn.execute(
            "INSERT INTO ns_transactionline ([transaction], id, linesequencenumber, item, quantity, rate, "
            "netamount, location, itemtype, createdfrom, orderline, record) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}')",
            (
                new_id,
                sequence,
                sequence,
                line["item"],
                str(quantity),
                str(rate),
                str((rate * quantity).quantize(CENT)),
                location,
                line["itemtype"],
                rma["id"],
                line["id"],
            ),
        )
        conn.execute(
            "UPDATE ns_transactionline SET quantityshiprecv = quantityshiprecv + ? "
            "WHERE [transaction] = ? AND id = ?",
            (str(quantity), rma["id"], line["id"]),
        )
        _restock(conn, line, quantity, location)
    refresh_status(ctx, rma["id"])
    return new_id


def _selected(ctx: Any, rma: sqlite3.Row, body: dict[str, Any]) -> list[tuple[sqlite3.Row, Decimal, int]]:
    """(RMA line, quantity, location) of every line the receipt takes."""
    conn = ctx.conn
    named: dict[int, dict[str, Any]] = {}
    for index, spec in enumerate((body.get("item") or {}).get("items") or []):
        path = f"item.items[{index}]"
        if not isinstance(spec, dict):
            raise NsError(400, "INVALID_CONTENT", "A line must be an object.", path)
        if ctx.name_validation.lower() == "error":
            unknown = set(spec) - RECEIPT_LINE_FIELDS
            if unknown:
                name = sorted(unknown)[0]
                raise NsError(400, "INVALID_CONTENT", f"Unknown field '{path}.{name}'.", f"{path}.{name}")
        named[to_int(spec.get("orderLine"), f"{path}.orderLine")] = spec
    lines = {row["id"]: row for row in item_lines(conn, rma["id"])}
    if set(named) - set(lines):
        raise NsError(400, "USER_ERROR", NOTHING_TO_DO, "item.items")
    selected = []
    for line_id, line in lines.items():
        spec = named.get(line_id)
        if spec is not None and spec.get("itemReceive") is False:
            continue
        path = f"item.items (orderLine {line_id})"
        receivable = line["itemtype"] in RECEIVABLE_ITEM_TYPES
        if not receivable:
            if spec is not None:
                raise NsError(400, "USER_ERROR", f"Line {line_id} is not a receivable item.", path)
            continue
        left = open_quantity(line)
        quantity = to_decimal(spec["quantity"], f"{path}.quantity") if spec and "quantity" in spec else left
        if quantity < 0:
            raise NsError(400, "INVALID_CONTENT", "Quantity must not be negative.", path)
        if quantity > left:
            if line["isclosed"] == "T":
                raise NsError(400, "USER_ERROR", f"Line {line_id} is closed.", path)
            raise NsError(
                400,
                "USER_ERROR",
                f"You cannot receive more than {_plain(left)} of line {line_id}.",
                path,
            )
        if quantity == 0:
            continue
        location_value = (spec or {}).get("location")
        if ref_id(location_value) is None:
            raise NsError(400, "USER_ERROR", "Please enter value(s) for: Location", f"{path}.location")
        location = require_location(conn, location_value, f"{path}.location")
        assert location is not None
        selected.append((line, quantity, location))
    if not selected:
        raise NsError(400, "USER_ERROR", NOTHING_TO_DO, "item.items")
    return selected


def open_quantity(line: sqlite3.Row) -> Decimal:
    """What is still to come back on an RMA line (nothing once it is closed)."""
    if line["isclosed"] == "T":
        return Decimal(0)
    return abs(Decimal(str(line["quantity"] or 0))) - Decimal(str(line["quantityshiprecv"] or 0))


def _restock(conn: sqlite3.Connection, line: sqlite3.Row, quantity: Decimal, location: int) -> None:
    """On-hand and available grow at the location; a kit comes back as its members."""
    if line["itemtype"] == "Kit":
        parts = [(m["item"], quantity * Decimal(str(m["quantity"]))) for m in kit_members(conn, line["item"])]
    else:
        parts = [(line["item"], quantity)]
    for item_id, units in parts:
        conn.execute(
            "INSERT INTO ns_aggregateitemlocation (item, location, quantityonhand, quantityavailable) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(item, location) DO UPDATE SET "
            "quantityonhand = quantityonhand + excluded.quantityonhand, "
            "quantityavailable = quantityavailable + excluded.quantityavailable",
            (item_id, location, str(units), str(units)),
        )


# -- PATCH: approve, cancel, close lines ------------------------------------------------------------


def update(ctx: Any, row: sqlite3.Row, body: dict[str, Any], header: dict[str, Any]) -> None:
    """The RMA part of a PATCH: ``orderStatus`` (A -> B approve, A -> C cancel) and line closing."""
    if "orderStatus" in body:
        letter = ref_id(body["orderStatus"])
        if letter == row["status"] and letter in ("A", "B", "C"):
            pass  # the same value again changes nothing
        elif row["status"] != "A" or letter not in ("B", "C"):
            raise NsError(400, "INVALID_CONTENT", f"Invalid orderStatus {letter!r}.", "orderStatus")
        header["orderStatus"] = {"id": letter}
        if letter == "C":
            header["_cancelled"] = True
        ctx.conn.execute("UPDATE ns_transaction SET status = ? WHERE id = ?", (letter, row["id"]))
    if "item" in body:
        if row["status"] in ("C", "H"):
            raise NsError(400, "USER_ERROR", "You cannot edit a closed or cancelled transaction.")
        _close_lines(ctx, row["id"], (body.get("item") or {}).get("items") or [])
    if "orderStatus" in body or "item" in body:
        ctx.conn.execute("UPDATE ns_transaction SET record = ? WHERE id = ?", (json.dumps(header), row["id"]))
        refresh_status(ctx, row["id"])


def _close_lines(ctx: Any, rma_id: int, lines: list[Any]) -> None:
    existing = {line["id"]: line for line in item_lines(ctx.conn, rma_id)}
    for index, spec in enumerate(lines):
        path = f"item.items[{index}]"
        if not isinstance(spec, dict) or spec.get("line") is None:
            # Adding lines to an RMA after it is created is not something this sandbox offers.
            raise NsError(400, "USER_ERROR", "Lines are added to a return authorization by its source.", path)
        line_id = to_int(spec["line"], f"{path}.line")
        if line_id not in existing:
            raise invalid_reference("line", line_id, f"{path}.line")
        if set(spec) - {"line", "isClosed", "description"}:
            raise NsError(400, "USER_ERROR", "Only isClosed can change on a return authorization line.", path)
        if "isClosed" in spec:
            ctx.conn.execute(
                "UPDATE ns_transactionline SET isclosed = ? WHERE [transaction] = ? AND id = ?",
                ("T" if spec["isClosed"] else "F", rma_id, line_id),
            )


# -- status ---------------------------------------------------------------------------------------


def refresh_status(ctx: Any, rma_id: int) -> str:
    """Derive and store the RMA's letter (see the module doc)."""
    conn = ctx.conn
    row = conn.execute(
        "SELECT status, foreigntotal, record FROM ns_transaction WHERE id = ?", (rma_id,)
    ).fetchone()
    letter = rma_status(
        conn, rma_id, row["status"], Decimal(str(row["foreigntotal"] or 0)), json.loads(row["record"])
    )
    conn.execute(
        "UPDATE ns_transaction SET status = ?, lastmodifieddate = ? WHERE id = ?", (letter, ctx.now, rma_id)
    )
    return letter


def rma_status(
    conn: sqlite3.Connection, rma_id: int, current: str | None, total: Decimal, header: dict[str, Any]
) -> str:
    if header.get("_cancelled") or current == "C":
        return "C"
    if current == "A":
        return "A"
    refunded = Decimal(
        str(
            conn.execute(
                "SELECT COALESCE(SUM(foreigntotal), 0) FROM ns_transaction WHERE createdfrom = ? "
                f"AND type IN ({', '.join(repr(t) for t in REFUND_TYPES)})",
                (rma_id,),
            ).fetchone()[0]
        )
    )
    if total > 0 and refunded >= total:
        return "G"
    lines = [line for line in item_lines(conn, rma_id) if line["itemtype"] in RECEIVABLE_ITEM_TYPES]
    all_lines = item_lines(conn, rma_id)
    received = sum((Decimal(str(line["quantityshiprecv"] or 0)) for line in lines), Decimal(0))
    received_value = sum(
        (Decimal(str(line["quantityshiprecv"] or 0)) * Decimal(str(line["rate"] or 0)) for line in lines),
        Decimal(0),
    ).quantize(CENT)
    refund_pending = received_value > refunded
    if all_lines and all(line["isclosed"] == "T" for line in all_lines):
        return "F" if refund_pending else "H"
    left = sum((open_quantity(line) for line in lines), Decimal(0))
    if received == 0:
        return "B"
    if left > 0:
        return "E" if refund_pending else "D"
    return "F"


def _plain(value: Decimal) -> str:
    return str(int(value)) if value == value.to_integral_value() else str(value)
