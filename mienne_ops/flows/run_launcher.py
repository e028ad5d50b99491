"""Dagster's default run launcher, plus the check that lets run monitoring end orphaned runs.

A run launched by `DefaultRunLauncher` executes in a process the code server spawns. When the run
worker alone dies, the code server notices and fails the run. When the whole process group goes
(`kill -9` of the daemon, a container restart), nobody is left to notice: the run stays STARTED,
and under the one-run-per-flow limit (`mienne-ops/flow`, dagster.yaml) every later batch of its
flow queues behind it until the monitoring daemon's `max_runtime_seconds`. The default launcher
cannot help: it does not implement `check_run_worker_health`, so the monitoring daemon only ever
applies the run-time limit.

`WorkerCheckingRunLauncher` launches exactly as the default one does and answers that check, which
the monitoring daemon asks every `run_monitoring.poll_interval_seconds` about each STARTED run
(`dagster._daemon.monitoring.run_monitoring.monitor_started_run`):

- **The code server is on this host** (the run's `dagster/grpc_info` tag names localhost, a unix
  socket or this host's name: `make dev`, `devtools.daemon`, one container holding daemon and code
  server). The run worker's pid comes from its "Started process for run (pid: N)" event. No such
  process, a zombie, or a process that started after that event (the pid was reused, e.g. by the
  restarted container's new processes) → FAILED: the daemon fails the run and `run_retries`
  re-executes it (every step is idempotent, so the order still ends exactly once).
- **The code server is elsewhere** (deploy/docker-compose.yml: the `code` container; its run
  workers are its children). The launcher asks that server which runs it is executing
  (`GetCurrentRuns`). It answers without this run → FAILED (its container restarted, taking the
  worker with it; a dead worker under a live server is failed by the server itself). A daemon
  restart alone leaves the code container and its workers running: they answer RUNNING.
- **Cannot tell** (no worker event yet, the server not answering): RUNNING. Not Dagster's
  UNKNOWN: the monitoring daemon fails a run on every status but RUNNING and SUCCESS, so UNKNOWN
  would fail live runs. Such a run is bounded by its flow's `dagster/max_runtime` tag
  (`flows.common.flow_tags`).

A run that was STARTING when the daemon died never reaches this check: the monitoring daemon only
checks STARTED runs and ends a STARTING one at `run_monitoring.start_timeout_seconds` (300 s, for a
slow launch on a busy box), five minutes of a blocked flow. `launch_health` answers for those, and
`flows.stalled_launches` asks it once a launch is a minute old. On this host (where the daemon's
restart takes its code server along): a run whose worker announced itself is judged as above, one
with no worker yet is FAILED when nothing listens at its code server's socket or port any more.
A code server elsewhere survives a daemon restart and may be slow to register a launch, so such a
run is left to the start timeout. Why a launcher and not a sweeper for STARTED runs: the monitoring daemon
already does the rest (polls, re-reads the run before failing it so a run that just finished is
left alone, records the reason, hands the run to `run_retries`); a sensor would copy that, racing
it. For STARTING runs Dagster offers no such hook, so there the sensor re-reads and fails.
"""

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

#: How the run worker announces itself in the run's event log (`dagster._grpc.impl`, `_cli.api`).
STARTED_PROCESS = "Started process for run"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
#: A genuine worker started before it wrote its "Started process" event; /proc's boot time is
#: whole seconds, so allow that much (and a little clock step) before calling the pid reused.
PID_REUSE_SLACK_SECONDS = 2.0
#: How long the worker check waits for a remote code server's answer before it assumes the run alive.
REMOTE_CHECK_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class RunWorker:
    """The process executing a run, from its "Started process for run" event."""

    pid: int
    announced_at: float  # the event's timestamp (seconds since the epoch)


def run_worker(instance: dg.DagsterInstance, run_id: str) -> RunWorker | None:
    """The run's latest worker process (a resumed run may have had several), or None before one
    announced itself."""
    worker = None
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = record.dagster_event
        if event is None or not (event.message or "").startswith(STARTED_PROCESS):
            continue
        data = event.engine_event_data
        pid = data.metadata.get("pid") if data is not None else None
        if pid is not None:
            worker = RunWorker(int(str(pid.value)), record.timestamp)
    return worker


def code_server_address(run: dg.DagsterRun) -> dict[str, Any] | None:
    """Where the run was launched (`DefaultRunLauncher` tags it: host, port or socket, use_ssl)."""
    raw = run.tags.get(GRPC_INFO_TAG)
    try:
        address = json.loads(raw) if raw else None
    except ValueError:
        return None
    return address if isinstance(address, dict) else None


def is_this_host(address: dict[str, Any]) -> bool:
    """Whether the code server, and so the run worker it spawned, shares this host's processes."""
    host = str(address.get("host") or "localhost")
    return bool(address.get("socket")) or host in LOCAL_HOSTS or host == socket.gethostname()


def local_worker_health(worker: RunWorker) -> CheckRunHealthResult:
    """The worker's process on this host: alive and the same process → RUNNING, else FAILED."""
    try:
        os.kill(worker.pid, 0)
    except ProcessLookupError:
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {worker.pid} is gone")
    except PermissionError:
        pass  # exists, owned by another user: /proc below says whether it is ours
    started_at, state = process_start(worker.pid)
    if state in {"Z", "X"}:
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {worker.pid} has exited")
    if started_at is not None and started_at > worker.announced_at + PID_REUSE_SLACK_SECONDS:
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"run worker process {worker.pid} is gone (a newer process has its pid)"
        )
    return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker process {worker.pid} is alive")


def process_start(pid: int) -> tuple[float | None, str | None]:
    """A process's start time (seconds since the epoch) and state letter from Linux's /proc; (None,
    None) where there is no /proc (the pid check alone then decides)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot_line = next(
            line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime ")
        )
        # The command name (field 2) may hold spaces and parentheses: split after its last ")".
        fields = stat.rsplit(")", 1)[1].split()
        state, start_ticks = fields[0], int(fields[19])  # fields 3 and 22 of proc(5)
        return float(boot_line.split()[1]) + start_ticks / os.sysconf("SC_CLK_TCK"), state
    except (OSError, StopIteration, IndexError, ValueError):
        return None, None


def remote_worker_health(address: dict[str, Any], run_id: str) -> CheckRunHealthResult:
    """Ask the code server that launched the run whether it is still executing it."""
    from dagster._grpc.__generated__ import dagster_api_pb2
    from dagster._grpc.client import DagsterGrpcClient
    from dagster._grpc.types import GetCurrentRunsResult
    from dagster._serdes import deserialize_value

    where = f"{address.get('host')}:{address.get('port') or address.get('socket')}"
    client = DagsterGrpcClient(
        port=address.get("port"),
        socket=address.get("socket"),
        host=str(address.get("host") or "localhost"),
        use_ssl=bool(address.get("use_ssl", False)),
    )
    try:
        # `get_current_runs` with a short timeout of our own: monitoring checks runs one after
        # another, and the client's default (60 s, or DAGSTER_GRPC_TIMEOUT_SECONDS) per hung code
        # server would stall the whole pass, start timeouts included.
        timeout = REMOTE_CHECK_TIMEOUT_SECONDS
        response = client._query("GetCurrentRuns", dagster_api_pb2.Empty, timeout=timeout)
        current = deserialize_value(response.serialized_current_runs, GetCurrentRunsResult)
    except Exception as error:  # unreachable, restarting, timed out: cannot tell
        return CheckRunHealthResult(
            WorkerStatus.RUNNING, f"code server {where} not answering ({type(error).__name__}): assumed alive"
        )
    if run_id in current.current_runs:
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"code server {where} is executing the run")
    return CheckRunHealthResult(
        WorkerStatus.FAILED, f"code server {where} is not executing the run (restarted, or its worker died)"
    )


def local_server_listening(address: dict[str, Any]) -> bool | None:
    """Whether a code server on this host still listens at ``address`` (None: cannot tell)."""
    target = address.get("socket")
    family = socket.AF_UNIX if target else socket.AF_INET
    where = target or (str(address.get("host") or "localhost"), int(address.get("port") or 0))
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.settimeout(REMOTE_CHECK_TIMEOUT_SECONDS)
            probe.connect(where)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:  # timed out, or a host name that does not resolve: cannot tell
        return None
    return True


def launch_health(instance: dg.DagsterInstance, run: dg.DagsterRun) -> CheckRunHealthResult:
    """For a STARTING run: FAILED when it can never start (see the module's docstring)."""
    address = code_server_address(run)
    if address is None:
        return CheckRunHealthResult(WorkerStatus.RUNNING, "launched without a code server address")
    if not is_this_host(address):
        # A busy code server may register a launch only after a long StartRun call (DAGSTER_GRPC_
        # TIMEOUT_SECONDS is raised for that), so "not executing it" could be a launch on its way.
        return CheckRunHealthResult(WorkerStatus.RUNNING, "code server elsewhere: left to the start timeout")
    worker = run_worker(instance, run.run_id)  # the run's event log: read only when it can decide
    if worker is not None:
        return local_worker_health(worker)
    if local_server_listening(address) is False:
        where = address.get("socket") or f"port {address.get('port')}"
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"the code server asked to launch the run ({where}) is gone, no worker started",
        )
    return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker announced yet")


class WorkerCheckingRunLauncher(dg.DefaultRunLauncher):
    """`DefaultRunLauncher` whose `check_run_worker_health` tells run monitoring when a run's worker
    is gone (dagster.yaml: ``run_launcher: {module: mienne_ops.flows.run_launcher, class:
    WorkerCheckingRunLauncher}``)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        worker = run_worker(self._instance, run.run_id)
        if worker is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker announced yet")
        address = code_server_address(run)
        if address is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "launched without a code server address")
        if is_this_host(address):
            return local_worker_health(worker)
        return remote_worker_health(address, run.run_id)
