"""The real Dagster webserver (the UI) over the repository's workspace, for tests that use a browser.

`WebserverProcess` runs `dagster-webserver -w workspace.yaml` on a free port of 127.0.0.1, started like
`DaemonProcess` (own process group, private `DAGSTER_HOME` with the repository's `dagster.yaml`, this
tree on `PYTHONPATH`), so the UI reads the same instance a test writes runs to.
"""

from __future__ import annotations

import httpx

from mienne_ops.cli import REPO_ROOT, venv_tool
from mienne_ops.devtools.daemon import DaemonProcess
from mienne_ops.sandbox.server import free_port

#: Against a hang only: the webserver loads the code location first, slow on a busy two-core box.
START_GUARD_SECONDS = 300.0


class WebserverProcess(DaemonProcess):
    """`dagster-webserver` in a child process group; entering waits until it answers."""

    port = 0

    def command(self) -> list[str]:
        self.port = free_port()
        return [
            venv_tool("dagster-webserver"),
            *("-w", str(REPO_ROOT / "workspace.yaml")),
            *("-h", "127.0.0.1", "-p", str(self.port)),
        ]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> WebserverProcess:
        super().__enter__()
        try:
            self.wait_for("the webserver to answer", self._answers, START_GUARD_SECONDS)
        except BaseException:
            self.stop()
            raise
        return self

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/server_info", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False
