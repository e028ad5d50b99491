"""The operator's tables: markdown for run reports, plain records for Dagster tables."""

import pandas as pd

from mienne_ops.domain.reports import markdown_table, table_records


def test_markdown_table_lists_the_columns_asked_for():
    rows = [{"sku": "A", "code": "X", "message": "m"}, {"sku": "B"}]
    assert markdown_table(rows, ["sku", "code"]) == "| sku | code |\n|---|---|\n| A | X |\n| B |  |"
    assert markdown_table([], ["sku"]) == "_none_"


def test_table_records_are_plain_python_values():
    frame = pd.DataFrame({"n": pd.Series([1, None], dtype="Int64"), "s": ["a", "b"], "f": [True, False]})
    assert table_records(frame) == [{"n": 1, "s": "a", "f": True}, {"n": "", "s": "b", "f": False}]
    assert table_records(frame, missing=None)[1]["n"] is None
    assert type(table_records(frame)[0]["n"]) is int and type(table_records(frame)[0]["f"]) is bool
