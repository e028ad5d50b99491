"""Every metric mienne-ops exports, named once: the collectors, the README and the dashboard test read
this list, so a metric cannot be renamed in one place and forgotten in another."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricDoc:
    name: str  # as exposed (counters include the ``_total`` suffix)
    kind: str  # counter | gauge | histogram
    labels: tuple[str, ...]
    help: str


METRICS: tuple[MetricDoc, ...] = (
    # -- from the ledger, at scrape time ---------------------------------------------------------
    MetricDoc("mienne_ops_orders", "gauge", ("stage",), "Order journeys in the ledger per stage."),
    MetricDoc(
        "mienne_ops_exceptions_open",
        "gauge",
        ("flow", "reason", "status"),
        "Unresolved exceptions (status open or retrying) per flow and reason.",
    ),
    MetricDoc(
        "mienne_ops_order_oldest_waiting_age_seconds",
        "gauge",
        ("stage",),
        "Age of the oldest order waiting at each non-final stage, since it entered the stage.",
    ),
    MetricDoc("mienne_ops_returns_pending", "gauge", ("status",), "Returns not yet completed, per status."),
    MetricDoc(
        "mienne_ops_refunds_pending",
        "gauge",
        ("source",),
        "Refunds owed and not yet made: refund requests not done (source=request) and returns "
        "received but not yet refunded (source=return).",
    ),
    MetricDoc(
        "mienne_ops_support_requests",
        "gauge",
        ("source", "kind", "status"),
        "Requests read from helpdesk tickets and other sources, per status (the agent's tickets "
        "handled until flow G exists: every status but received).",
    ),
    MetricDoc(
        "mienne_ops_inbox_events",
        "gauge",
        ("source",),
        "Webhook events stored in the ledger inbox per source (each distinct delivery once).",
    ),
    MetricDoc(
        "mienne_ops_sensor_tick_age_seconds",
        "gauge",
        ("sensor",),
        "Seconds since each running sensor's last tick (only when DAGSTER_HOME names the instance).",
    ),
    # -- from every process, through the multiprocess directory ----------------------------------
    MetricDoc("mienne_ops_api_calls_total", "counter", ("system",), "HTTP requests sent to each system."),
    MetricDoc(
        "mienne_ops_api_errors_total",
        "counter",
        ("system", "kind"),
        "Failed HTTP requests per system and kind: throttled (429), server (5xx, 408), auth (401, "
        "403), client (other 4xx), network (no answer).",
    ),
    MetricDoc("mienne_ops_api_retries_total", "counter", ("system",), "Requests resent after a failure."),
    MetricDoc(
        "mienne_ops_api_request_duration_seconds",
        "histogram",
        ("system",),
        "Time from sending a request to its answer (or to the network error).",
    ),
    MetricDoc(
        "mienne_ops_api_cost_points_total",
        "counter",
        ("system",),
        "Rate-limit cost points spent (Shopify GraphQL actualQueryCost).",
    ),
    MetricDoc(
        "mienne_ops_webhook_deliveries_total",
        "counter",
        ("source", "topic"),
        "Verified webhook deliveries the receiver accepted, duplicates included.",
    ),
    MetricDoc(
        "mienne_ops_webhook_duplicates_total",
        "counter",
        ("source", "topic"),
        "Verified deliveries of an event already in the inbox (not stored again).",
    ),
)

#: Names as they appear in the exposition, including a histogram's series.
EXPOSED_SERIES: frozenset[str] = frozenset(
    [m.name for m in METRICS]
    + [f"{m.name}_{s}" for m in METRICS if m.kind == "histogram" for s in ("bucket", "sum", "count")]
)


def doc(name: str) -> MetricDoc:
    """The catalog entry of ``name`` (a KeyError is a typo in a collector)."""
    return {m.name: m for m in METRICS}[name]
