"""One quantity parser for every vendor row: whole units exactly, anything else refused with a reason."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mienne_ops.domain.quantities import INVALID_QUANTITY, UnreadableQuantity, parse_quantity, whole_number
from mienne_ops.errors import InvalidRecordError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2),  # SuiteQL: every number is a string
        ("2.0", 2),  # SuiteQL's decimal columns
        (" 3 ", 3),
        ("-1", -1),  # a sales line's raw quantity (netsuite.md §10.3): the caller decides on the sign
        (4, 4),  # DCL: JSON numbers
        (4.0, 4),
        (Decimal("5.00"), 5),
        ("0", 0),
    ],
)
def test_a_whole_number_reads_exactly(value, expected):
    assert whole_number(value) == expected


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("2.5", "'2.5' is not a whole number"),
        (2.5, "2.5 is not a whole number"),
        ("0.999999", "'0.999999' is not a whole number"),
        ("abc", "'abc' is not a number"),
        ("NaN", "'NaN' is not a number"),
        ("Infinity", "'Infinity' is not a number"),
        (True, "True is not a number"),
        ([], "[] is not a number"),
        (None, "is missing"),
        ("", "is missing"),
    ],
)
def test_anything_else_is_unreadable_with_the_reason(value, why):
    with pytest.raises(UnreadableQuantity) as raised:
        whole_number(value)
    assert str(raised.value) == why


def test_a_fractional_quantity_is_an_invalid_record_naming_record_and_field():
    with pytest.raises(InvalidRecordError) as raised:
        parse_quantity("2.5", record="SO SO1001", field="line 3 quantity")
    error = raised.value
    assert error.reason == INVALID_QUANTITY
    assert error.record == "SO SO1001"
    assert error.system == "netsuite"
    assert error.detail == "SO SO1001: line 3 quantity '2.5' is not a whole number"


def test_a_missing_column_is_the_given_default_or_else_unreadable():
    assert parse_quantity(None, record="PO 7", missing=0) == 0
    assert parse_quantity("", record="PO 7", missing=0) == 0
    with pytest.raises(InvalidRecordError, match="PO 7: quantity is missing"):
        parse_quantity(None, record="PO 7")


def test_the_system_is_named_for_the_quarantine():
    with pytest.raises(InvalidRecordError) as raised:
        parse_quantity("x", record="receipt R1", system="dcl")
    assert raised.value.system == "dcl"
