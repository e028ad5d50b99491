"""The NetSuite sandbox's records: relational tables shaped like SuiteQL's, and the record rules.

Transactions, their lines, items, kit members, customers, locations and stock live in SQLite tables
named after NetSuite's analytics tables (prefixed ``ns_``) so that SuiteQL runs as SQL over the very
rows the REST record API writes. Each transaction and line also keeps its REST field values as JSON
(``record``) for GET. This module holds the record-layer rules (validation, sublist merge, status
letters, transforms); `netsuite.py` holds the HTTP side (auth, routing, concurrency, error bodies).
Every function expects to run inside the caller's `World.tx()`.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from mienne_ops.sandbox.catalog import Catalog
from mienne_ops.sandbox.netsuite_suiteql import STATUS_NAMES

SCHEMA = """
CREATE TABLE IF NOT EXISTS ns_transaction (
    id INTEGER PRIMARY KEY, tranid TEXT, type TEXT NOT NULL, rectype TEXT NOT NULL, status TEXT,
    trandate TEXT, entity INTEGER, externalid TEXT, otherrefnum TEXT, memo TEXT, createdfrom INTEGER,
    location INTEGER, shipmethod INTEGER, duedate TEXT, shipdate TEXT, createddate TEXT,
    lastmodifieddate TEXT, custbody_sent_to_3pl TEXT NOT NULL DEFAULT 'F', record TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ns_transaction_eid ON ns_transaction (rectype, externalid);
CREATE INDEX IF NOT EXISTS ns_transaction_type ON ns_transaction (type, status);
CREATE TABLE IF NOT EXISTS ns_transactionline (
    [transaction] INTEGER NOT NULL, id INTEGER NOT NULL, linesequencenumber INTEGER NOT NULL,
    item INTEGER, quantity NUMERIC, quantityshiprecv NUMERIC NOT NULL DEFAULT 0,
    quantitybilled NUMERIC NOT NULL DEFAULT 0, quantitycommitted NUMERIC NOT NULL DEFAULT 0,
    rate NUMERIC, netamount NUMERIC, location INTEGER, isclosed TEXT NOT NULL DEFAULT 'F',
    itemtype TEXT, mainline TEXT NOT NULL DEFAULT 'F', taxline TEXT NOT NULL DEFAULT 'F',
    createdfrom INTEGER, orderline INTEGER, memo TEXT, custcol_shopify_line_id TEXT,
    custcol_dcl_quantity TEXT, record TEXT,
    PRIMARY KEY ([transaction], id)
);
CREATE TABLE IF NOT EXISTS ns_item (
    id INTEGER PRIMARY KEY, itemid TEXT NOT NULL, displayname TEXT, itemtype TEXT NOT NULL,
    isinactive TEXT NOT NULL DEFAULT 'F', upccode TEXT, externalid TEXT, baseprice NUMERIC,
    custitem_dcl_ship_components TEXT
);
CREATE TABLE IF NOT EXISTS ns_itemmember (
    parentitem INTEGER NOT NULL, item INTEGER NOT NULL, quantity NUMERIC NOT NULL,
    linenumber INTEGER, effectivedate TEXT, obsoletedate TEXT, itemsource TEXT DEFAULT 'STOCK'
);
CREATE TABLE IF NOT EXISTS ns_customer (
    id INTEGER PRIMARY KEY, entityid TEXT, email TEXT, firstname TEXT, lastname TEXT,
    companyname TEXT, phone TEXT, externalid TEXT UNIQUE, isinactive TEXT NOT NULL DEFAULT 'F',
    isperson TEXT NOT NULL DEFAULT 'T', datecreated TEXT, lastmodifieddate TEXT, record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ns_location (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, isinactive TEXT NOT NULL DEFAULT 'F', externalid TEXT
);
CREATE TABLE IF NOT EXISTS ns_aggregateitemlocation (
    item INTEGER NOT NULL, location INTEGER NOT NULL, quantityonhand NUMERIC NOT NULL DEFAULT 0,
    quantityavailable NUMERIC NOT NULL DEFAULT 0, quantitycommitted NUMERIC NOT NULL DEFAULT 0,
    quantityonorder NUMERIC NOT NULL DEFAULT 0, quantitybackordered NUMERIC NOT NULL DEFAULT 0,
    quantityintransit NUMERIC NOT NULL DEFAULT 0, preferredstocklevel NUMERIC, reorderpoint NUMERIC,
    averagecostmli NUMERIC, binnumber TEXT, inventorystatus TEXT, inventorynumber TEXT,
    PRIMARY KEY (item, location)
);
CREATE TABLE IF NOT EXISTS ns_bomassembly (billofmaterials INTEGER, assembly INTEGER);
CREATE TABLE IF NOT EXISTS ns_bomrevision (
    id INTEGER PRIMARY KEY, billofmaterials INTEGER, effectivestartdate TEXT, effectiveenddate TEXT,
    isinactive TEXT NOT NULL DEFAULT 'F'
);
CREATE TABLE IF NOT EXISTS ns_bomrevisioncomponent (
    bomrevision INTEGER, item INTEGER, bomquantity NUMERIC, quantity NUMERIC, componentyield NUMERIC,
    units TEXT, itemsource TEXT, lineid INTEGER
);
"""

#: Standard SuiteQL columns added after the first schema: created with the tables, and added to a
#: sandbox file written by an older version (``ALTER TABLE ADD COLUMN``), so a kept world still works.
STANDARD_COLUMNS = {
    "ns_transaction": (
        ("voided", "TEXT NOT NULL DEFAULT 'F'"),
        # The order / bill total in the transaction currency, positive (kept by `refresh_total`).
        ("foreigntotal", "NUMERIC"),
        # NetSuite's record type id, lower case ('salesorder', 'itemfulfillment', ...).
        ("recordtype", "TEXT GENERATED ALWAYS AS (lower(rectype)) VIRTUAL"),
    ),
    "ns_transactionline": (
        # The kit line's id on a kit component line (hidden member rows), else NULL.
        ("kitmemberof", "INTEGER"),
        # A line's key unique across all transactions (the line id is unique only within one).
        ("uniquekey", "INTEGER"),
        ("quantitybackordered", "NUMERIC NOT NULL DEFAULT 0"),
        ("foreignamount", "NUMERIC GENERATED ALWAYS AS (netamount) VIRTUAL"),
    ),
    "ns_item": (
        ("description", "TEXT"),
        ("createddate", "TEXT"),
        ("lastmodifieddate", "TEXT"),
        ("fullname", "TEXT GENERATED ALWAYS AS (itemid) VIRTUAL"),
    ),
}
#: Every transaction has exactly one main line (``mainline = 'T'``, no item, line id 0), as in NetSuite;
#: a trigger writes it so that no insert of a transaction can forget it.
MAINLINE_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS ns_transaction_mainline AFTER INSERT ON ns_transaction BEGIN
    INSERT INTO ns_transactionline ([transaction], id, linesequencenumber, mainline, createdfrom, record)
    VALUES (NEW.id, 0, 0, 'T', NEW.createdfrom, '{}');
END
"""
UNIQUEKEY_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS ns_transactionline_uniquekey AFTER INSERT ON ns_transactionline BEGIN
    UPDATE ns_transactionline SET uniquekey = NEW.rowid WHERE rowid = NEW.rowid;
END
"""

TABLES = (
    "ns_transaction",
    "ns_transactionline",
    "ns_item",
    "ns_itemmember",
    "ns_customer",
    "ns_location",
    "ns_aggregateitemlocation",
    "ns_bomassembly",
    "ns_bomrevision",
    "ns_bomrevisioncomponent",
)

#: REST record type -> SuiteQL transaction type code.
TRANSACTION_TYPES = {
    "salesOrder": "SalesOrd",
    "itemFulfillment": "ItemShip",
    "cashSale": "CashSale",
    "invoice": "CustInvc",
    "purchaseOrder": "PurchOrd",
    "itemReceipt": "ItemRcpt",
    "transferOrder": "TrnfrOrd",
    "returnAuthorization": "RtnAuth",
    "creditMemo": "CustCred",
    "cashRefund": "CashRfnd",
    "customerRefund": "CustRfnd",
}
TRANID_PREFIX = {
    "SalesOrd": "SO",
    "ItemShip": "IF",
    "CashSale": "CS",
    "CustInvc": "INV",
    "RtnAuth": "RMA",
    "CashRfnd": "CR",
    "CustCred": "CM",
    "CustRfnd": "CRF",
}
#: Item type code -> REST record type of the item (for reference links).
ITEM_RECORD_TYPES = {"InvtPart": "inventoryItem", "Kit": "kitItem", "ShipItem": "shipItem"}
#: Transactions whose item lines carry negative quantities in SuiteQL (stock leaving / sales side).
NEGATIVE_QUANTITY_TYPES = {"SalesOrd", "ItemShip", "CashSale", "CustInvc"}

SALES_ORDER_FIELDS = {
    "entity",
    "customForm",
    "tranDate",
    "tranId",
    "externalId",
    "otherRefNum",
    "memo",
    "orderStatus",
    "location",
    "shipMethod",
    "shipAddress",
    "shippingAddress",
    "billAddress",
    "billingAddress",
    "subsidiary",
    "currency",
    "department",
    "class",
    "email",
    "shippingCost",
    "discountItem",
    "discountRate",
    "startDate",
    "endDate",
    "salesRep",
    "terms",
    "paymentMethod",
    "item",
    "shipDate",
    "shipComplete",
    "toBeEmailed",
    "isTaxable",
    "taxTotal",
    "source",
    "leadSource",
    "message",
}
LINE_FIELDS = {
    "item",
    "quantity",
    "rate",
    "amount",
    "price",
    "description",
    "location",
    "isClosed",
    "line",
    "taxCode",
    "units",
    "itemType",
    "quantityFulfilled",
    "quantityBilled",
    "quantityCommitted",
    "quantityBackOrdered",
    "commitInventory",
    "createPo",
}
CUSTOMER_FIELDS = {
    "entityId",
    "externalId",
    "email",
    "firstName",
    "lastName",
    "companyName",
    "phone",
    "isPerson",
    "isInactive",
    "subsidiary",
    "customForm",
    "addressBook",
    "category",
    "currency",
    "comments",
}
INVALID_LOGIN_HINT = "see the Login Audit Trail"
NOTHING_TO_DO = "You must enter at least one line item for this transaction."
_CUSTOM_FIELD = re.compile(r"^(custbody|custcol)_[a-z0-9_]{1,60}$")


#: Package sublist of an item fulfillment per carrier integration of the order's ship method, and the
#: suffix its fields carry (SuiteTalk schema: ``packageUps`` / ``packageTrackingNumberUps``,
#: ``packageFedEx`` / ``packageTrackingNumberFedEx``; plain ``package`` when not integrated).
PACKAGE_SUBLISTS = {None: ("package", ""), "ups": ("packageUps", "Ups"), "fedex": ("packageFedEx", "FedEx")}
#: NetSuite's standard payment methods (internal id -> name).
PAYMENT_METHODS = {1: "Cash", 2: "Check", 3: "Discover", 4: "Master Card", 5: "VISA", 6: "American Express"}


@dataclass
class AccountSettings:
    """How this NetSuite account is set up, where accounts differ (the control plane switches them).

    - ``one_world``: subsidiaries exist; a new customer must name its (primary) ``subsidiary``.
    - ``integrated_ship_methods``: ship item id -> ``"ups"`` / ``"fedex"`` for ship methods with a
      carrier integration; their fulfillments keep tracking in ``packageUps`` / ``packageFedEx``
      and have no plain ``package`` sublist.
    - ``cash_sale_requires_payment_method``: a form / workflow that makes Payment Method mandatory.
    - ``direct_refund_transforms``: cashSale -> cashRefund and invoice -> creditMemo transforms are
      allowed (SuiteScript's transformation list has them; netsuite.md §9 lists only the RMA route).
      Off: they answer 400 like any unsupported transform, and only the RMA route works.
    - ``refund_shipping_cost``: cash refunds, credit memos and RMAs carry the ``shippingCost`` header
      field (defaulting to the source's shipping not yet refunded). Off: the forms have no such
      field (dropped as unknown under ``Warning``, 400 under ``Error``), so shipping is refunded only
      through an item line.
    """

    one_world: bool = False
    subsidiaries: dict[int, str] = field(default_factory=lambda: {1: "Mienne Inc.", 2: "Mienne Europe"})
    integrated_ship_methods: dict[int, str] = field(default_factory=dict)
    cash_sale_requires_payment_method: bool = False
    direct_refund_transforms: bool = True
    refund_shipping_cost: bool = True
    _REFUND_FLAGS: ClassVar[tuple[str, ...]] = ("direct_refund_transforms", "refund_shipping_cost")

    def describe(self) -> dict[str, Any]:
        return {
            "one_world": self.one_world,
            "integrated_ship_methods": {str(k): v for k, v in self.integrated_ship_methods.items()},
            "cash_sale_requires_payment_method": self.cash_sale_requires_payment_method,
            "direct_refund_transforms": self.direct_refund_transforms,
            "refund_shipping_cost": self.refund_shipping_cost,
        }

    def update(self, body: Any) -> None:
        """Apply a control-plane body; ValueError (-> 400) on anything unexpected."""
        if not isinstance(body, dict) or set(body) - set(self.describe()):
            raise ValueError(f"the body takes only {', '.join(self.describe())}")
        flags = ("one_world", "cash_sale_requires_payment_method", *self._REFUND_FLAGS)
        for flag in flags:
            if flag in body and not isinstance(body[flag], bool):
                raise ValueError(f"{flag} must be true or false")
        methods = body.get("integrated_ship_methods", {})
        if not isinstance(methods, dict) or not all(
            str(k).isdigit() and v in ("ups", "fedex") for k, v in methods.items()
        ):
            raise ValueError('integrated_ship_methods maps ship item ids to "ups" or "fedex"')
        self.one_world = body.get("one_world", self.one_world)
        self.cash_sale_requires_payment_method = body.get(
            "cash_sale_requires_payment_method", self.cash_sale_requires_payment_method
        )
        if "integrated_ship_methods" in body:
            self.integrated_ship_methods = {int(k): v for k, v in methods.items()}
        for flag in self._REFUND_FLAGS:
            setattr(self, flag, body.get(flag, getattr(self, flag)))


class NsError(Exception):
    """A record-layer failure, rendered by `netsuite.py` in NetSuite's error body."""

    def __init__(self, status: int, code: str, detail: str, path: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.path = path


def invalid_reference(field: str, value: Any, path: str | None) -> NsError:
    """A reference to a record that does not exist (or may not be used): Oracle's documented answer is
    400 ``INVALID_CONTENT`` "You have entered an Invalid Field Value …" with the JSON path (REST error
    handling, section_156570709583)."""
    return NsError(
        400,
        "INVALID_CONTENT",
        f"Error while accessing resource: You have entered an Invalid Field Value {value} "
        f"for the following field: {field}",
        path,
    )


def not_found(record_type: str, ref: str) -> NsError:
    return NsError(404, "NONEXISTENT_ID", f"The record instance does not exist ({record_type} {ref}).")


# -- seeding --------------------------------------------------------------------------------------


def create_schema(conn: sqlite3.Connection) -> None:
    # One statement at a time: executescript would COMMIT the world's open transaction.
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    for table, columns in STANDARD_COLUMNS.items():
        present = {row[1] for row in conn.execute(f"PRAGMA table_xinfo({table})")}
        for name, definition in columns:
            if name not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")
    conn.execute(MAINLINE_TRIGGER)
    conn.execute(UNIQUEKEY_TRIGGER)


def clear(conn: sqlite3.Connection) -> None:
    for table in TABLES:
        conn.execute(f"DELETE FROM {table}")


def seed(conn: sqlite3.Connection, catalog: Catalog, stock_for: Any) -> None:
    """Items, kit members, locations, ship methods, known customers and stock from the catalog."""
    for location in catalog.locations:
        conn.execute(
            "INSERT INTO ns_location (id, name) VALUES (?, ?)", (location.netsuite_location_id, location.name)
        )
    for sku in catalog.skus:
        conn.execute(
            "INSERT INTO ns_item (id, itemid, displayname, itemtype, isinactive, baseprice) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (sku.netsuite_item_id, sku.sku, sku.title, sku.item_type, _tf(not sku.active), sku.price),
        )
    for service in catalog.service_items:
        conn.execute(
            "INSERT INTO ns_item (id, itemid, displayname, itemtype) VALUES (?, ?, ?, ?)",
            (service.netsuite_item_id, service.itemid, service.itemid, service.item_type),
        )
    by_sku = catalog.by_sku()
    for bundle in catalog.bundles:
        # Item custom field: does DCL pick this kit as its components (T) or stock it pre-packed (F)?
        conn.execute(
            "UPDATE ns_item SET custitem_dcl_ship_components = ? WHERE id = ?",
            (_tf(bundle.ship_as_components), by_sku[bundle.sku].netsuite_item_id),
        )
        for number, member in enumerate(bundle.components, start=1):
            conn.execute(
                "INSERT INTO ns_itemmember (parentitem, item, quantity, linenumber) VALUES (?, ?, ?, ?)",
                (
                    by_sku[bundle.sku].netsuite_item_id,
                    by_sku[member.component_sku].netsuite_item_id,
                    member.quantity,
                    number,
                ),
            )
    for method in catalog.ship_methods:
        conn.execute(
            "INSERT INTO ns_item (id, itemid, displayname, itemtype) VALUES (?, ?, ?, 'ShipItem')",
            (method.netsuite_ship_method_id, method.title, method.title),
        )
    for customer in catalog.customers:
        if customer.netsuite_customer_id is None:
            continue
        record = {"email": customer.email, "firstName": customer.first_name, "lastName": customer.last_name}
        conn.execute(
            "INSERT INTO ns_customer (id, entityid, email, firstname, lastname, record) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                customer.netsuite_customer_id,
                f"CUST{customer.netsuite_customer_id}",
                customer.email,
                customer.first_name,
                customer.last_name,
                json.dumps(record),
            ),
        )
    for sku in catalog.skus:
        if sku.item_type != "InvtPart":
            continue
        for location in catalog.locations:
            on_hand = stock_for(sku.netsuite_item_id, location.netsuite_location_id)
            conn.execute(
                "INSERT INTO ns_aggregateitemlocation (item, location, quantityonhand, quantityavailable, "
                "preferredstocklevel, reorderpoint) VALUES (?, ?, ?, ?, 50, 20)",
                (sku.netsuite_item_id, location.netsuite_location_id, on_hand, on_hand),
            )


# -- small conversions ----------------------------------------------------------------------------


def _tf(flag: Any) -> str:
    return "T" if flag else "F"


def ref_id(value: Any) -> str | None:
    """The id of a reference written as ``{"id": "6"}``, ``"6"`` or ``6``."""
    if isinstance(value, dict):
        value = value.get("id")
    if value is None or value == "":
        return None
    return str(value)


def to_int(value: Any, path: str) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        raise invalid_reference(path.rsplit(".", 1)[-1], value, path) from None


def to_decimal(value: Any, path: str) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise NsError(400, "INVALID_CONTENT", f"Invalid number {value!r} for field '{path}'.", path) from None


def number(value: Any) -> int | float:
    """A NUMERIC column value as a JSON number (whole numbers as int)."""
    result = Decimal(str(value or 0))
    return int(result) if result == result.to_integral_value() else float(result)


def check_property_names(body: dict[str, Any], known: set[str], mode: str, prefix: str = "") -> None:
    """`X-NetSuite-PropertyNameValidation: Error` rejects unknown fields; Warning/Ignore drop them."""
    if mode.lower() != "error":
        return
    for name in body:
        if name not in known and not _CUSTOM_FIELD.match(name) and name not in ("links", "id"):
            raise NsError(400, "INVALID_CONTENT", f"Unknown field '{prefix}{name}'.", f"{prefix}{name}")


def custom_fields(body: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k.startswith(f"{kind}_") and _CUSTOM_FIELD.match(k)}


def ensure_column(conn: sqlite3.Connection, table: str, column: str) -> None:
    """Custom fields become real columns on first use, so SuiteQL can select and filter them."""
    columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    if column not in columns:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")


def sql_value(value: Any) -> Any:
    """A REST field value as SuiteQL stores it (checkbox -> 'T'/'F', reference -> id)."""
    if isinstance(value, bool):
        return _tf(value)
    if isinstance(value, dict):
        return ref_id(value)
    if isinstance(value, list):
        return json.dumps(value)
    return value


# -- lookups --------------------------------------------------------------------------------------


def load_transaction(conn: sqlite3.Connection, record_type: str, ref: str) -> sqlite3.Row:
    """A transaction by internal id or ``eid:<externalId>``; 404 if absent or of another type."""
    if ref.startswith("eid:"):
        row = conn.execute(
            "SELECT * FROM ns_transaction WHERE rectype = ? AND externalid = ?", (record_type, ref[4:])
        ).fetchone()
    elif ref.isdigit():
        row = conn.execute(
            "SELECT * FROM ns_transaction WHERE rectype = ? AND id = ?", (record_type, int(ref))
        ).fetchone()
    else:
        row = None
    if row is None:
        raise not_found(record_type, ref)
    return row


def item_lines(conn: sqlite3.Connection, transaction_id: int) -> list[sqlite3.Row]:
    """The lines of the item sublist as REST shows them: no main line, no hidden kit member lines."""
    return conn.execute(
        "SELECT * FROM ns_transactionline WHERE [transaction] = ? AND mainline = 'F' "
        "AND kitmemberof IS NULL ORDER BY linesequencenumber",
        (transaction_id,),
    ).fetchall()


def kit_member_lines(conn: sqlite3.Connection, transaction_id: int, kit_line_id: int) -> list[sqlite3.Row]:
    """The hidden component lines of one kit line (``kitmemberof`` = the kit line's id)."""
    return conn.execute(
        "SELECT * FROM ns_transactionline WHERE [transaction] = ? AND kitmemberof = ? "
        "ORDER BY linesequencenumber",
        (transaction_id, kit_line_id),
    ).fetchall()


def kit_members(conn: sqlite3.Connection, kit_item_id: int) -> list[sqlite3.Row]:
    """A kit item's BOM (``itemMember``) with each member's item type."""
    return conn.execute(
        "SELECT im.item, im.quantity, i.itemtype FROM ns_itemmember im JOIN ns_item i ON i.id = im.item "
        "WHERE im.parentitem = ? ORDER BY im.linenumber",
        (kit_item_id,),
    ).fetchall()


def require_customer(conn: sqlite3.Connection, value: Any, path: str = "entity") -> int:
    if isinstance(value, dict) and "externalId" in value and "id" not in value:
        row = conn.execute(
            "SELECT id FROM ns_customer WHERE externalid = ?", (value["externalId"],)
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT id FROM ns_customer WHERE id = ?", (to_int(ref_id(value), path),)
        ).fetchone()
    if row is None:
        raise invalid_reference(path, ref_id(value), path)
    return row["id"]


def require_item(conn: sqlite3.Connection, value: Any, path: str) -> sqlite3.Row:
    item_id = to_int(ref_id(value), path)
    row = conn.execute("SELECT * FROM ns_item WHERE id = ? AND itemtype != 'ShipItem'", (item_id,)).fetchone()
    if row is None or row["isinactive"] == "T":
        raise invalid_reference("item", item_id, path)
    return row


def require_location(conn: sqlite3.Connection, value: Any, path: str) -> int | None:
    if ref_id(value) is None:
        return None
    location_id = to_int(ref_id(value), path)
    if conn.execute("SELECT 1 FROM ns_location WHERE id = ?", (location_id,)).fetchone() is None:
        raise invalid_reference("location", location_id, path)
    return location_id


def require_ship_method(conn: sqlite3.Connection, value: Any) -> int | None:
    if ref_id(value) is None:
        return None
    method_id = to_int(ref_id(value), "shipMethod")
    row = conn.execute(
        "SELECT 1 FROM ns_item WHERE id = ? AND itemtype = 'ShipItem'", (method_id,)
    ).fetchone()
    if row is None:
        raise invalid_reference("shipMethod", method_id, "shipMethod")
    return method_id


def assert_external_id_free(conn: sqlite3.Connection, record_type: str, external_id: str | None) -> None:
    if not external_id:
        return
    taken = conn.execute(
        "SELECT id FROM ns_transaction WHERE rectype = ? AND externalid = ?", (record_type, external_id)
    ).fetchone()
    if taken is not None:
        raise NsError(
            400,
            "DUP_RCRD",
            f"A {record_type} record with external ID {external_id} already exists.",
            "externalId",
        )


# -- status letters -------------------------------------------------------------------------------


def sales_order_status(header: dict[str, Any], lines: list[sqlite3.Row]) -> str:
    """The SO status letter derived from approval, closing and fulfilled / billed quantities."""
    if header.get("_cancelled"):
        return "C"
    shipped = sum(Decimal(str(line["quantityshiprecv"])) for line in lines)
    billed = sum(Decimal(str(line["quantitybilled"])) for line in lines)
    if lines and all(line["isclosed"] == "T" for line in lines):
        return "F" if shipped > billed else "H"
    if ref_id(header.get("orderStatus")) == "A" and shipped == 0:
        return "A"
    ordered = sum(
        Decimal(str(line["quantityshiprecv"]))
        if line["isclosed"] == "T"
        else abs(Decimal(str(line["quantity"])))
        for line in lines
    )
    if shipped == 0:
        return "B"
    if shipped < ordered:
        return "E" if shipped > billed else "D"
    return "G" if billed >= shipped else "F"


def refresh_total(conn: sqlite3.Connection, transaction_id: int) -> None:
    """``foreigntotal``: the item lines' amounts (members carry none), positive like NetSuite's."""
    conn.execute(
        "UPDATE ns_transaction SET foreigntotal = (SELECT ROUND(COALESCE(SUM(l.netamount), 0), 2) * "
        "(CASE WHEN ns_transaction.type IN ({}) THEN -1 ELSE 1 END) FROM ns_transactionline l "
        "WHERE l.[transaction] = ns_transaction.id AND l.mainline = 'F' AND l.kitmemberof IS NULL) "
        "WHERE id = ?".format(", ".join(f"'{code}'" for code in sorted(NEGATIVE_QUANTITY_TYPES))),
        (transaction_id,),
    )


def status_name(tran_type: str, letter: str) -> str:
    return STATUS_NAMES.get(tran_type, {}).get(letter, letter)
