"""Flow E's daily report: NetSuite vs DCL vs Shopify per SKU, as a frame, a summary and a verdict.

`domain.inventory.reconcile` finds the discrepancies per SKU; this module turns them into what the
operator reads (the worst rows, counts of oversell risk and NetSuite ≠ DCL, low stock) with pandas,
and into a typed verdict the asset's check reports. Pure: the asset reads the ledger's levels.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

import pandas as pd

from mienne_ops.domain.inventory import Discrepancy, reconcile
from mienne_ops.domain.reports import markdown_table, table_records

#: The columns of the worst-discrepancies table, in order.
TABLE_COLUMNS = [
    "sku",
    "netsuite",
    "dcl",
    "shopify",
    "expected_shopify",
    "netsuite_minus_dcl",
    "shopify_minus_expected",
]
_LEVELS = ["netsuite", "dcl", "shopify", "expected_shopify"]


class Verdict(StrEnum):
    """How many discrepancies there are, against the rules' warn and fail counts."""

    WITHIN = "within"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class InventoryReport:
    location: str
    checked: int  # sellable SKUs (bundle parents are never written to Shopify)
    discrepancies: pd.DataFrame  # above the tolerance, worst first: TABLE_COLUMNS
    low_stock: list[str]  # sellable, unflagged, at or below the threshold; lowest first
    tolerance: int
    low_stock_threshold: int

    @property
    def oversell_risk(self) -> int:
        """SKUs where Shopify shows more than NetSuite can fulfil."""
        return int((self.discrepancies["shopify_minus_expected"] > 0).sum())

    @property
    def netsuite_not_dcl(self) -> int:
        return int((self.discrepancies["netsuite_minus_dcl"] != 0).sum())

    def verdict(self, warn_above: int, fail_above: int) -> Verdict:
        if len(self.discrepancies) > fail_above:
            return Verdict.FAIL
        if len(self.discrepancies) > warn_above:
            return Verdict.WARN
        return Verdict.WITHIN

    def worst(self, top: int) -> list[dict[str, Any]]:
        """The ``top`` worst rows as plain values (an unknown level is None)."""
        return table_records(self.discrepancies.head(top), missing=None)

    def summary(self, top: int = 10) -> str:
        """Markdown: the counts, then the ``top`` worst rows."""
        return (
            f"### Inventory reconciliation — {self.location}\n\n"
            f"- SKUs checked: **{self.checked}**\n"
            f"- discrepancies above {self.tolerance} unit(s): **{len(self.discrepancies)}**\n"
            f"- Shopify above what NetSuite can fulfil (oversell risk): **{self.oversell_risk}**\n"
            f"- NetSuite ≠ DCL: **{self.netsuite_not_dcl}**\n"
            f"- low stock (≤ {self.low_stock_threshold}): **{len(self.low_stock)}**\n\n"
            + markdown_table(self.worst(top), ["sku", "netsuite", "dcl", "shopify", "expected_shopify"])
        )


def inventory_report(
    location: str,
    *,
    netsuite: Mapping[str, int],
    dcl: Mapping[str, int],
    shopify: Mapping[str, int],
    available_to_sell: Mapping[str, int],
    sellable: Collection[str],
    flagged: Collection[str],
    tolerance: int,
    low_stock_threshold: int,
) -> InventoryReport:
    """Compare one warehouse's levels. Shopify is expected to show ``available_to_sell`` for the
    ``sellable`` SKUs (known items that are not bundle parents); ``flagged`` kits (at 0 for a
    missing or inactive component) are reported elsewhere, not as low stock."""
    expected = pd.Series({sku: q for sku, q in available_to_sell.items() if sku in sellable}, dtype="int64")
    rows = reconcile(
        location,
        netsuite=netsuite,
        dcl=dcl,
        shopify={sku: q for sku, q in shopify.items() if sku in expected.index},
        expected_shopify=expected.to_dict(),
    )
    frame = pd.DataFrame(
        [asdict(row) for row in rows], columns=[field.name for field in fields(Discrepancy)]
    ).rename(
        columns={"netsuite_vs_dcl": "netsuite_minus_dcl", "shopify_vs_expected": "shopify_minus_expected"}
    )
    frame = frame.astype({column: "Int64" for column in _LEVELS})
    worst = frame[["netsuite_minus_dcl", "shopify_minus_expected"]].abs().max(axis=1)
    low = expected[(expected <= low_stock_threshold) & ~expected.index.isin(list(flagged))]
    return InventoryReport(
        location=location,
        checked=len(expected),
        discrepancies=frame.loc[worst > tolerance, TABLE_COLUMNS].reset_index(drop=True),
        low_stock=list(low.sort_index().sort_values(kind="stable").index),
        tolerance=tolerance,
        low_stock_threshold=low_stock_threshold,
    )
