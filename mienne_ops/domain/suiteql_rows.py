"""The SuiteQL rows flows B, C and D read, as typed models parsed once where the rows arrive.

SuiteQL answers every value as a string, omits NULL columns and spells booleans ``'T'``/``'F'``
(netsuite.md §10.1). Each model here names the columns its query selects and reads them into
Python types: quantities as whole ints (`domain.quantities`: "2.5" is refused, never truncated),
flags as bools, ids as text. `parse_rows` parses a query's rows into a model and keeps each row
that does not fit as an `UnreadableRow` with the reason (``invalid_quantity`` for a quantity,
``unreadable_row`` otherwise) and the raw row, so the record it belongs to is quarantined with that
reason instead of crashing a batch or being dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from mienne_ops.domain.quantities import INVALID_QUANTITY, UnreadableQuantity, whole_number

UNREADABLE_ROW = "unreadable_row"


def _whole(value: Any) -> int:
    try:
        return whole_number(value)
    except UnreadableQuantity as why:
        raise ValueError(str(why)) from None


def _whole_or_zero(value: Any) -> int:
    return 0 if value in (None, "") else _whole(value)


def _whole_or_none(value: Any) -> int | None:
    return None if value in (None, "") else _whole(value)


def _text_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


#: A whole quantity; an omitted (NULL) column is 0.
Quantity = Annotated[int, BeforeValidator(_whole_or_zero)]
#: A whole quantity that must be there.
RequiredQuantity = Annotated[int, BeforeValidator(_whole)]
#: A whole quantity where an omitted column means "not set".
OptionalQuantity = Annotated[int | None, BeforeValidator(_whole_or_none)]
#: An internal id or line id (whole number).
LineId = Annotated[int, BeforeValidator(_whole)]
#: ``'T'`` / ``'F'``; an omitted column is F.
Flag = Annotated[bool, BeforeValidator(lambda value: str(value or "F").strip().upper() == "T")]
#: Text; an omitted or empty column is None.
Text = Annotated[str | None, BeforeValidator(_text_or_none)]
#: Text; an omitted column is "".
Blank = Annotated[str, BeforeValidator(lambda value: "" if value is None else str(value))]
#: Text that must be there (an internal id).
Id = Annotated[str, BeforeValidator(lambda value: value if value in (None, "") else str(value))]

#: Quantity columns by the words an operator reads in a reason.
QUANTITY_LABELS = {
    "qty": "quantity",
    "qty_shipped": "quantity shipped",
    "qty_received": "received",
    "dcl_qty": "DCL quantity",
}


class SuiteQLModel(BaseModel):
    """Rows carry NetSuite's empty ``links`` and columns a reader does not need: ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class PendingSalesOrder(SuiteQLModel):
    """Flow B: an approved sales order not yet sent to DCL (`sync.dispatch.PENDING_DISPATCH_QUERY`)."""

    id: Id
    tranid: Text = None
    externalid: Text = None
    otherrefnum: Text = None
    trandate: Text = None
    entity: Text = None


class SalesOrderLine(SuiteQLModel):
    """Flows B and C: an item line of a sales order (`sync.dispatch.LINES_QUERY`, ``ABS`` quantity)."""

    transaction: Text = None  # the sales order's internal id (the rows of many orders come together)
    line: LineId
    sku: Blank = ""
    itemtype: Text = None
    qty: Quantity = 0
    qty_shipped: Quantity = 0
    isclosed: Flag = False
    kitmemberof: Text = None
    shopify_line_id: Text = None
    dcl_qty: OptionalQuantity = None  # custcol_dcl_quantity; empty on orders written before it existed


class InboundOrderHeader(SuiteQLModel):
    """Flow D: a purchase or transfer order (`sync.inbound.HEADER_COLUMNS`)."""

    id: Id
    type: Blank = ""
    tranid: Blank = ""
    status: Blank = ""
    entity: Text = None
    location: Text = None
    transferlocation: Text = None
    trandate: Text = None
    duedate: Text = None
    custbody_sent_to_3pl: Flag = False
    custbody_dcl_po_number: Text = None
    lastmodifieddate: Text = None


class InboundOrderLine(SuiteQLModel):
    """Flow D: an item line of a PO / TO (`sync.inbound.LINES_QUERY`: the signed quantity)."""

    transaction: Text = None
    line: LineId
    sku: Blank = ""
    itemtype: Text = None
    qty: RequiredQuantity
    qty_received: Quantity = 0
    isclosed: Flag = False


RowT = TypeVar("RowT", bound=SuiteQLModel)


class UnreadableRow(BaseModel):
    """A SuiteQL row that does not fit its model: why, and the row as NetSuite sent it."""

    model_config = ConfigDict(frozen=True)

    reason: str  # invalid_quantity | unreadable_row
    problem: str  # e.g. "line 3 quantity '2.5' is not a whole number"
    raw: dict[str, Any]


def parse_row(model: type[RowT], raw: Mapping[str, Any] | RowT | UnreadableRow) -> RowT | UnreadableRow:
    """One row as ``model``, or why it cannot be (a row parsed before is returned as it is)."""
    if isinstance(raw, model | UnreadableRow):
        return raw
    row = dict(raw)
    try:
        return model.model_validate(row)
    except ValidationError as error:
        return _unreadable(row, error)


class ParsedRows(BaseModel, Generic[RowT]):
    rows: list[RowT] = []
    unreadable: list[UnreadableRow] = []


def parse_rows(
    model: type[RowT], rows: Iterable[Mapping[str, Any] | RowT | UnreadableRow]
) -> ParsedRows[RowT]:
    parsed: ParsedRows[RowT] = ParsedRows()
    for raw in rows:
        row = parse_row(model, raw)
        if isinstance(row, UnreadableRow):
            parsed.unreadable.append(row)
        else:
            parsed.rows.append(row)
    return parsed


def _unreadable(row: dict[str, Any], error: ValidationError) -> UnreadableRow:
    first = error.errors(include_url=False)[0]
    column = str(first["loc"][0]) if first["loc"] else ""
    where = f"line {row.get('line')} " if row.get("line") not in (None, "") and column != "line" else ""
    if first["type"] == "missing":
        why = "is missing"
    elif first["type"] == "value_error":  # our validators' words: "'2.5' is not a whole number"
        why = str(first.get("ctx", {}).get("error") or first["msg"])
    else:
        why = f"{row.get(column)!r}: {first['msg']}"
    if column in QUANTITY_LABELS:
        return UnreadableRow(
            reason=INVALID_QUANTITY, problem=f"{where}{QUANTITY_LABELS[column]} {why}", raw=row
        )
    return UnreadableRow(reason=UNREADABLE_ROW, problem=f"{where}column {column} {why}", raw=row)
