"""The real Dagster daemon against the sandbox, started as an operator starts it.

`DaemonProcess` runs `dagster-daemon run -w workspace.yaml` (the repository's) in its own process
group, with a private `DAGSTER_HOME` holding the repository's `dagster.yaml` (run queue, the
`mienne-ops/flow` tag concurrency limit, `run_retries`, run monitoring) and the environment it is
given (typically `MIENNE_SANDBOX_URL` and `MIENNE_STATE_DIR`). The daemon starts the code location's
gRPC server, which launches every run in a process of its own; `run_worker_pid` finds that process
for a run (from the run's "Started process for run" event), so a test can crash it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TypeVar

import dagster as dg

from mienne_ops.cli import REPO_ROOT, venv_tool
from mienne_ops.flows.run_launcher import run_worker

T = TypeVar("T")


class DaemonProcess:
    """`dagster-daemon run` in a child process group; a context manager that stops it (and every
    code server and run worker it started) on exit."""

    def __init__(self, dagster_home: Path, env: Mapping[str, str], log_path: Path) -> None:
        self.dagster_home = dagster_home
        self.log_path = log_path
        self.env = {
            **os.environ,
            **env,
            "DAGSTER_HOME": str(dagster_home),
            # The code server and the run workers import this tree's mienne_ops, even where another
            # checkout of it is installed in the environment.
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        }
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> DaemonProcess:
        self.dagster_home.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / "dagster.yaml", self.dagster_home / "dagster.yaml")
        # Create the instance's storage here, once: the daemon and a reader opening an empty
        # DAGSTER_HOME at the same moment would both create the SQLite tables.
        self.instance().dispose()
        self._log = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            self.command(),
            # Not the repository root: Dagster loads a `.env` from the working directory over the
            # environment given here, and a developer's `.env` may hold live credentials.
            cwd=self.dagster_home,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def command(self) -> list[str]:
        """What runs over the repository's workspace (`devtools.webserver` runs the webserver)."""
        return [venv_tool("dagster-daemon"), "run", "-w", str(REPO_ROOT / "workspace.yaml")]

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM the whole group (the daemon shuts its threads and code server down), then insist."""
        process = self._process
        if process is not None and process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=timeout)
        if process is not None:
            # Run workers and code servers outlive a daemon that was killed: end the group.
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL the whole group at once, as a container restart does: daemon, code server and
        run workers die mid-step, and nothing reports their runs ended."""
        process = self._process
        if process is not None:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
        self.stop()

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def instance(self) -> dg.DagsterInstance:
        """The daemon's Dagster instance (runs, event logs, ticks), opened from its DAGSTER_HOME."""
        return dg.DagsterInstance.from_config(str(self.dagster_home))

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_for(self, what: str, check: Callable[[], T | None], timeout: float, every: float = 1.0) -> T:
        """Poll ``check`` until it returns something truthy; ``timeout`` only guards against a hang.

        Fails at once, with the daemon's log, if the daemon died.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if not self.alive():
                raise AssertionError(f"the daemon exited while waiting for {what}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what}:\n{self.log_tail()}"
                )
            time.sleep(every)


def run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the process executing a run (its "Started process for run" engine event)."""
    worker = run_worker(instance, run_id)
    return worker.pid if worker is not None else None


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)
