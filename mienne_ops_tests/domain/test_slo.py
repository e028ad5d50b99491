"""Percentile math of the SLOs (nearest rank: every percentile is a duration an order really took)."""

import pytest

from mienne_ops.domain.slo import Leg, evaluate, percentile, summarise


def test_nearest_rank_percentiles_of_one_to_a_hundred_are_the_ranks():
    samples = [float(n) for n in range(100, 0, -1)]  # unsorted on purpose
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 95) == 95.0
    assert percentile(samples, 99) == 99.0
    assert percentile(samples, 100) == 100.0
    assert percentile(samples, 0.5) == 1.0


def test_a_small_sample_rounds_up_to_an_observed_value():
    samples = [3.0, 1.0, 2.0, 10.0]
    assert percentile(samples, 50) == 2.0  # rank ceil(0.5 * 4) = 2
    assert percentile(samples, 95) == 10.0  # rank ceil(3.8) = 4: the slow order is not averaged away
    assert percentile([7.5], 99) == 7.5


def test_no_samples_have_no_percentile_and_pass():
    assert percentile([], 95) is None
    result = evaluate(Leg.SALES_ORDER_TO_DCL, [], 60)
    assert result.summary.count == 0 and result.passed
    assert "no samples" in result.describe()


@pytest.mark.parametrize("p", [0, -1, 100.5])
def test_a_percentile_outside_zero_to_a_hundred_is_refused(p):
    with pytest.raises(ValueError):
        percentile([1.0], p)


def test_the_target_is_checked_on_p95_inclusive():
    fast = [1.0] * 95 + [500.0] * 5  # the 5 % slowest do not move p95
    assert summarise(fast).p95 == 1.0 and summarise(fast).p99 == 500.0
    assert evaluate(Leg.WEBHOOK_TO_SALES_ORDER, fast, 1.0).passed
    slow = [1.0] * 94 + [500.0] * 6
    missed = evaluate(Leg.WEBHOOK_TO_SALES_ORDER, slow, 60)
    assert not missed.passed and missed.summary.p95 == 500.0
    assert "MISSED" in missed.describe() and "over 100 orders" in missed.describe()
