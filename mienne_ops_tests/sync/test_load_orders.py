"""Flow D loads POs / TOs from SuiteQL rows parsed once; an unreadable order fails alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mienne_ops.domain.suiteql_rows import parse_row
from mienne_ops.errors import InvalidRecordError
from mienne_ops.sync.inbound import load_orders


def header(order_id: str) -> dict[str, Any]:
    return {
        "links": [], "id": order_id, "type": "PurchOrd", "tranid": f"PO{order_id}", "status": "B",
        "entity": "77", "location": "1", "trandate": "2026-05-01", "custbody_sent_to_3pl": "F",
    }  # fmt: skip


class SuiteQL:
    """Answers the two queries of `load_orders` with fixed rows (SuiteQL's shapes: strings, no NULLs)."""

    def __init__(self, headers: list[dict[str, Any]], lines: list[dict[str, Any]]) -> None:
        self.headers, self.lines = headers, lines

    def suiteql_rows(self, model: Any, query: str, *, page_size: int = 1000) -> Iterator[Any]:
        rows = self.lines if "transactionline" in query else self.headers
        return (parse_row(model, row) for row in rows)


NETSUITE = SuiteQL(
    [header("5001"), header("5002")],
    [
        {"transaction": "5001", "line": "1", "sku": "SERUM-001", "itemtype": "InvtPart", "qty": "10.0"},
        {"transaction": "5002", "line": "1", "sku": "SERUM-001", "itemtype": "InvtPart", "qty": "2.5"},
    ],
)


def test_an_order_with_a_fractional_quantity_is_refused_with_its_reason():
    with pytest.raises(InvalidRecordError) as raised:
        load_orders(NETSUITE, ["5001", "5002"])  # type: ignore[arg-type]
    assert raised.value.reason == "invalid_quantity"
    assert raised.value.detail == "PurchOrd 5002: line 1 quantity '2.5' is not a whole number"


def test_a_batch_look_ahead_leaves_the_unreadable_order_to_fail_alone():
    orders = load_orders(NETSUITE, ["5001", "5002"], skip_unreadable=True)  # type: ignore[arg-type]
    assert list(orders) == ["5001"] and orders["5001"].lines[0].quantity == 10
