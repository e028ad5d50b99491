"""``GET /metrics``: one scrape joins the ledger's gauges, the sensors' ages and the counters every
process wrote to the multiprocess directory."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mienne_ops.ledger import Ledger
from mienne_ops.observability.collectors import LedgerCollector, SensorLagCollector
from mienne_ops.observability.process_metrics import multiproc_dir


def metrics_registry(ledger: Ledger) -> CollectorRegistry:
    """A registry of exactly mienne-ops's metrics (no default process/GC series of the receiver)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(multiproc_dir()))
    registry.register(LedgerCollector(ledger))
    registry.register(SensorLagCollector())
    return registry


def metrics_endpoint(ledger: Ledger):
    """The Starlette endpoint; the scrape's SQL and file reads run off the event loop."""
    registry = metrics_registry(ledger)

    async def metrics(request: Request) -> Response:
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return metrics
