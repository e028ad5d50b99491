"""How a run names its orders: tag keys Dagster accepts, the worst outcome first, one line per record."""

import pytest
from dagster._utils.tags import is_valid_tag_key

from mienne_ops.flows.common import (
    TAG_ATTENTION,
    TAG_QUARANTINED,
    order_tag_key,
    orders_text,
    record_lines,
    run_labels,
)
from mienne_ops.sync.batch import BatchReport, Outcome, Problem


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("#1014", "mienne-ops/order-1014"),
        ("MI-1014/B", "mienne-ops/order-MI-1014-B"),
        ("#Été 7", "mienne-ops/order-t--7"),
        ("#" + "9" * 80, "mienne-ops/order-" + "9" * 57),
    ],
)
def test_an_order_name_becomes_a_tag_key_dagster_accepts(name, key):
    assert order_tag_key(name) == key
    assert is_valid_tag_key(key)


def test_a_name_with_nothing_usable_has_no_tag():
    assert order_tag_key("#") is None


def _report() -> BatchReport:
    report = BatchReport("B")
    report.add(Outcome.DONE, entity="sales_order", key="701")  # planned ...
    report.add(
        Outcome.QUARANTINED,
        Problem("701", Outcome.QUARANTINED, "dcl_rejected", "bad | address", "sales_order"),
        entity="sales_order",
        key="701",
    )  # ... then refused by DCL: the last word
    report.add(Outcome.DONE, entity="sales_order", key="702")
    report.add(Outcome.SKIPPED, entity="sales_order", key="999")  # no Shopify order behind it
    return report


def test_each_record_once_by_its_order_name_worst_first():
    names = {("sales_order", "701"): "#1014", ("sales_order", "702"): "#1015"}
    lines = record_lines(_report(), names)
    assert [(line.order, line.record, line.outcome, line.reason) for line in lines] == [
        ("#1014", "sales_order 701", "quarantined", "dcl_rejected"),
        ("#1015", "sales_order 702", "done", ""),
        ("", "sales_order 999", "skipped", ""),
    ]
    assert orders_text(lines) == "#1014 quarantined (dcl_rejected), #1015 done, sales_order 999 skipped"


def test_a_run_that_quarantined_is_tagged_with_the_count_and_a_fixed_marker():
    report = _report()
    tags = run_labels(report, record_lines(report, {("sales_order", "701"): "#1014"}))
    assert tags == {
        "mienne-ops/order-1014": "quarantined",
        TAG_QUARANTINED: "1",
        TAG_ATTENTION: "quarantined",
    }


def test_a_clean_run_has_only_its_order_tags():
    report = BatchReport("A")
    report.add(Outcome.DONE, entity="order", key="5001")
    assert run_labels(report, record_lines(report, {("order", "5001"): "#1001"})) == {
        "mienne-ops/order-1001": "done"
    }


def test_a_long_text_says_how_many_more_are_in_the_table():
    report = BatchReport("A")
    for number in range(5):
        report.add(Outcome.DONE, entity="order", key=str(number))
    text = orders_text(record_lines(report, {}), limit=2)
    assert text.endswith(", and 3 more in the records table")
