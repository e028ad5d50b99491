"""The executor switch and the per-system queues of the flows' ops."""

import dagster as dg
import pytest

from mienne_ops.definitions import defs
from mienne_ops.flows.common import TAG_FLOW
from mienne_ops.flows.execution import (
    BACKEND_ENV,
    BROKER_ENV,
    EXECUTOR_ENV,
    QUEUE_TAG,
    QUEUES,
    flow_executor,
    on_queue,
)


def test_in_process_unless_celery_is_chosen(monkeypatch):
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    assert flow_executor() is dg.in_process_executor
    monkeypatch.setenv(EXECUTOR_ENV, "celery")
    monkeypatch.setenv(BROKER_ENV, "amqp://guest:guest@127.0.0.1:5672//")
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    executor = flow_executor()
    assert executor.name == "celery"


def test_celery_without_a_broker_url_is_refused_at_load(monkeypatch):
    monkeypatch.setenv(EXECUTOR_ENV, "celery")
    monkeypatch.delenv(BROKER_ENV, raising=False)
    with pytest.raises(ValueError, match=BROKER_ENV):
        flow_executor()


def test_every_flow_op_names_a_system_queue():
    """Each op job's ops say which system's workers run them (asset jobs use the default queue)."""
    repo = defs.get_repository_def()
    # The flows' op jobs run on `flow_executor()`; asset jobs and maintenance (retention) name no queue.
    op_jobs = [
        job
        for job in repo.get_all_jobs()
        if TAG_FLOW in job.tags and not any(job.asset_layer.executable_asset_keys)
    ]
    assert all(job.executor_def is dg.in_process_executor for job in repo.get_all_jobs())
    assert len(op_jobs) >= 11
    for job in op_jobs:
        for node in job.nodes:
            assert node.definition.tags.get(QUEUE_TAG) in QUEUES, (job.name, node.name)
    flow_a = repo.get_job("shopify_order_ingestion_job").get_node_named("ingest_shopify_orders")
    assert flow_a.definition.tags[QUEUE_TAG] == "netsuite"
    with pytest.raises(ValueError):
        on_queue("stripe")
