"""The run launcher's worker check (flows/run_launcher.py), on a real Dagster instance with real
processes: a live worker is RUNNING, a dead or reused pid FAILED, a code server elsewhere is asked,
and one that cannot be asked leaves the run RUNNING (never UNKNOWN, which run monitoring would
treat as a failure). The repository's dagster.yaml wires it in."""

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._daemon.auto_run_reexecution.auto_run_reexecution import should_retry
from dagster._grpc.server import GrpcServerProcess

from mienne_ops.definitions import build_definitions
from mienne_ops.flows.common import FLOW_MAX_RUNTIME_SECONDS, TAG_FLOW, TAG_MAX_RUNTIME
from mienne_ops.flows.run_launcher import (
    RunWorker,
    WorkerCheckingRunLauncher,
    launch_health,
    local_worker_health,
    remote_worker_health,
)
from mienne_ops.flows.stalled_launches import STALLED_LAUNCH_SECONDS, fail_stalled_launches

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = {"module": "mienne_ops.flows.run_launcher", "class": "WorkerCheckingRunLauncher"}
THIS_HOST = {"host": "localhost", "port": 4000}


@dg.op
def wait_a_little() -> None:
    pass


@dg.job
def worker_job():
    wait_a_little()


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(overrides={"run_launcher": LAUNCHER}) as instance:
        yield instance


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live process standing in for a run worker."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield process
    process.kill()
    process.wait()


def started_run(instance: dg.DagsterInstance, address: dict, pid: int | None) -> dg.DagsterRun:
    """A STARTED run launched at ``address`` whose worker announced ``pid`` (as the run worker does)."""
    run = instance.create_run_for_job(
        worker_job, status=dg.DagsterRunStatus.STARTED, tags={GRPC_INFO_TAG: json.dumps(address)}
    )
    if pid is not None:
        instance.report_engine_event(
            f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid)
        )
    return run


def health(instance: dg.DagsterInstance, run: dg.DagsterRun) -> WorkerStatus:
    launcher = instance.run_launcher
    assert isinstance(launcher, WorkerCheckingRunLauncher) and launcher.supports_check_run_worker_health
    return launcher.check_run_worker_health(run).status


def test_a_live_worker_on_this_host_is_running_and_a_dead_one_failed(instance, sleeper):
    run = started_run(instance, THIS_HOST, sleeper.pid)
    assert health(instance, run) == WorkerStatus.RUNNING

    sleeper.kill()
    sleeper.wait()
    assert health(instance, run) == WorkerStatus.FAILED


def test_a_pid_taken_by_a_newer_process_is_a_dead_worker(sleeper):
    # The worker announced itself an hour before the process now holding its pid started.
    assert local_worker_health(RunWorker(sleeper.pid, time.time())).status == WorkerStatus.RUNNING
    result = local_worker_health(RunWorker(sleeper.pid, time.time() - 3600))
    if Path("/proc/self/stat").exists():
        assert result.status == WorkerStatus.FAILED, result
    else:  # no /proc: the pid check alone decides
        assert result.status == WorkerStatus.RUNNING


def test_a_run_with_no_worker_yet_or_no_address_is_left_running(instance):
    assert health(instance, started_run(instance, THIS_HOST, None)) == WorkerStatus.RUNNING
    run = instance.create_run_for_job(worker_job, status=dg.DagsterRunStatus.STARTED)
    instance.report_engine_event("Started process for run (pid: 1).", run, EngineEventData.in_process(1))
    assert health(instance, run) == WorkerStatus.RUNNING


def test_a_code_server_elsewhere_that_does_not_answer_leaves_the_run_running(instance):
    # Another host (127.0.0.2 is not this host's name), and nothing listening: cannot tell.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = started_run(instance, {"host": "127.0.0.2", "port": port}, pid=1)
    result = instance.run_launcher.check_run_worker_health(run)
    assert result.status == WorkerStatus.RUNNING, result
    assert "not answering" in (result.msg or "")


def test_a_code_server_elsewhere_that_is_not_executing_the_run_fails_it(instance):
    origin = LoadableTargetOrigin(
        executable_path=sys.executable, python_file=__file__, attribute="worker_job"
    )
    with GrpcServerProcess(
        instance_ref=instance.get_ref(),
        loadable_target_origin=origin,
        force_port=True,
        startup_timeout=180,
        wait_on_exit=True,
    ) as server:
        # Asked as the daemon asks a code server in another container (deploy/docker-compose.yml).
        run = started_run(instance, {"host": "127.0.0.1", "port": server.port}, pid=1)
        result = remote_worker_health({"host": "127.0.0.1", "port": server.port}, run.run_id)
        assert result.status == WorkerStatus.FAILED, result
        assert "not executing the run" in (result.msg or "")


def test_the_repository_instance_uses_the_launcher_and_polls_often(tmp_path):
    shutil.copy(REPO_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.run_launcher, WorkerCheckingRunLauncher)
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_poll_interval_seconds <= 20
        assert instance.run_monitoring_max_resume_run_attempts == 0  # a dead worker's run fails, then retries
        assert instance.run_retries_enabled


def test_every_flow_job_bounds_its_runs_below_the_instance_hour():
    defs = build_definitions()
    flow_jobs = [job for job in defs.resolve_all_job_defs() if TAG_FLOW in job.tags]
    assert len(flow_jobs) >= 8
    for job in flow_jobs:
        assert job.tags.get(TAG_MAX_RUNTIME) == str(FLOW_MAX_RUNTIME_SECONDS), job.name
    assert FLOW_MAX_RUNTIME_SECONDS < 3600


# -- launches that died with the daemon (flows/stalled_launches.py) ---------------------------------
@pytest.fixture
def retrying_instance() -> Iterator[dg.DagsterInstance]:
    overrides = {"run_launcher": LAUNCHER, "run_retries": {"enabled": True, "max_retries": 2}}
    with dg.instance_for_test(overrides=overrides) as instance:
        yield instance


def starting_run(instance: dg.DagsterInstance, address: dict) -> dg.DagsterRun:
    """A run handed to the code server at ``address`` whose worker has not started (yet)."""
    tags = {GRPC_INFO_TAG: json.dumps(address)}
    return instance.create_run_for_job(worker_job, status=dg.DagsterRunStatus.STARTING, tags=tags)


def test_a_launch_whose_code_server_is_gone_is_failed_after_a_minute_and_retried(retrying_instance, tmp_path):
    instance = retrying_instance
    gone = starting_run(instance, {"socket": str(tmp_path / "dead-code-server.sock")})
    with socket.socket(socket.AF_UNIX) as server:  # a code server still listening: its launch may be slow
        server.bind(str(tmp_path / "live.sock"))
        server.listen()
        slow = starting_run(instance, {"socket": str(tmp_path / "live.sock")})

        assert fail_stalled_launches(instance, now=time.time()) == []  # younger than a minute: left alone
        failed = fail_stalled_launches(instance, now=time.time() + STALLED_LAUNCH_SECONDS + 1)

    assert [run_id for run_id, _ in failed] == [gone.run_id]
    assert "is gone, no worker started" in failed[0][1]
    assert instance.get_run_by_id(slow.run_id).status == dg.DagsterRunStatus.STARTING
    ended = instance.get_run_by_id(gone.run_id)
    assert ended.status == dg.DagsterRunStatus.FAILURE
    assert should_retry(ended, instance)  # as after a start timeout: run_retries launches it again


def test_a_launch_whose_worker_started_is_judged_by_its_worker(instance, sleeper, tmp_path):
    alive = starting_run(instance, {"socket": str(tmp_path / "gone.sock")})
    instance.report_engine_event(
        f"Started process for run (pid: {sleeper.pid}).", alive, EngineEventData.in_process(sleeper.pid)
    )
    assert launch_health(instance, alive).status == WorkerStatus.RUNNING
    assert fail_stalled_launches(instance, now=time.time() + 3600) == []
    sleeper.kill()
    sleeper.wait()
    assert launch_health(instance, alive).status == WorkerStatus.FAILED


def test_the_sweeper_is_in_the_code_location():
    assert "stalled_launches_sensor" in {s.name for s in build_definitions().sensors}


def test_a_launch_on_a_code_server_elsewhere_is_left_to_the_start_timeout(instance):
    # Nothing listens there, but a code server in its own container may just be slow to register it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = starting_run(instance, {"host": "127.0.0.2", "port": port})
    assert launch_health(instance, run).status == WorkerStatus.RUNNING
    assert fail_stalled_launches(instance, now=time.time() + 3600) == []
