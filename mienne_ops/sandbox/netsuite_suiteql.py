"""SuiteQL for the NetSuite sandbox: a query is rewritten into SQLite SQL and run on the fake's tables.

The fake keeps NetSuite's analytics tables (``transaction``, ``transactionline``, ``item``, ...) as
real SQLite tables prefixed ``ns_``, so SuiteQL can run as SQL instead of through canned templates.
The rewrite is deliberately small: table names after FROM / JOIN become views over those tables,
``BUILTIN.CF`` / ``BUILTIN.DF`` SQL expressions, ``SYSDATE`` the world's clock and ``NVL`` ``IFNULL``.
String literals are never touched. The views hand date columns out as tagged DATE values, and
``TO_CHAR`` / ``TO_DATE`` / ``TRUNC`` are SQL functions with Oracle's meaning (`netsuite_dates`). Rows
come back the way SuiteQL returns them: lower-case keys, every value a string, NULL columns omitted,
dates in the account's date format preference.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime
from typing import Any

from mienne_ops.sandbox import netsuite_dates as dates

#: SuiteQL table name (lower case) -> sandbox table.
TABLES = {
    "transaction": "ns_transaction",
    "transactionline": "ns_transactionline",
    "item": "ns_item",
    "itemmember": "ns_itemmember",
    "kititemmember": "ns_itemmember",
    "customer": "ns_customer",
    "location": "ns_location",
    "aggregateitemlocation": "ns_aggregateitemlocation",
    "inventorybalance": "ns_aggregateitemlocation",
    "bomassembly": "ns_bomassembly",
    "bomrevision": "ns_bomrevision",
    "bomrevisioncomponent": "ns_bomrevisioncomponent",
    "bomrevisioncomponentmember": "ns_bomrevisioncomponent",
}

#: Display text of a status letter, per transaction type (what ``BUILTIN.DF(t.status)`` returns).
STATUS_NAMES = {
    "SalesOrd": {
        "A": "Pending Approval",
        "B": "Pending Fulfillment",
        "C": "Cancelled",
        "D": "Partially Fulfilled",
        "E": "Pending Billing/Partially Fulfilled",
        "F": "Pending Billing",
        "G": "Billed",
        "H": "Closed",
    },
    "ItemShip": {"A": "Picked", "B": "Packed", "C": "Shipped"},
    "CashSale": {"A": "Unapproved Payment", "B": "Not Deposited", "C": "Deposited"},
    "CustInvc": {"A": "Open", "B": "Paid In Full"},
    "RtnAuth": {
        "A": "Pending Approval",
        "B": "Pending Receipt",
        "C": "Cancelled",
        "D": "Partially Received",
        "E": "Pending Refund/Partially Received",
        "F": "Pending Refund",
        "G": "Refunded",
        "H": "Closed",
    },
    "CustCred": {"A": "Open", "B": "Fully Applied"},
}

#: ``BUILTIN.DF(<alias>.<column>)`` for reference columns: a scalar subquery giving the display name.
_DISPLAY_LOOKUPS = {
    "entity": "(SELECT COALESCE(companyname, firstname || ' ' || lastname) FROM ns_customer "
    "WHERE ns_customer.id = {ref})",
    "item": "(SELECT itemid FROM ns_item WHERE ns_item.id = {ref})",
    "location": "(SELECT name FROM ns_location WHERE ns_location.id = {ref})",
    "shipmethod": "(SELECT itemid FROM ns_item WHERE ns_item.id = {ref})",
    "createdfrom": "(SELECT tranid FROM ns_transaction WHERE ns_transaction.id = {ref})",
}

_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
_TABLE_AFTER_KEYWORD = re.compile(r"\b(FROM|JOIN)(\s+)([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
_BUILTIN = re.compile(r"BUILTIN\.(CF|DF)\(\s*(?:([A-Za-z_]\w*)\.)?([A-Za-z_]\w*)\s*\)", re.IGNORECASE)
# `transaction` is an SQLite keyword; as a column (transactionline.transaction) it must be quoted.
_TRANSACTION_COLUMN = re.compile(r"(?<![\w\[])transaction\b", re.IGNORECASE)
_SYSDATE = re.compile(r"\bSYSDATE\b", re.IGNORECASE)
_NVL = re.compile(r"\bNVL\s*\(", re.IGNORECASE)
_WRITE_STATEMENT = re.compile(
    r"^\s*(INSERT|UPDATE|DELETE|DROP|CREATE|ALTER|ATTACH|PRAGMA|REPLACE)\b", re.IGNORECASE
)

MAX_TOTAL_ROWS = 100_000


class SuiteQLError(ValueError):
    """The query is not valid SuiteQL (rendered as 400 INVALID_PARAMETER)."""


#: Views the rewritten queries read (``nsq_<name>`` over ``ns_<name>``), rebuilt when the schema moves.
_VIEW_PREFIX = "nsq_"
_views_built_at: dict[int, int] = {}
_function_errors: dict[int, dates.DateError] = {}


def register_functions(conn: sqlite3.Connection, preferences: dates.Preferences) -> None:
    """SQL functions the rewritten queries call; the date ones read the account's preferences."""
    conn.create_function("ns_status_name", 2, _status_name, deterministic=True)
    conn.create_function("ns_date", 1, dates.tag, deterministic=True)
    conn.create_function("ns_display", 1, lambda value: dates.display(value, preferences.date_format))
    conn.create_function("trunc", 1, _reporting(conn, dates.trunc))

    def to_char(value: Any, fmt: str | None = None) -> str | None:
        return dates.to_char(value, fmt, preferences.date_format)

    def to_date(text: Any, fmt: str | None = None) -> str | None:
        return dates.to_date(text, fmt, preferences.date_format)

    for name, function in (("to_char", to_char), ("to_date", to_date), ("to_timestamp", to_date)):
        conn.create_function(name, -1, _reporting(conn, function))


def _reporting(conn: sqlite3.Connection, function: Any) -> Any:
    """SQLite hides a Python function's exception; keep a DateError for `run` to report."""

    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except (dates.DateError, TypeError, ValueError) as error:
            _function_errors[id(conn)] = dates.DateError(str(error))
            raise

    return call


def _ensure_views(conn: sqlite3.Connection) -> None:
    """One view per sandbox table, date columns tagged; rebuilt whenever a column was added."""
    version = conn.execute("PRAGMA schema_version").fetchone()[0]
    if _views_built_at.get(id(conn)) == version:
        return
    for table in sorted(set(TABLES.values())):
        # table_xinfo also lists generated columns (recordtype, fullname...); hidden = 1 never occurs here.
        columns = [row[1] for row in conn.execute(f"PRAGMA table_xinfo({table})") if row[6] != 1]
        select = ", ".join(
            f"ns_date([{c}]) AS [{c}]" if c.lower() in dates.DATE_COLUMNS else f"[{c}]" for c in columns
        )
        view = _VIEW_PREFIX + table.removeprefix("ns_")
        conn.execute(f"DROP VIEW IF EXISTS {view}")
        conn.execute(f"CREATE VIEW {view} AS SELECT {select} FROM {table}")
    _views_built_at[id(conn)] = conn.execute("PRAGMA schema_version").fetchone()[0]


def _status_name(tran_type: str | None, letter: str | None) -> str | None:
    if letter is None:
        return None
    return STATUS_NAMES.get(tran_type or "", {}).get(letter, letter)


def rewrite(query: str, now: datetime) -> str:
    """SuiteQL -> SQLite SQL over the ``ns_`` tables (string literals left as they are)."""
    if _WRITE_STATEMENT.match(query) or ";" in _STRING_LITERAL.sub("''", query).rstrip().rstrip(";"):
        raise SuiteQLError("Only single SELECT statements are allowed")
    pieces: list[str] = []
    position = 0
    for literal in _STRING_LITERAL.finditer(query):
        pieces.append(_rewrite_code(query[position : literal.start()], now))
        pieces.append(literal.group(0))
        position = literal.end()
    pieces.append(_rewrite_code(query[position:], now))
    return "".join(pieces).rstrip().rstrip(";")


def _rewrite_code(code: str, now: datetime) -> str:
    code = _TABLE_AFTER_KEYWORD.sub(_prefix_table, code)
    code = _BUILTIN.sub(_builtin, code)
    code = _TRANSACTION_COLUMN.sub("[transaction]", code)
    code = _SYSDATE.sub(f"'{dates.sysdate(now)}'", code)
    return _NVL.sub("IFNULL(", code)


def _prefix_table(match: re.Match[str]) -> str:
    keyword, space, name = match.groups()
    table = TABLES.get(name.lower())
    if table is None:
        # Unknown names are left alone; SQLite then reports them, rendered as a 400 like NetSuite.
        return match.group(0)
    return f"{keyword}{space}{_VIEW_PREFIX}{table.removeprefix('ns_')}"


def _builtin(match: re.Match[str]) -> str:
    function, alias, column = match.group(1).upper(), match.group(2), match.group(3).lower()
    prefix = f"{alias}." if alias else ""
    ref = f"{prefix}{column}"
    if column == "status" and function == "CF":
        return f"({prefix}type || ':' || {ref})"
    if column == "status":
        return f"ns_status_name({prefix}type, {ref})"
    if function == "DF" and column in _DISPLAY_LOOKUPS:
        return _DISPLAY_LOOKUPS[column].format(ref=ref)
    if function == "DF" and column in dates.DATE_COLUMNS:
        return f"ns_display({ref})"  # a date's display text: the account's date format
    return ref


def run(
    conn: sqlite3.Connection, query: str, now: datetime, preferences: dates.Preferences
) -> list[dict[str, str]]:
    """All rows of the query (capped at 100,000) as SuiteQL items, without the ``links`` key."""
    sql = rewrite(query, now)
    _ensure_views(conn)
    _function_errors.pop(id(conn), None)
    try:
        cursor = conn.execute(sql)
        names = [column[0].lower() for column in cursor.description or ()]
        rows = cursor.fetchmany(MAX_TOTAL_ROWS)
    except sqlite3.Error as error:
        reason = _function_errors.pop(id(conn), None) or error
        raise SuiteQLError(f"Invalid search query: {reason}") from error
    return [_item(names, row, preferences) for row in rows]


def _item(
    names: list[str], row: sqlite3.Row | tuple[Any, ...], preferences: dates.Preferences
) -> dict[str, str]:
    item: dict[str, str] = {}
    for name, value in zip(names, tuple(row), strict=True):
        if value is None:
            continue
        item[name] = _text(value, preferences)
    return item


def _text(value: Any, preferences: dates.Preferences) -> str:
    if dates.is_date(value):
        return dates.display(value, preferences.date_format) or ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
