"""Scrape-time collectors: the ledger's gauges and the sensors' tick ages.

Nothing here is kept between scrapes: each scrape asks the ledger (a few grouped queries,
`ledger.gauges`) and, when ``DAGSTER_HOME`` names the instance, Dagster's schedule storage, so the
numbers are as fresh as the data and every receiver replica reports the same.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from mienne_ops.ledger import Ledger
from mienne_ops.ledger.gauges import LedgerGauges, read_gauges
from mienne_ops.observability.catalog import doc

log = logging.getLogger("mienne_ops.observability")


def gauge(name: str) -> GaugeMetricFamily:
    entry = doc(name)
    return GaugeMetricFamily(entry.name, entry.help, labels=entry.labels)


class LedgerCollector(Collector):
    """Orders per stage, open exceptions, oldest waiting orders, pending returns and refunds."""

    def __init__(self, ledger: Ledger, clock=lambda: datetime.now(UTC)) -> None:
        self.ledger = ledger
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from ledger_families(read_gauges(self.ledger.engine), self.clock())


def ledger_families(gauges: LedgerGauges, now: datetime) -> Iterator[GaugeMetricFamily]:
    """The gauges as metric families (pure: tested without a database)."""
    yield _family("mienne_ops_orders", gauges.orders)
    yield _family("mienne_ops_exceptions_open", gauges.exceptions)
    ages = {stage: max(0.0, (now - since).total_seconds()) for stage, since in gauges.waiting_since.items()}
    yield _family("mienne_ops_order_oldest_waiting_age_seconds", ages)
    yield _family("mienne_ops_returns_pending", gauges.returns_pending)
    yield _family("mienne_ops_refunds_pending", gauges.refunds_pending)
    yield _family("mienne_ops_support_requests", gauges.requests)
    yield _family("mienne_ops_inbox_events", gauges.inbox)


def _family(name: str, samples: Mapping[Any, float]) -> GaugeMetricFamily:
    family = gauge(name)
    for key, value in sorted(samples.items()):
        labels = list(key) if isinstance(key, tuple) else [key]
        family.add_metric([str(label) for label in labels], float(value))
    return family


class SensorLagCollector(Collector):
    """Seconds since each running sensor last ticked, read from the Dagster instance.

    A stalled daemon or a sensor stuck in a slow tick shows here before any order is late. Without
    ``DAGSTER_HOME`` the receiver cannot know which instance the daemon uses, so the metric is left
    out rather than guessed.
    """

    def __init__(self) -> None:
        self._instance: Any = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if not os.environ.get("DAGSTER_HOME"):
            return
        try:
            states = self._states()
        except Exception as error:  # an unreachable instance must not fail the ledger's metrics
            log.warning("sensor tick ages unavailable: %s", error)
            return
        yield _family("mienne_ops_sensor_tick_age_seconds", sensor_ages(states, time.time()))

    def _states(self) -> list[Any]:
        import dagster as dg
        from dagster._core.scheduler.instigation import InstigatorStatus, InstigatorType

        if self._instance is None:
            self._instance = dg.DagsterInstance.get()
        return list(
            self._instance.all_instigator_state(
                instigator_type=InstigatorType.SENSOR,
                instigator_statuses=set(InstigatorStatus) - {InstigatorStatus.STOPPED},
            )
        )


def sensor_ages(states: Iterable[Any], now: float) -> dict[str, float]:
    """``{sensor name: seconds since its last tick}`` for the sensors that have ticked."""
    ages: dict[str, float] = {}
    for state in states:
        last = getattr(state.instigator_data, "last_tick_timestamp", None)
        if last is not None:
            ages[state.instigator_name] = max(0.0, now - last)
    return ages
