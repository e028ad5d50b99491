"""Stopping `mienne-ops dev` without leaving failed or queued runs, tracebacks or processes behind.

Ctrl-C used to reach every process of the stack at once: run workers died mid-step (failed runs,
``KeyboardInterrupt`` tracebacks), sensors launched runs into a queue nobody would drain, and the
daemon called a code server that was already gone. The order here is the one an operator would
follow by hand:

1. interrupt `dagster dev` alone — it stops the daemon (sensors, schedules, run queue) and the
   webserver, then its code server; run workers already executing are not signalled;
2. cancel the runs still waiting in the queue (nothing will dequeue them), let the runs in flight
   finish (the sandbox and receiver still answer them), and cancel any that outlive ``grace``;
3. end whatever is left of Dagster's process group (a code server, a run worker that hung);
4. interrupt the receiver and the sandbox, and insist if they do not stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from mienne_ops.devtools.daemon import run_worker_pid

WAITING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]
IN_FLIGHT = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


@dataclass
class StopReport:
    """What stopping did to the runs, for the one line the dev command prints."""

    finished: list[str] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.finished)} run(s) in flight finished, {len(self.canceled)} canceled"


def stop_stack(
    dagster: subprocess.Popen | None,
    services: list[subprocess.Popen],
    dagster_home: Path,
    grace: float = 60.0,
) -> StopReport:
    """Stop Dagster first (settling its runs), then the services its runs call."""
    report = StopReport()
    if dagster is not None:
        _interrupt_dagster_dev(dagster, grace)
        report = settle_runs(dagster_home, grace)
        end_group(dagster.pid)
    for child in reversed(services):
        _signal_group(child.pid, signal.SIGINT)
    for child in services:
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(child.pid, signal.SIGKILL)
            child.wait()
    return report


def _interrupt_dagster_dev(dagster: subprocess.Popen, grace: float) -> None:
    """SIGINT to `dagster dev`'s own pid (not its group): it shuts its services down in order."""
    if dagster.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(dagster.pid, signal.SIGINT)
    try:
        dagster.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        dagster.kill()
        dagster.wait()


def settle_runs(dagster_home: Path, grace: float) -> StopReport:
    """Cancel queued runs; wait (up to ``grace``) for runs in flight, then cancel what is left.

    A run whose worker is gone will never finish: it is canceled at once rather than waited for.
    """
    report = StopReport()
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        for run in instance.get_runs(dg.RunsFilter(statuses=WAITING)):
            instance.report_run_canceled(run, message="mienne-ops dev stopped before this run started")
            report.canceled.append(run.run_id)
        deadline = time.monotonic() + grace
        in_flight = {run.run_id for run in instance.get_runs(dg.RunsFilter(statuses=IN_FLIGHT))}
        while True:
            running = list(instance.get_runs(dg.RunsFilter(statuses=IN_FLIGHT)))
            stuck = [run for run in running if not _worker_alive(instance, run.run_id)]
            if time.monotonic() > deadline:
                stuck = running
            for run in stuck:
                _cancel(instance, run)
                report.canceled.append(run.run_id)
            if len(stuck) == len(running):
                break
            time.sleep(0.5)
        report.finished = sorted(in_flight - set(report.canceled))
    finally:
        instance.dispose()
    return report


def _worker_alive(instance: dg.DagsterInstance, run_id: str) -> bool:
    pid = run_worker_pid(instance, run_id)
    # STARTING without a worker yet: the launch is under way, so count it as alive until the deadline.
    return pid is None or _alive(pid)


def _cancel(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    pid = run_worker_pid(instance, run.run_id)
    if pid is not None and _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    instance.report_run_canceled(run, message="mienne-ops dev stopped while this run was in flight")


def end_group(pgid: int, grace: float = 10.0) -> None:
    """SIGTERM a process group, then SIGKILL what is still there (a code server, a hung worker)."""
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    _signal_group(pgid, signal.SIGKILL)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    if not Path("/proc").is_dir():  # e.g. macOS: only whether the group still has anyone
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its closing paren.
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
