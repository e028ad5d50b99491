"""`mienne-ops dev` started as a user starts it (in a temp directory, on free ports) and stopped with
Ctrl-C: no process of the stack outlives it (the gRPC code server included), no run is left queued,
in flight or failed, and the console shows no traceback."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import dagster as dg
import httpx
import pytest

from mienne_ops.resources import LIVE_SWITCHES
from mienne_ops.sandbox.server import free_port

pytestmark = pytest.mark.slow

T = TypeVar("T")
LEFT_OVER = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
    dg.DagsterRunStatus.FAILURE,
]


def processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds ``marker`` (every descendant of dev inherits it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


def wait_for(what: str, check: Callable[[], T | None], dev: subprocess.Popen, timeout: float = 600) -> T:
    """Poll ``check``; ``timeout`` only guards against a hang. Fails at once if dev exited."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if dev.poll() is not None:
            raise AssertionError(f"mienne-ops dev exited while waiting for {what}: {dev.communicate()[0]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(1)


def ui_up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def runs(home: Path) -> list[dg.DagsterRun]:
    if not (home / "history" / "runs.db").exists():
        return []
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        return list(instance.get_runs())
    finally:
        instance.dispose()


def test_ctrl_c_stops_every_process_and_leaves_no_run_behind(tmp_path):
    marker = f"MIENNE_DEV_TEST={uuid.uuid4().hex}"
    ui, sandbox, receiver = free_port(), free_port(), free_port()
    home = tmp_path / "dagster_home"
    env = {k: v for k, v in os.environ.items() if k not in LIVE_SWITCHES.values()}
    env.update({"MIENNE_STATE_DIR": str(tmp_path / "state"), "DAGSTER_HOME": str(home)})
    env.pop("MIENNE_LEDGER_URL", None)
    env[marker.split("=")[0]] = marker.split("=")[1]
    command = [sys.executable, "-m", "mienne_ops.cli", "dev", "--port", str(ui)]
    command += ["--sandbox-port", str(sandbox), "--webhook-port", str(receiver), "--dagster-home", str(home)]
    dev = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # As from a terminal: a test run started in the background (`make test &` from a script)
        # ignores SIGINT, and the child would inherit that and never see the Ctrl-C below.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        wait_for("the Dagster UI", lambda: ui_up(ui), dev)
        # The demo traffic places orders and the sensors launch runs: stop with runs about.
        wait_for("a run", lambda: runs(home), dev)
        assert processes_with(marker)
        dev.send_signal(signal.SIGINT)  # what Ctrl-C sends (the children are in their own sessions)
        output, _ = dev.communicate(timeout=600)
        (tmp_path / "console.txt").write_text(output)
    finally:
        if dev.poll() is None:
            dev.kill()
            # Its children run in sessions of their own: a failed stop must not leave them running
            # (burning the CPU of every test after this one).
            for pid in processes_with(marker):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    assert dev.returncode == 0, output
    assert "Traceback" not in output, output
    assert "stopped:" in output
    assert processes_with(marker) == []
    left = [(run.job_name, run.status.value) for run in runs(home) if run.status in LEFT_OVER]
    assert left == [], output
