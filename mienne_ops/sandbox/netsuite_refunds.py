"""NetSuite sandbox: returns and refunds — return authorizations, cash refunds, credit memos and
customer refunds (netsuite.md §9.4), with the money rules NetSuite's record layer enforces.

Transforms handled here (``POST /<source>/{id}/!transform/<target>``):

- ``salesOrder | cashSale | invoice -> returnAuthorization`` (Oracle documents cashSale -> RMA);
- ``returnAuthorization -> cashRefund | creditMemo`` (netsuite.md §9 table);
- ``cashSale -> cashRefund`` and ``invoice -> creditMemo`` directly: in SuiteScript's list of
  supported transformations (the REST service offers every SuiteScript transform) but absent from
  netsuite.md's table, so the account knob ``direct_refund_transforms`` refuses them when off.

Body rules are the transforms' (netsuite.md §9): a line names its **source** line in ``orderLine``;
source lines not named are taken with their defaults (what is left of them) unless marked
``itemReceive: false`` (or ``apply: false``); a line without ``orderLine`` but with an ``item`` is an
added line (a refund adjustment, a shipping refund item). An explicit ``amount`` must equal
``rate × quantity`` to the cent when both are sent.

Rules (400 ``USER_ERROR`` unless said): the refunded quantity of an item line is at most its quantity
less what earlier returns / refunds took; a line's amount at most what is left of it; the new
record's total (lines + ``shippingCost``) at most the source's total less what earlier children
took; an RMA must be approved (``B``) before it is refunded (receipts, closing and its status
letters — ``G`` Refunded once its whole total is — are `netsuite_returns`'); a sales order gives an
RMA only for what was billed; a cancelled RMA takes nothing from its source, a closed RMA line only
what it received (our design choice). ``externalId`` is unique per record type (``DUP_RCRD``). A
``customerRefund`` (``POST``) applies credit memos of its customer through
``apply.items[{doc: {id}, apply: true, amount}]``, each amount at most the memo's unapplied amount.

Sandbox choices (unverified): line quantities and ``foreigntotal`` of these records are positive;
the first cash sale / invoice of an order carries the order's ``shippingCost`` (see `bill_shipping`).
"""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from typing import Any

from mienne_ops.sandbox import netsuite_returns as returns
from mienne_ops.sandbox.netsuite_store import (
    NOTHING_TO_DO,
    PAYMENT_METHODS,
    TRANID_PREFIX,
    TRANSACTION_TYPES,
    NsError,
    assert_external_id_free,
    check_property_names,
    custom_fields,
    ensure_column,
    invalid_reference,
    item_lines,
    load_transaction,
    number,
    ref_id,
    require_customer,
    require_item,
    sql_value,
    to_decimal,
    to_int,
)

CENT = Decimal("0.01")
DIRECT = {("cashSale", "cashRefund"), ("invoice", "creditMemo")}
TRANSFORMS = DIRECT | {
    ("salesOrder", "returnAuthorization"),
    ("cashSale", "returnAuthorization"),
    ("invoice", "returnAuthorization"),
    ("returnAuthorization", "cashRefund"),
    ("returnAuthorization", "creditMemo"),
    ("returnAuthorization", "itemReceipt"),  # goods back: see `netsuite_returns`
}
#: Children that take lines or money back from their source.
TAKING_TYPES = ("RtnAuth", "CashRfnd", "CustCred")
#: Item types whose quantities are counted (service / tax / adjustment lines are money only).
COUNTED_ITEM_TYPES = ("InvtPart", "Assembly", "Kit")
REFUND_LINE_FIELDS = {
    "orderLine",
    "item",
    "quantity",
    "rate",
    "amount",
    "itemReceive",
    "apply",
    "description",
}
REFUND_HEADER_FIELDS = {
    "externalId",
    "tranDate",
    "memo",
    "item",
    "orderStatus",
    "paymentMethod",
    "account",
    "shippingCost",
    "location",
}
CUSTOMER_REFUND_FIELDS = {"customer", "externalId", "tranDate", "memo", "paymentMethod", "account", "apply"}
APPROVED_RMA = ("B", "D", "E", "F")
SHIPPING = "shippingCost"


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def handles(source_type: str, target: str) -> bool:
    return (source_type, target) in TRANSFORMS


# -- transforms -----------------------------------------------------------------------------------


def transform(ctx: Any, source_type: str, source_ref: str, target: str, body: dict[str, Any]) -> int:
    if target == "itemReceipt":
        return returns.receive(ctx, source_ref, body)
    if (source_type, target) in DIRECT and not ctx.account.direct_refund_transforms:
        raise NsError(400, "INVALID_CONTENT", f"Transform from {source_type} to {target} is not supported.")
    check_property_names(body, REFUND_HEADER_FIELDS, ctx.name_validation)
    source = load_transaction(ctx.conn, source_type, source_ref)
    assert_external_id_free(ctx.conn, target, body.get("externalId"))
    _check_source_state(source, target)
    lines = _requested_lines(ctx, source, body)
    shipping = _shipping(ctx, source, body)
    total = money(sum((amount for *_, amount in lines), Decimal(0)) + shipping)
    if not lines and shipping == 0:
        raise NsError(400, "USER_ERROR", NOTHING_TO_DO, "item.items")
    left = money(source_total(ctx.conn, source) - taken_total(ctx.conn, source["id"]))
    if total > left:
        raise NsError(
            400,
            "USER_ERROR",
            f"The total ({total}) exceeds the amount left to refund on {source['tranid']} ({left}).",
        )
    header: dict[str, Any] = {
        k: body[k] for k in ("memo", "tranDate", "paymentMethod", "account") if k in body
    }
    _check_payment_method(header.get("paymentMethod"))
    if ctx.account.refund_shipping_cost:
        header[SHIPPING] = str(shipping)
    header.update(custom_fields(body, "custbody"))
    status = _new_status(target, body)
    if status:
        header["orderStatus"] = {"id": status}
    new_id = _insert_header(ctx, source, target, status, body, header)
    for sequence, (source_line, item_id, quantity, rate, amount) in enumerate(lines, start=1):
        _insert_line(ctx, new_id, sequence, source, source_line, item_id, quantity, rate, amount)
    _set_total(ctx.conn, new_id, total)
    _after_taking(ctx, source)
    return new_id


def _check_source_state(source: sqlite3.Row, target: str) -> None:
    if source["type"] == "RtnAuth":
        if source["status"] == "A":
            raise NsError(400, "USER_ERROR", "The return authorization is pending approval.")
        if source["status"] not in APPROVED_RMA:
            raise NsError(400, "USER_ERROR", NOTHING_TO_DO, "item.items")
    if source["type"] == "SalesOrd" and source["status"] in ("A", "B", "C"):
        raise NsError(400, "USER_ERROR", NOTHING_TO_DO, "item.items")


def _new_status(target: str, body: dict[str, Any]) -> str | None:
    if target == "returnAuthorization":
        letter = ref_id(body.get("orderStatus")) or "A"
        if letter not in ("A", "B"):
            raise NsError(400, "INVALID_CONTENT", f"Invalid orderStatus {letter!r}.", "orderStatus")
        return letter
    return "A" if target == "creditMemo" else None


RefundLine = tuple[sqlite3.Row | None, int, Decimal, Decimal, Decimal]


def _requested_lines(ctx: Any, source: sqlite3.Row, body: dict[str, Any]) -> list[RefundLine]:
    """(source line or None, item id, quantity, rate, amount) of every line the new record gets."""
    conn = ctx.conn
    named: dict[int, dict[str, Any]] = {}
    added: list[tuple[int, dict[str, Any]]] = []
    for index, line in enumerate((body.get("item") or {}).get("items") or []):
        path = f"item.items[{index}]"
        if not isinstance(line, dict):
            raise NsError(400, "INVALID_CONTENT", "A line must be an object.", path)
        check_property_names(line, REFUND_LINE_FIELDS, ctx.name_validation, f"{path}.")
        if line.get("orderLine") is None:
            if line.get("item") is None:
                raise NsError(400, "USER_ERROR", "Please enter value(s) for: Item", f"{path}.item")
            added.append((index, line))
        else:
            named[to_int(line["orderLine"], f"{path}.orderLine")] = line
    rows = {row["id"]: row for row in item_lines(conn, source["id"])}
    if set(named) - set(rows):
        raise NsError(400, "USER_ERROR", NOTHING_TO_DO, "item.items")
    result: list[RefundLine] = []
    for line_id, row in rows.items():
        spec = named.get(line_id, {})
        if spec.get("itemReceive") is False or spec.get("apply") is False:
            continue
        taken = _source_line(conn, source, row)
        if taken is None:
            if "quantity" in spec or "amount" in spec:  # asked for a line with nothing to give back
                raise NsError(400, "USER_ERROR", NOTHING_TO_DO, "item.items")
            continue
        quantity, amount = _line_amounts(spec, taken, f"item.items (orderLine {line_id})")
        if quantity > 0 or amount > 0:
            result.append((row, row["item"], quantity, _rate(quantity, amount), amount))
    for index, line in added:
        path = f"item.items[{index}]"
        item = require_item(conn, line["item"], f"{path}.item")
        quantity = to_decimal(line.get("quantity", 1), f"{path}.quantity")
        amount = _explicit_amount(line, quantity, path)
        if quantity <= 0 or amount <= 0:
            raise NsError(400, "INVALID_CONTENT", "Quantity and amount must be greater than 0.", path)
        result.append((None, item["id"], quantity, _rate(quantity, amount), amount))
    return result


#: Children that still take: not a cancelled RMA.
_LIVE = "AND NOT (t.type = 'RtnAuth' AND t.status = 'C')"
#: A line's value ({} = its quantity or amount), or its received share when it is a closed RMA line.
_CLOSED_RMA_LINE = (
    "CASE WHEN t.type = 'RtnAuth' AND l.isclosed = 'T' AND l.quantity != 0 "
    "THEN {} * 1.0 * l.quantityshiprecv / ABS(l.quantity) ELSE {} END"
)


class _LineLeft:
    """What is left of one source line to return or refund."""

    def __init__(self, row: sqlite3.Row, quantity: Decimal, amount: Decimal, counted: bool) -> None:
        self.row = row
        self.quantity = quantity
        self.amount = amount
        self.counted = counted  # item lines count units; service / tax lines are money only


def _source_line(conn: sqlite3.Connection, source: sqlite3.Row, row: sqlite3.Row) -> _LineLeft | None:
    quantity = abs(Decimal(str(row["quantity"] or 0)))
    amount = abs(Decimal(str(row["netamount"] or 0)))
    if source["type"] == "SalesOrd":
        # An RMA from an order takes back what was billed (the money that came in), no more.
        billed = Decimal(str(row["quantitybilled"] or 0))
        if billed == 0:
            return None
        amount = money(amount * billed / quantity) if quantity else Decimal(0)
        quantity = billed
    if source["type"] == "RtnAuth" and row["isclosed"] == "T" and row["itemtype"] in COUNTED_ITEM_TYPES:
        # A closed RMA item line refunds what it received, no more (tax / service lines are money
        # only: closing them changes nothing) (our design choice).
        received = Decimal(str(row["quantityshiprecv"] or 0))
        amount = money(amount * received / quantity) if quantity else Decimal(0)
        quantity = received
    # A cancelled RMA takes nothing back; a closed RMA line only what it received.
    taken_quantity, taken_amount = conn.execute(
        f"SELECT COALESCE(SUM({_CLOSED_RMA_LINE.format('ABS(l.quantity)', 'ABS(l.quantity)')}), 0), "
        f"COALESCE(SUM({_CLOSED_RMA_LINE.format('ABS(l.netamount)', 'ABS(l.netamount)')}), 0) "
        "FROM ns_transactionline l JOIN ns_transaction t ON t.id = l.[transaction] "
        f"WHERE t.createdfrom = ? AND l.orderline = ? AND t.type IN ({_in(TAKING_TYPES)}) {_LIVE}",
        (source["id"], row["id"]),
    ).fetchone()
    counted = row["itemtype"] in COUNTED_ITEM_TYPES
    return _LineLeft(
        row, quantity - Decimal(str(taken_quantity)), money(amount - Decimal(str(taken_amount))), counted
    )


def _line_amounts(spec: dict[str, Any], left: _LineLeft, path: str) -> tuple[Decimal, Decimal]:
    if "quantity" in spec:
        quantity = to_decimal(spec["quantity"], f"{path}.quantity")
    else:
        quantity = max(left.quantity, Decimal(0)) if left.counted else abs(Decimal(str(left.row["quantity"])))
    if quantity < 0:
        raise NsError(400, "INVALID_CONTENT", "Quantity must not be negative.", path)
    if left.counted and quantity > left.quantity:
        raise NsError(
            400,
            "USER_ERROR",
            f"You cannot return or refund more than {number(left.quantity)} of line {left.row['id']}.",
            path,
        )
    if "amount" in spec or "rate" in spec:
        amount = _explicit_amount(spec, quantity, path)
    elif left.counted:
        whole = abs(Decimal(str(left.row["quantity"]))) if left.row["quantity"] else Decimal(1)
        rate = abs(Decimal(str(left.row["netamount"] or 0))) / whole
        amount = min(money(rate * quantity), left.amount)
    else:
        amount = left.amount
    if amount > left.amount:
        raise NsError(
            400,
            "USER_ERROR",
            f"The amount {amount} exceeds the {left.amount} left on line {left.row['id']}.",
            path,
        )
    return quantity, amount


def _explicit_amount(line: dict[str, Any], quantity: Decimal, path: str) -> Decimal:
    amount = to_decimal(line["amount"], f"{path}.amount") if "amount" in line else None
    if "rate" in line:
        from_rate = money(to_decimal(line["rate"], f"{path}.rate") * quantity)
        if amount is not None and money(amount) != from_rate:
            raise NsError(
                400, "INVALID_CONTENT", f"The amount {amount} is not rate × quantity ({from_rate}).", path
            )
        amount = from_rate
    return money(amount if amount is not None else Decimal(0))


def _rate(quantity: Decimal, amount: Decimal) -> Decimal:
    return amount / quantity if quantity else amount


def _shipping(ctx: Any, source: sqlite3.Row, body: dict[str, Any]) -> Decimal:
    """The shipping refunded on the header: the body's, else what is left of the source's."""
    if not ctx.account.refund_shipping_cost:
        if SHIPPING in body and ctx.name_validation.lower() == "error":
            raise NsError(400, "INVALID_CONTENT", f"Unknown field '{SHIPPING}'.", SHIPPING)
        return Decimal(0)
    left = money(_header_shipping(source) - _taken_shipping(ctx.conn, source["id"]))
    if SHIPPING not in body:
        return max(left, Decimal(0))
    shipping = money(to_decimal(body[SHIPPING], SHIPPING))
    if shipping < 0 or shipping > left:
        raise NsError(
            400, "USER_ERROR", f"The shipping cost {shipping} exceeds the {left} left to refund.", SHIPPING
        )
    return shipping


def _header_shipping(row: sqlite3.Row) -> Decimal:
    return Decimal(str(json.loads(row["record"]).get(SHIPPING) or 0))


def _taken_shipping(conn: sqlite3.Connection, source_id: int) -> Decimal:
    rows = conn.execute(
        "SELECT record FROM ns_transaction t "
        f"WHERE createdfrom = ? AND type IN ({_in(TAKING_TYPES)}) {_LIVE}",
        (source_id,),
    ).fetchall()
    return sum((_header_shipping(row) for row in rows), Decimal(0))


def source_total(conn: sqlite3.Connection, source: sqlite3.Row) -> Decimal:
    """What a source can give back: an order its billed total, any other record its own total."""
    if source["type"] == "SalesOrd":
        billed = conn.execute(
            "SELECT COALESCE(SUM(foreigntotal), 0) FROM ns_transaction "
            "WHERE createdfrom = ? AND type IN ('CashSale', 'CustInvc')",
            (source["id"],),
        ).fetchone()[0]
        return Decimal(str(billed))
    if source["type"] == "RtnAuth":  # closed lines give only what they received
        released = conn.execute(
            f"SELECT {_RELEASED.format(rma='r', only=_COUNTED_LINES)} FROM ns_transaction r WHERE r.id = ?",
            (source["id"],),
        ).fetchone()[0]
        return Decimal(str(source["foreigntotal"] or 0)) - money(Decimal(str(released)))
    return Decimal(str(source["foreigntotal"] or 0))


def taken_total(conn: sqlite3.Connection, source_id: int) -> Decimal:
    """What children took: their totals, less the unreceived share of closed RMA lines."""
    taken = conn.execute(
        f"SELECT COALESCE(SUM(t.foreigntotal - {_RELEASED.format(rma='t', only='')}), 0) "
        f"FROM ns_transaction t WHERE createdfrom = ? AND type IN ({_in(TAKING_TYPES)}) {_LIVE}",
        (source_id,),
    ).fetchone()[0]
    return Decimal(str(taken))


#: What closing lines gave back on an RMA ({rma} = its alias, {only} = a further line filter): the
#: unreceived share of its closed lines.
_RELEASED = (
    "(SELECT COALESCE(SUM(ABS(l.netamount) * (1.0 - 1.0 * l.quantityshiprecv / ABS(l.quantity))), 0)"
    " FROM ns_transactionline l WHERE l.[transaction] = {rma}.id AND {rma}.type = 'RtnAuth'"
    " AND l.isclosed = 'T' AND l.mainline = 'F' AND l.quantity != 0{only})"
)
_COUNTED_LINES = f" AND l.itemtype IN ({', '.join(repr(t) for t in COUNTED_ITEM_TYPES)})"


def _insert_header(
    ctx: Any,
    source: sqlite3.Row,
    target: str,
    status: str | None,
    body: dict[str, Any],
    header: dict[str, Any],
) -> int:
    tran_type = TRANSACTION_TYPES[target]
    new_id = ctx.next_id("netsuite:transaction", 4321)
    tranid = f"{TRANID_PREFIX[tran_type]}{ctx.next_id(f'netsuite:tranid:{tran_type}', 1001)}"
    ctx.conn.execute(
        "INSERT INTO ns_transaction (id, tranid, type, rectype, status, trandate, entity, externalid, memo, "
        "createdfrom, location, createddate, lastmodifieddate, record) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new_id,
            tranid,
            tran_type,
            target,
            status,
            body.get("tranDate") or ctx.today,
            source["entity"],
            body.get("externalId"),
            body.get("memo"),
            source["id"],
            source["location"],
            ctx.now,
            ctx.now,
            json.dumps(header),
        ),
    )
    for name, value in custom_fields(body, "custbody").items():
        ensure_column(ctx.conn, "ns_transaction", name)
        ctx.conn.execute(f"UPDATE ns_transaction SET {name} = ? WHERE id = ?", (sql_value(value), new_id))
    return new_id


def _insert_line(
    ctx: Any,
    new_id: int,
    sequence: int,
    source: sqlite3.Row,
    source_line: sqlite3.Row | None,
    item_id: int,
    quantity: Decimal,
    rate: Decimal,
    amount: Decimal,
) -> None:
    item_type = ctx.conn.execute("SELECT itemtype FROM ns_item WHERE id = ?", (item_id,)).fetchone()[0]
    ctx.conn.execute(
        "INSERT INTO ns_transactionline ([transaction], id, linesequencenumber, item, quantity, rate, "
        "netamount, location, itemtype, createdfrom, orderline, record) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}')",
        (
            new_id,
            sequence,
            sequence,
            item_id,
            str(quantity),
            str(rate),
            str(amount),
            source_line["location"] if source_line is not None else source["location"],
            item_type,
            source["id"],
            source_line["id"] if source_line is not None else None,
        ),
    )


def _set_total(conn: sqlite3.Connection, transaction_id: int, total: Decimal) -> None:
    conn.execute("UPDATE ns_transaction SET foreigntotal = ? WHERE id = ?", (str(total), transaction_id))


def _after_taking(ctx: Any, source: sqlite3.Row) -> None:
    """A refund moves its RMA's letter (E -> D, F -> G, … see `netsuite_returns`); never stock:
    the RMA's item receipt put the goods back."""
    if source["type"] == "RtnAuth":
        returns.refresh_status(ctx, source["id"])


def _check_payment_method(value: Any) -> None:
    if ref_id(value) is not None and to_int(ref_id(value), "paymentMethod") not in PAYMENT_METHODS:
        raise invalid_reference("paymentMethod", ref_id(value), "paymentMethod")


def _in(codes: tuple[str, ...]) -> str:
    return ", ".join(f"'{code}'" for code in codes)


# -- billing: shipping on the first bill ----------------------------------------------------------


def bill_shipping(conn: sqlite3.Connection, order: sqlite3.Row, bill_id: int) -> None:
    """The first cash sale / invoice of an order carries the order's ``shippingCost`` (and its total
    includes it), as NetSuite bills shipping with the first bill (sandbox choice, unverified)."""
    shipping = _header_shipping(order)
    earlier = conn.execute(
        "SELECT 1 FROM ns_transaction WHERE createdfrom = ? AND type IN ('CashSale', 'CustInvc') AND id != ?",
        (order["id"], bill_id),
    ).fetchone()
    if shipping == 0 or earlier is not None:
        return
    row = conn.execute("SELECT record, foreigntotal FROM ns_transaction WHERE id = ?", (bill_id,)).fetchone()
    header = {**json.loads(row["record"]), SHIPPING: str(money(shipping))}
    total = money(Decimal(str(row["foreigntotal"] or 0)) + shipping)
    conn.execute(
        "UPDATE ns_transaction SET record = ?, foreigntotal = ? WHERE id = ?",
        (json.dumps(header), str(total), bill_id),
    )


# -- customer refunds -----------------------------------------------------------------------------


def create_customer_refund(ctx: Any, body: dict[str, Any], external_id: str | None = None) -> int:
    """``POST customerRefund``: pays out credit memos of one customer (netsuite.md §9.4 apply shape)."""
    conn = ctx.conn
    check_property_names(body, CUSTOMER_REFUND_FIELDS, ctx.name_validation)
    external_id = external_id or body.get("externalId")
    assert_external_id_free(conn, "customerRefund", external_id)
    if body.get("customer") is None:
        raise NsError(400, "USER_ERROR", "Please enter value(s) for: Customer", "customer")
    customer = require_customer(conn, body["customer"], "customer")
    _check_payment_method(body.get("paymentMethod"))
    applied = _applications(conn, customer, (body.get("apply") or {}).get("items") or [])
    if not applied:
        raise NsError(400, "USER_ERROR", "You must apply at least one credit to this refund.", "apply")
    total = money(sum((amount for _, amount in applied), Decimal(0)))
    new_id = ctx.next_id("netsuite:transaction", 4321)
    tranid = f"{TRANID_PREFIX['CustRfnd']}{ctx.next_id('netsuite:tranid:CustRfnd', 1001)}"
    header: dict[str, Any] = {
        **{k: body[k] for k in ("memo", "tranDate", "paymentMethod", "account") if k in body},
        "apply": [{"doc": str(doc), "amount": str(amount)} for doc, amount in applied],
    }
    conn.execute(
        "INSERT INTO ns_transaction (id, tranid, type, rectype, trandate, entity, externalid, memo, "
        "foreigntotal, createddate, lastmodifieddate, record) "
        "VALUES (?, ?, 'CustRfnd', 'customerRefund', ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new_id,
            tranid,
            body.get("tranDate") or ctx.today,
            customer,
            external_id,
            body.get("memo"),
            str(total),
            ctx.now,
            ctx.now,
            json.dumps(header),
        ),
    )
    for doc, _ in applied:
        if credit_memo_unapplied(conn, doc) == 0:
            conn.execute("UPDATE ns_transaction SET status = 'B' WHERE id = ?", (doc,))
    return new_id


def _applications(conn: sqlite3.Connection, customer: int, items: list[Any]) -> list[tuple[int, Decimal]]:
    applied = []
    for index, entry in enumerate(items):
        path = f"apply.items[{index}]"
        if not isinstance(entry, dict):
            raise NsError(400, "INVALID_CONTENT", "An apply line must be an object.", path)
        if entry.get("apply") is False:
            continue
        doc_id = to_int(ref_id(entry.get("doc")), f"{path}.doc")
        memo = conn.execute(
            "SELECT * FROM ns_transaction WHERE id = ? AND type = 'CustCred'", (doc_id,)
        ).fetchone()
        if memo is None or memo["entity"] != customer:
            raise invalid_reference("doc", doc_id, f"{path}.doc")
        unapplied = credit_memo_unapplied(conn, doc_id)
        amount = money(to_decimal(entry.get("amount", unapplied), f"{path}.amount"))
        if amount <= 0 or amount > unapplied:
            raise NsError(
                400,
                "USER_ERROR",
                f"The amount {amount} exceeds the {unapplied} unapplied on credit memo {memo['tranid']}.",
                f"{path}.amount",
            )
        applied.append((doc_id, amount))
    return applied


def credit_memo_unapplied(conn: sqlite3.Connection, memo_id: int) -> Decimal:
    total = conn.execute("SELECT foreigntotal FROM ns_transaction WHERE id = ?", (memo_id,)).fetchone()[0]
    used = Decimal(0)
    for row in conn.execute("SELECT record FROM ns_transaction WHERE type = 'CustRfnd'").fetchall():
        for application in json.loads(row["record"]).get("apply", []):
            if application["doc"] == str(memo_id):
                used += Decimal(application["amount"])
    return money(Decimal(str(total or 0)) - used)


# -- reads ----------------------------------------------------------------------------------------


def render_fields(conn: sqlite3.Connection, row: sqlite3.Row, header: dict[str, Any]) -> dict[str, Any]:
    """GET fields of these records beyond the common transaction ones."""
    fields: dict[str, Any] = {"total": number(row["foreigntotal"])}
    if SHIPPING in header:
        fields[SHIPPING] = number(header[SHIPPING])
    if row["type"] == "RtnAuth":
        fields["orderStatus"] = {"id": row["status"]}
    if row["type"] == "CustCred":
        fields["unapplied"] = number(credit_memo_unapplied(conn, row["id"]))
    if row["type"] == "CustRfnd":
        fields["customer"] = {"id": str(row["entity"])}
        fields["apply"] = {
            "items": [
                {"doc": {"id": entry["doc"]}, "apply": True, "amount": number(entry["amount"])}
                for entry in header.get("apply", [])
            ]
        }
    method = ref_id(header.get("paymentMethod"))
    if method is not None:
        fields["paymentMethod"] = {"id": method, "refName": PAYMENT_METHODS.get(int(method), "")}
    return fields


def state_record(conn: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    header = json.loads(row["record"])
    lines = conn.execute(
        "SELECT l.*, i.itemid FROM ns_transactionline l LEFT JOIN ns_item i ON i.id = l.item "
        "WHERE l.[transaction] = ? AND l.mainline = 'F' ORDER BY l.linesequencenumber",
        (row["id"],),
    ).fetchall()
    return {
        "id": str(row["id"]),
        "tranId": row["tranid"],
        "externalId": row["externalid"],
        "createdFrom": str(row["createdfrom"]) if row["createdfrom"] is not None else None,
        "entity": str(row["entity"]) if row["entity"] is not None else None,
        "status": row["status"],
        "tranDate": row["trandate"],
        "memo": row["memo"],
        "total": str(money(Decimal(str(row["foreigntotal"] or 0)))),
        SHIPPING: header.get(SHIPPING),
        "apply": header.get("apply"),
        "lines": [
            {
                "line": line["id"],
                "orderLine": line["orderline"],
                "item": str(line["item"]),
                "sku": line["itemid"],
                "quantity": number(line["quantity"]),
                "quantityReceived": number(line["quantityshiprecv"]),
                "isClosed": line["isclosed"] == "T",
                "amount": str(money(Decimal(str(line["netamount"] or 0)))),
            }
            for line in lines
        ],
    }


REFUND_STATE_KEYS = {
    "RtnAuth": "return_authorizations",
    "CashRfnd": "cash_refunds",
    "CustCred": "credit_memos",
    "CustRfnd": "customer_refunds",
}


def state(conn: sqlite3.Connection) -> dict[str, Any]:
    result: dict[str, list[dict[str, Any]]] = {key: [] for key in REFUND_STATE_KEYS.values()}
    rows = conn.execute(
        f"SELECT * FROM ns_transaction WHERE type IN ({_in(tuple(REFUND_STATE_KEYS))}) ORDER BY id"
    ).fetchall()
    for row in rows:
        result[REFUND_STATE_KEYS[row["type"]]].append(state_record(conn, row))
    return result
