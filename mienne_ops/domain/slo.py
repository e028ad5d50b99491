"""Service-level objectives of the order-to-cash spine: pure math over measured durations.

Three legs, each measured from ledger timestamps (`ledger.timings`): a Shopify webhook received →
its NetSuite sales order, the sales order → DCL accepting it, DCL's shipment recorded by flow C →
its tracking on Shopify. Each leg is summarised as p50 / p95 / p99 and checked against a p95
target from the business rules.

Percentiles use the nearest-rank method: the p-th percentile is an observed duration (the smallest
one with at least p % of the samples at or below it), never an interpolation between two orders, so
"p95 = 48 s" means a real order took 48 s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Leg(StrEnum):
    WEBHOOK_TO_SALES_ORDER = "webhook_to_sales_order"
    SALES_ORDER_TO_DCL = "sales_order_to_dcl"
    SHIPMENT_TO_TRACKING = "shipment_to_tracking"


def percentile(samples: Sequence[float], p: float) -> float | None:
    """Nearest-rank ``p``-th percentile (0 < p <= 100) of ``samples``; None when there are none."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {p}")
    if not samples:
        return None
    ordered = sorted(samples)
    rank = math.ceil(p / 100 * len(ordered))  # 1-based; ceil keeps at least p % at or below it
    return ordered[rank - 1]


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None


def summarise(samples: Sequence[float]) -> LatencySummary:
    return LatencySummary(
        count=len(samples),
        p50=percentile(samples, 50),
        p95=percentile(samples, 95),
        p99=percentile(samples, 99),
        max=max(samples) if samples else None,
    )


@dataclass(frozen=True)
class SloResult:
    leg: Leg
    summary: LatencySummary
    target_p95_seconds: float

    @property
    def passed(self) -> bool:
        """Met, or nothing measured in the window (no orders is not a breach; the count says so)."""
        return self.summary.p95 is None or self.summary.p95 <= self.target_p95_seconds

    def describe(self) -> str:
        """One line an operator reads in the check's result."""
        s = self.summary
        if s.p95 is None:
            return f"{self.leg}: no samples in the window"
        verdict = "met" if self.passed else "MISSED"
        return (
            f"{self.leg}: p95 {s.p95:.1f}s {verdict} (target {self.target_p95_seconds:.0f}s) "
            f"over {s.count} orders; p50 {s.p50:.1f}s, p99 {s.p99:.1f}s"
        )


def evaluate(leg: Leg, samples: Sequence[float], target_p95_seconds: float) -> SloResult:
    return SloResult(leg=leg, summary=summarise(samples), target_p95_seconds=target_p95_seconds)
