"""Flow E's reconciliation report: which discrepancies count, oversell risk, low stock, the verdict."""

from mienne_ops.domain.inventory_report import TABLE_COLUMNS, Verdict, inventory_report


def _report(**overrides):
    levels = dict(
        netsuite={"A": 10, "B": 5, "C": 2, "KIT": 1, "D": 7},
        dcl={"A": 10, "B": 3, "C": 2},
        shopify={"A": 9, "B": 9, "C": 1, "KIT": 50, "D": 8},
        available_to_sell={"A": 9, "B": 4, "C": 1, "KIT": 0, "D": 6},
        sellable={"A", "B", "C", "D"},  # KIT is a bundle parent: never compared, never low stock
        flagged=set(),
        tolerance=0,
        low_stock_threshold=3,
    )
    return inventory_report("FR", **{**levels, **overrides})


def test_discrepancies_worst_first_with_oversell_and_netsuite_vs_dcl_counted():
    report = _report()
    assert report.checked == 4
    assert list(report.discrepancies.columns) == TABLE_COLUMNS
    assert report.worst(10) == [
        {
            "sku": "B",
            "netsuite": 5,
            "dcl": 3,
            "shopify": 9,
            "expected_shopify": 4,
            "netsuite_minus_dcl": 2,
            "shopify_minus_expected": 5,
        },
        {
            "sku": "D",  # DCL does not stock D: only Shopify is compared
            "netsuite": 7,
            "dcl": None,
            "shopify": 8,
            "expected_shopify": 6,
            "netsuite_minus_dcl": 0,
            "shopify_minus_expected": 2,
        },
    ]
    assert report.worst(1) == report.worst(10)[:1]
    assert report.oversell_risk == 2 and report.netsuite_not_dcl == 1
    assert report.low_stock == ["C"]
    assert all(type(v) in (str, int, type(None)) for row in report.worst(10) for v in row.values())


def test_the_tolerance_and_flags_narrow_what_is_reported():
    assert _report(tolerance=5).discrepancies.empty
    assert list(_report(tolerance=2).discrepancies["sku"]) == ["B"]
    assert _report(flagged={"C"}).low_stock == []
    lows = _report(low_stock_threshold=6).low_stock
    assert lows == ["C", "B", "D"]  # lowest first, then by SKU


def test_the_verdict_follows_the_warn_and_fail_counts():
    report = _report()
    assert report.verdict(warn_above=0, fail_above=25) == Verdict.WARN
    assert report.verdict(warn_above=0, fail_above=0) == Verdict.FAIL
    assert report.verdict(warn_above=2, fail_above=25) == Verdict.WITHIN


def test_the_summary_names_the_counts_and_the_worst_rows():
    summary = _report().summary()
    assert summary.startswith("### Inventory reconciliation — FR")
    assert "discrepancies above 0 unit(s): **2**" in summary and "oversell risk): **2**" in summary
    assert "| D | 7 | None | 8 | 6 |" in summary  # an unknown level reads as before
    assert (
        "| sku | netsuite | dcl | shopify | expected_shopify |" in summary
        and "| B | 5 | 3 | 9 | 4 |" in summary
    )
    empty = _report(tolerance=5).summary()
    assert "_none_" in empty and "SKUs checked: **4**" in empty
