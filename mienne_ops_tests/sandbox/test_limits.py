"""The fakes' sliding one-second window, on a clock the test moves (never the wall clock)."""

from __future__ import annotations

import pytest

from mienne_ops.sandbox.limits import SlidingWindowLimiter, apply_clock_knobs


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_window_counts_per_key_and_slides_with_the_clock():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(2, clock)
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    assert limiter.allow("b")  # another key has its own window
    clock.now += 0.999
    assert not limiter.allow("a")
    clock.now += 0.001  # a full second after the first two: both have left the window
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]


def test_a_frozen_window_moves_only_when_advanced_and_a_new_limit_restarts_the_clock():
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, clock)
    apply_clock_knobs(limiter, {"frozen_clock": True})
    assert limiter.allow("a") and not limiter.allow("a")
    clock.now += 60  # the real clock runs on; the frozen window does not
    assert not limiter.allow("a")
    apply_clock_knobs(limiter, {"advance_seconds": 1})
    assert limiter.allow("a")
    limiter.configure(1)
    assert not limiter.frozen
    with pytest.raises(ValueError, match="freeze"):
        apply_clock_knobs(limiter, {"advance_seconds": 1})
    for bad in ({"frozen_clock": "yes"}, {"advance_seconds": True}, {"advance_seconds": "1"}):
        with pytest.raises(ValueError):
            apply_clock_knobs(limiter, bad)
    assert not limiter.frozen  # bad input changes nothing
