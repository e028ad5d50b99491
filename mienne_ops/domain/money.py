"""Money helpers shared by every domain transform.

Money is `Decimal` end to end and is rounded to cents with ROUND_HALF_UP, the rule both Shopify and
NetSuite use for currency amounts. Floats only appear at the very edge, when a body is rendered as
JSON for a vendor API (`wire`), because the standard JSON encoder cannot write a Decimal.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


def to_decimal(value: object) -> Decimal:
    """Parse a vendor money value (string, int, float or None) into an exact Decimal.

    Floats go through `str` so that 0.06 becomes Decimal("0.06"), not its binary approximation.
    """
    if value is None or value == "":
        return ZERO
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        value = repr(value)
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a money amount: {value!r}") from exc


def cents(value: Decimal | int | str) -> Decimal:
    """Round to cents, half up."""
    return to_decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def total(amounts: Iterable[Decimal]) -> Decimal:
    """Sum of amounts, rounded to cents (an empty sum is 0.00)."""
    return cents(sum(amounts, ZERO))


def wire(value: Decimal) -> float:
    """A cent amount as a JSON number; `repr` of the float round-trips to the same two decimals."""
    return float(cents(value))
