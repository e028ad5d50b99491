"""A Celery deployment for one test: a private RabbitMQ vhost, a private Redis key prefix, workers and
run coordinators as subprocesses — each one killed (its whole process group) when the test ends.

The workers and the run coordinators (`dagster job execute`, as a run launcher would start one) load
`mienne_ops.definitions` with ``MIENNE_EXECUTOR=celery``; the test process plays the sensor daemon.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import yaml
from celery import Celery

from mienne_ops.flows.execution import DEFAULT_QUEUE, QUEUES

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672"
REDIS = "redis://127.0.0.1:6379/0"
#: Guards against a hang, generous for a busy 2-core CI box; never a measure of speed.
STARTUP_SECONDS = 300
RUN_SECONDS = 900


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


@contextmanager
def private_vhost() -> Iterator[str]:
    """A fresh RabbitMQ vhost (deleted afterwards), so parallel test runs never share a queue."""
    vhost = f"mienne-test-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"{RABBITMQ}/{vhost}"
    finally:
        rabbitmqctl("delete_vhost", vhost)


def stop(process: subprocess.Popen) -> None:
    """Stop a process we started and everything it started (its own process group)."""
    if process.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 30)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


class CeleryDeployment:
    """Workers on the vhost's queues, and run coordinators submitting steps to them."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        # `dagster-celery worker start` runs `celery` from PATH: this virtualenv's.
        self.env = {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"}
        self.logs = logs
        self.workers: dict[str, subprocess.Popen] = {}
        self._processes: list[subprocess.Popen] = []

    def _spawn(self, args: list[str], log: Path) -> subprocess.Popen:
        with log.open("wb") as out:
            process = subprocess.Popen(
                args, cwd=REPO_ROOT, env=self.env, stdout=out, stderr=out, start_new_session=True
            )
        self._processes.append(process)
        return process

    def start_worker(self, name: str, concurrency: int = 2) -> None:
        """``dagster-celery worker start`` on every queue, as deploy/README.md says (one ``-q`` with a
        comma list: Celery 5 keeps only the last of several ``-Q``)."""
        queues = ",".join((*QUEUES, DEFAULT_QUEUE))
        args = [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app"]
        args += ["-y", "deploy/celery.yaml", "-q", queues, "-n", name, "--", f"--concurrency={concurrency}"]
        self.workers[name] = self._spawn(args, self.logs / f"{name}.log")

    def wait_for_workers(self) -> None:
        """Until every worker answers a ping on the broker (a dead one fails at once, with its log)."""
        app = Celery(broker=self.env["MIENNE_CELERY_BROKER_URL"])
        deadline = time.monotonic() + STARTUP_SECONDS
        try:
            while True:
                for name, process in self.workers.items():
                    if process.poll() is not None:
                        raise AssertionError(f"worker {name} exited:\n{self.log(name)[-3000:]}")
                answered = {host.split("@", 1)[0] for reply in app.control.ping(timeout=2) for host in reply}
                if set(self.workers) <= answered:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"workers not ready: {sorted(set(self.workers) - answered)}")
        finally:
            app.close()

    def run_all(self, requests: list[dg.RunRequest], job_name: str) -> list[tuple[int, str]]:
        """Start one coordinator per run request at once; wait for all; (exit code, output) each."""
        started = []
        for index, request in enumerate(requests):
            config = self.logs / f"{job_name}-{index}.yaml"
            config.write_text(yaml.safe_dump(run_config(request)))
            tags = json.dumps({**request.tags, "dagster/run_key": request.run_key or ""})
            args = [str(BIN / "dagster"), "job", "execute", "-m", "mienne_ops.definitions", "-a", "defs"]
            args += ["-j", job_name, "-c", str(config), "--tags", tags]
            log = self.logs / f"{job_name}-{index}.log"
            started.append((self._spawn(args, log), log))
        results = []
        for process, log in started:
            process.wait(timeout=RUN_SECONDS)
            results.append((process.returncode, log.read_text(errors="replace")))
        return results

    def log(self, worker: str) -> str:
        return (self.logs / f"{worker}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for process in self._processes:
            stop(process)


def run_config(request: dg.RunRequest) -> dict:
    config = request.run_config
    return config.to_config_dict() if isinstance(config, dg.RunConfig) else dict(config or {})
