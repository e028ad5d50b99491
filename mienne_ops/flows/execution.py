"""Where the flows' ops run: in the run's own process (default), or on Celery workers.

``MIENNE_EXECUTOR=celery`` gives every flow job dagster-celery's executor, with RabbitMQ as the
broker (``MIENNE_CELERY_BROKER_URL``, read when the run starts, never at import, so a password stays
out of the UI) and ``MIENNE_CELERY_BACKEND_URL`` for results (default ``rpc://``). Unset, the jobs keep
the in-process executor that dev and the tests use.

Each op names its Celery queue by the system that bounds it (`on_queue`), so workers can be sized
per system and a slow NetSuite fills only the ``netsuite`` workers while Shopify work goes on. An op
that writes to several systems goes where it spends most of its time waiting:

- ``netsuite``: flow A (customer lookup and sales order create are several calls into NetSuite's
  5–15-slot account pool; StateSet and the Shopify tag are one quick call each), B (reads the
  sales orders and flags each one back; one DCL call per order), C (item fulfillment and cash sale
  transforms per shipment), inbound receipts (item receipt transforms), returns (RMA, receipts,
  credit memos and refunds in NetSuite);
- ``dcl``: inbound announcements (one ASN per purchase or transfer order; NetSuite is one read per
  batch);
- ``shopify``: holds (fulfillment-order holds and releases, cost-bucket bound);
- ``support``: service requests and the agent's cancel / refund jobs (Gorgias and Zendesk, and a
  person waiting on the ticket: never queued behind a NetSuite batch).

Assets without a queue tag (inventory, reports) go to dagster-celery's default ``dagster`` queue.
"""

import os

import dagster as dg
from dagster_celery import celery_executor

EXECUTOR_ENV = "MIENNE_EXECUTOR"
BROKER_ENV = "MIENNE_CELERY_BROKER_URL"
BACKEND_ENV = "MIENNE_CELERY_BACKEND_URL"
QUEUE_TAG = "dagster-celery/queue"
#: Every queue an op names, plus dagster-celery's default for untagged steps.
QUEUES = ("netsuite", "shopify", "dcl", "support")
DEFAULT_QUEUE = "dagster"


def on_queue(queue: str) -> dict[str, str]:
    """The op tag that sends the op to ``queue``'s Celery workers (ignored by other executors)."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; one of {', '.join(QUEUES)}")
    return {QUEUE_TAG: queue}


def celery_selected() -> bool:
    return os.environ.get(EXECUTOR_ENV, "").strip().lower() == "celery"


def flow_executor() -> dg.ExecutorDefinition:
    """The executor for every flow job, picked once when the code location loads."""
    if not celery_selected():
        return dg.in_process_executor
    if not os.environ.get(BROKER_ENV):
        raise ValueError(f"{EXECUTOR_ENV}=celery needs {BROKER_ENV} (e.g. amqp://user:pass@rabbitmq:5672//)")
    config: dict = {"broker": {"env": BROKER_ENV}}
    if os.environ.get(BACKEND_ENV):
        config["backend"] = {"env": BACKEND_ENV}
    return celery_executor.configured(config, name="celery")
