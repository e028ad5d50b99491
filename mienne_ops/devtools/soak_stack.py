"""The processes a soak kills and restarts: the webhook receiver, the daemon, a private PostgreSQL.

`ReceiverProcess` runs `mienne-ops webhooks serve` as an operator does, in its own process group, so
`kill -9` ends it mid-request; `restart` brings it back on the same port. `RestartableDaemon` wraps
`DaemonProcess` (the real `dagster-daemon run`) the same way: `kill9` ends its whole process group
(daemon, code server, run workers: a container restart) and `start` brings up a new daemon on the
same DAGSTER_HOME. `PrivatePostgres` is a throw-away PostgreSQL cluster of the machine's server
binaries, on its own port and data directory, so restarting it under the soak never disturbs
anyone else's database on the shared server at 127.0.0.1:5432.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import httpx

from mienne_ops.cli import REPO_ROOT, venv_tool
from mienne_ops.devtools.daemon import DaemonProcess, _signal_group
from mienne_ops.sandbox.server import free_port

START_GUARD = 120.0  # seconds: only against a hang on a busy box


def _wait_until(what: str, check, timeout: float = START_GUARD, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(every)


class ReceiverProcess:
    """`mienne-ops webhooks serve` on 127.0.0.1 in a process group of its own."""

    def __init__(self, env: Mapping[str, str], log_path: Path, cwd: Path) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.cwd = cwd  # not the repository root: no developer `.env` is read
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/webhooks/shopify"

    def start(self) -> ReceiverProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed by kill9/stop
        command = [venv_tool("mienne-ops"), "webhooks", "serve", "--port", str(self.port)]
        self._process = subprocess.Popen(
            command,
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_until("the receiver's /health", self.healthy)
        return self

    def healthy(self) -> bool:
        if self._process is None or self._process.poll() is not None:
            if self._process is not None:
                raise RuntimeError(f"the receiver exited ({self._process.returncode}); see {self.log_path}")
            return False
        try:
            return httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill9(self) -> None:
        if self._process is not None:
            _signal_group(self._process.pid, signal.SIGKILL)
            self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            _signal_group(self._process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=20)
        self.kill9()


class RestartableDaemon:
    """A `DaemonProcess` that can be killed with SIGKILL (its whole group) and started again."""

    def __init__(self, dagster_home: Path, env: Mapping[str, str], log_path: Path) -> None:
        self.dagster_home, self.env, self.log_path = dagster_home, dict(env), log_path
        self.current: DaemonProcess | None = None

    def start(self) -> RestartableDaemon:
        self.current = DaemonProcess(self.dagster_home, self.env, self.log_path).__enter__()
        return self

    def alive(self) -> bool:
        return self.current is not None and self.current.alive()

    def kill9(self) -> None:
        """SIGKILL to the daemon's whole process group at once (`DaemonProcess.kill`)."""
        if self.current is not None:
            self.current.kill()
            self.current = None

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb in ``root``, trust auth, 127.0.0.1:<free port>).

    Needs the server binaries (``/usr/lib/postgresql/<version>/bin``) and to run as root (the
    cluster then runs as ``postgres``) or as the ``postgres`` user.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "postgres.log"  # the server's output: never our pipes (pg_ctl would wait on them)
        self.port = free_port()
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
        if not versions:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.bin = versions[-1]

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, timeout=timeout, capture_output=True, cwd="/")

    def start(self) -> PrivatePostgres:
        self.root.mkdir(parents=True, exist_ok=True)
        # The cluster runs as postgres: every directory above the data must be traversable by it.
        for parent in (self.root, *self.root.parents):
            if parent == Path("/") or parent.stat().st_uid != os.geteuid():
                break
            parent.chmod(parent.stat().st_mode | 0o711)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "start",
        )
        return self

    def create_database(self, name: str) -> str:
        import sqlalchemy as sa

        admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return self.database_url(name)

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every connection is closed, the server is down for a moment."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "restart")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)


def child_env(base: Mapping[str, str]) -> dict[str, str]:
    """The environment of a child process: this tree's mienne_ops first on the path."""
    return {
        **base,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
