"""The production deployment files (deploy/): Dagster validates the instance config and the workspace
file, the Compose file is valid for docker compose, and the Helm values match the Celery queues."""

import shutil
import subprocess
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.run_coordinator.queued_run_coordinator import QueuedRunCoordinator
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.workspace.config_schema import ensure_workspace_config

from mienne_ops.flows.run_launcher import WorkerCheckingRunLauncher

try:  # the Celery executor's queues (flows/execution.py, landed with the Celery workers)
    from mienne_ops.flows.execution import DEFAULT_QUEUE, QUEUES
except ImportError:  # before it: the queues it names
    QUEUES, DEFAULT_QUEUE = ("netsuite", "shopify", "dcl", "support"), "dagster"

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


@pytest.mark.postgres
def test_the_production_instance_config_is_what_dagster_runs(database_url, tmp_path, monkeypatch):
    shutil.copy(DEPLOY / "dagster.postgres.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_URL", database_url)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config  # what the daemon's queue applies
        assert queue is not None
        assert queue.max_concurrent_runs == 10
        assert queue.tag_concurrency_limits == [
            {"key": "mienne-ops/flow", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
        ]
        assert instance.run_monitoring_enabled and instance.run_monitoring_start_timeout_seconds == 300
        assert isinstance(instance.run_launcher, WorkerCheckingRunLauncher)  # ends orphaned runs
        assert instance.run_monitoring_poll_interval_seconds == 15
        assert instance.run_monitoring_settings["max_runtime_seconds"] == 3600
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure
        ticks = instance.get_tick_retention_settings(InstigatorType.SENSOR)
        assert ticks[TickStatus.SKIPPED] == 2 and ticks[TickStatus.SUCCESS] == 30


def test_the_local_and_production_instances_limit_each_flow_to_one_run_alike():
    local = yaml.safe_load((DEPLOY.parent / "dagster.yaml").read_text())
    production = load("dagster.postgres.yaml")
    limits = [config["concurrency"]["runs"]["tag_concurrency_limits"] for config in (local, production)]
    assert limits[0] == limits[1]


def test_the_production_workspace_names_the_grpc_code_server():
    workspace = ensure_workspace_config(load("workspace.yaml"), str(DEPLOY / "workspace.yaml"))
    assert workspace["load_from"] == [
        {"grpc_server": {"host": "code", "port": 4000, "location_name": "mienne_ops"}}
    ]
    compose = load("docker-compose.yml")
    assert compose["services"]["code"]["command"][-4:] == ["-h", "0.0.0.0", "-p", "4000"]


def compose_command() -> list[str] | None:
    """`docker compose` (v2 plugin) or `docker-compose` (v1), whichever this machine has."""
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def test_docker_compose_accepts_the_compose_file(monkeypatch):
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    monkeypatch.setenv("POSTGRES_PASSWORD", "p")
    monkeypatch.setenv("RABBITMQ_PASSWORD", "r")
    result = subprocess.run(
        [*command, "-f", str(DEPLOY / "docker-compose.yml"), "config", "-q"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_every_celery_queue_has_workers_in_compose_and_helm():
    wanted = {*QUEUES, DEFAULT_QUEUE}
    compose = load("docker-compose.yml")["services"]
    compose_queues = {
        service["command"][service["command"].index("-q") + 1]
        for service in compose.values()
        if service.get("command", [None])[0] == "dagster-celery"
    }
    helm = load("helm/values.yaml")["runLauncher"]
    assert helm["type"] == "CeleryK8sRunLauncher"
    helm_queues = {queue["name"] for queue in helm["config"]["celeryK8sRunLauncher"]["workerQueues"]}
    assert compose_queues == wanted and helm_queues == wanted
