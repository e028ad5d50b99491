"""Whole-unit quantities read from vendor rows: one parser for SuiteQL and DCL alike.

SuiteQL answers every number as a string ("2", "2.0") and leaves NULL columns out (netsuite.md
§10.1); DCL answers JSON numbers, and some accounts strings. A unit of stock is whole, so a
quantity is read exactly (``Decimal``, never ``float``) and refused when it is not a whole number:
"2.5", "abc", "NaN" or "Infinity" are never truncated, rounded or guessed at. `whole_number` says why
(`UnreadableQuantity`); `parse_quantity` turns that into an `InvalidRecordError` (reason
``invalid_quantity``) naming the record and the field, which the flows quarantine.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from mienne_ops.errors import InvalidRecordError

INVALID_QUANTITY = "invalid_quantity"


class UnreadableQuantity(ValueError):
    """A value that is not a whole number of units; the message says why."""


def whole_number(value: object) -> int:
    """``value`` as an int when it is exactly a whole number ("2", "2.0", 2, 2.0, "-1")."""
    if value is None or value == "":
        raise UnreadableQuantity("is missing")
    if isinstance(value, bool):  # bool is an int to Python, never a quantity to a vendor
        raise UnreadableQuantity(f"{value!r} is not a number")
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise UnreadableQuantity(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise UnreadableQuantity(f"{value!r} is not a number")
    if number != number.to_integral_value():
        raise UnreadableQuantity(f"{value!r} is not a whole number")
    return int(number)


def parse_quantity(
    value: object,
    *,
    record: str,
    field: str = "quantity",
    missing: int | None = None,
    system: str = "netsuite",
) -> int:
    """A whole quantity, or `InvalidRecordError` naming ``record`` and ``field``.

    ``missing`` is the value of an absent or empty column (SuiteQL omits NULLs); without it, an
    absent quantity is as unreadable as a fractional one.
    """
    if missing is not None and (value is None or value == ""):
        return missing
    try:
        return whole_number(value)
    except UnreadableQuantity as problem:
        raise InvalidRecordError(
            INVALID_QUANTITY, f"{record}: {field} {problem}", system=system, record=record
        ) from None
