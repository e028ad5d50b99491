"""Counters that many processes add to: API calls (Dagster run workers) and webhook deliveries (the
receiver), in prometheus_client's multiprocess mode.

Why multiprocess mode and not the ledger: an API call is too frequent and too cheap to be worth a
database write, and the processes that make them are short-lived run workers that no scraper could
reach. Each process appends to its own mmap files (``<kind>_<pid>.db``) in one directory; the
receiver's ``/metrics`` sums the files of every process, dead ones included, so a finished run's
calls still count. The directory is ``PROMETHEUS_MULTIPROC_DIR`` when set (production: a volume the
receiver and the workers share), else ``<state dir>/prometheus`` (``make dev``: one machine).

Recording never fails a call: if the directory cannot be made, metrics are off for the process
(logged once).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from prometheus_client import Counter, Histogram, values

from mienne_ops import settings
from mienne_ops.observability.catalog import doc

log = logging.getLogger("mienne_ops.observability")

ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def multiproc_dir() -> Path:
    """The shared directory, pinned into this process's environment on first use.

    Pinning keeps the writer and the scrape of one process on the same files even if
    ``MIENNE_STATE_DIR`` changes afterwards (tests do), and hands the directory to child processes.
    """
    path = os.environ.get(ENV) or str(settings.state_dir() / "prometheus")
    os.environ[ENV] = path
    Path(path).mkdir(parents=True, exist_ok=True)
    return Path(path)


class _Metrics:
    """The process's metric objects, made once, unregistered (the scrape reads the files)."""

    def __init__(self) -> None:
        multiproc_dir()
        # prometheus_client picks its value class when first imported; a process that imported it
        # before the directory was known would keep per-process values nobody can scrape.
        if values.ValueClass.__name__ != "MmapedValue":
            values.ValueClass = values.MultiProcessValue()
        self.calls = _counter("mienne_ops_api_calls_total")
        self.errors = _counter("mienne_ops_api_errors_total")
        self.retries = _counter("mienne_ops_api_retries_total")
        self.cost = _counter("mienne_ops_api_cost_points_total")
        self.deliveries = _counter("mienne_ops_webhook_deliveries_total")
        self.duplicates = _counter("mienne_ops_webhook_duplicates_total")
        latency = doc("mienne_ops_api_request_duration_seconds")
        self.latency = Histogram(
            latency.name, latency.help, latency.labels, registry=None, buckets=LATENCY_BUCKETS
        )


def _counter(name: str) -> Counter:
    entry = doc(name)
    return Counter(entry.name.removesuffix("_total"), entry.help, entry.labels, registry=None)


_lock = threading.Lock()
_metrics: _Metrics | None = None
_disabled = False


def _get() -> _Metrics | None:
    global _metrics, _disabled
    if _metrics is not None or _disabled:
        return _metrics
    with _lock:
        if _metrics is None and not _disabled:
            try:
                _metrics = _Metrics()
            except OSError as error:
                _disabled = True
                log.warning("metrics are off in this process: %s", error)
    return _metrics


def error_kind(status: int | None) -> str | None:
    """The error class of an HTTP answer (None: no answer at all is ``network``; 2xx/3xx: no error)."""
    if status is None:
        return "network"
    if status == 429:
        return "throttled"
    if status in (401, 403):
        return "auth"
    if status >= 500 or status == 408:
        return "server"
    if status >= 400:
        return "client"
    return None


def observe_call(system: str, status: int | None, seconds: float) -> None:
    """One HTTP request's outcome (``status`` None: it got no answer) and how long it took."""
    metrics = _get()
    if metrics is None:
        return
    metrics.calls.labels(system).inc()
    metrics.latency.labels(system).observe(seconds)
    if (kind := error_kind(status)) is not None:
        metrics.errors.labels(system, kind).inc()


def observe_retry(system: str) -> None:
    if (metrics := _get()) is not None:
        metrics.retries.labels(system).inc()


def observe_units(key: str, amount: float) -> None:
    """Extra units `CallStats` counts, keyed ``<system>:cost`` for rate-limit cost points."""
    system, _, unit = key.partition(":")
    if unit == "cost" and (metrics := _get()) is not None:
        metrics.cost.labels(system).inc(amount)


def observe_delivery(source: str, topic: str, stored: bool) -> None:
    """A verified webhook the receiver took; ``stored`` False: the inbox already had it."""
    if (metrics := _get()) is None:
        return
    metrics.deliveries.labels(source, topic).inc()
    if not stored:
        metrics.duplicates.labels(source, topic).inc()
