"""Tables an operator reads in the Dagster UI, assembled without Dagster: markdown and table records.

Run and asset metadata show problems as small tables; building them is plain string and frame work,
kept here so that `flows/` only wraps the result in `dg.MetadataValue`s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], empty: str = "_none_") -> str:
    """A markdown table of ``rows`` (cells as given; a missing cell is blank), or ``empty``."""
    if not rows:
        return empty
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "\n".join("| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows)


def table_records(frame: pd.DataFrame, missing: Any = "") -> list[dict[str, Any]]:
    """A frame's rows as plain Python values (a missing value is ``missing``), as Dagster's table
    wants them: numpy scalars and ``pd.NA`` are not accepted in a `dg.TableRecord`."""
    plain = frame.astype(object).where(frame.notna(), missing)
    return [{str(k): _plain(v) for k, v in row.items()} for row in plain.to_dict("records")]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
