"""Prometheus metrics for operating mienne-ops, served at ``GET /metrics`` on the webhook receiver.

Two kinds of numbers, two mechanisms (README "Metrics and SLOs"):

- Ledger-derived gauges (orders per stage, open exceptions, ages, pending returns and refunds,
  support requests) are computed at scrape time by `collectors.LedgerCollector` with a few
  cheap grouped SQL queries: the ledger is already the shared truth of every process, so nothing has
  to be counted twice and a restart loses nothing.
- Process counters (API calls, errors, latency, retries, cost points, webhook deliveries) happen in
  Dagster run workers and in the receiver, i.e. in many short-lived processes. They use
  prometheus_client's multiprocess mode (`process_metrics`): every process writes its own mmap file
  under one directory and the scrape sums them.

`catalog.METRICS` names every metric once; the README, the Grafana dashboard and the tests check
against it.
"""
