"""The sandbox server: every system fake mounted under its own prefix of one Starlette app.

Layout (a contract: tests, benchmarks and outside harnesses rely on it):

- ``/shopify/admin/api/<version>/graphql.json``             Shopify Admin GraphQL
- ``/netsuite/services/rest/record/v1/…``, ``/netsuite/services/rest/query/v1/suiteql``
- ``/dcl/api/v1/…``                                           DCL Logistics
- ``/stateset/…``                                             StateSet (stateset-node paths)
- ``/zendesk/api/v2/…``                                       Zendesk Support
- ``/recharge/…``                                             Recharge (2021-11 REST paths)
- ``/gorgias/api/…``                                          Gorgias REST
- ``/_sandbox/…``                                             the control plane (see `control.py`)

`SandboxServer` runs it over real HTTP in a background thread (tests, benchmarks); `serve` runs it
in the foreground (`mienne-ops sandbox serve`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import socket
import threading
import time
from pathlib import Path

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from mienne_ops.sandbox.base import SystemSandbox
from mienne_ops.sandbox.faults import FaultBook
from mienne_ops.sandbox.world import World

log = logging.getLogger("mienne_ops.sandbox")

#: The system fakes, in mount order. Each module exposes a `Sandbox` class (a `SystemSandbox`).
SYSTEM_MODULES = (
    "mienne_ops.sandbox.shopify",
    "mienne_ops.sandbox.netsuite",
    "mienne_ops.sandbox.dcl",
    "mienne_ops.sandbox.stateset",
    "mienne_ops.sandbox.zendesk",
    "mienne_ops.sandbox.recharge",
    "mienne_ops.sandbox.gorgias",
    "mienne_ops.sandbox.slack",
    "mienne_ops.sandbox.mail_sink",
)


class FaultInjector:
    """ASGI middleware applying a system's configured latency, 5xx and 429 faults to its API."""

    def __init__(self, app: ASGIApp, system: SystemSandbox) -> None:
        self.app = app
        self.system = system

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        faults = self.system.faults
        delay = faults.latency_seconds(self.system.name)
        if delay:
            await asyncio.sleep(delay)
        status = faults.injected_status(self.system.name)
        if status is not None:
            response = self.system.fault_response(status)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def build_systems(
    world: World, faults: FaultBook, modules: tuple[str, ...] = SYSTEM_MODULES
) -> list[SystemSandbox]:
    systems = []
    for module_name in modules:
        module = importlib.import_module(module_name)
        systems.append(module.Sandbox(world, faults))
    return systems


def create_app(
    world: World,
    faults: FaultBook | None = None,
    *,
    traffic: bool = False,
    modules: tuple[str, ...] = SYSTEM_MODULES,
    smtp_port: int | None = None,
) -> Starlette:
    """Build the ASGI app; the world is reset to the seed catalog if it is empty.

    ``modules`` narrows the mounted systems (a test of one fake may mount only that one);
    ``smtp_port``: where the SMTP sink listens (None: a free port).
    """
    from mienne_ops.sandbox import control

    faults = faults or FaultBook()
    systems = build_systems(world, faults, modules)
    for system in systems:
        if system.name == "mail":
            system.port = smtp_port  # type: ignore[attr-defined]
    mounts = []
    for system in systems:
        api = Starlette(routes=system.routes())
        wrapped = (
            system.wrap(FaultInjector(api, system)) if hasattr(system, "wrap") else FaultInjector(api, system)
        )
        mounts.append(Mount(f"/{system.name}", app=wrapped))
    hub = control.SandboxHub(world, faults, systems)
    if not hub.is_seeded():
        hub.reset()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        # Sync endpoints run in anyio's thread pool; latency faults hold threads, so allow plenty.
        anyio.to_thread.current_default_thread_limiter().total_tokens = 200
        for system in systems:
            system.start()
        if traffic:
            hub.start_traffic()
        try:
            yield
        finally:
            hub.stop_traffic()
            for system in systems:
                system.stop()

    app = Starlette(routes=[Mount("/_sandbox", routes=hub.routes()), *mounts], lifespan=lifespan)
    app.state.hub = hub
    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SandboxServer:
    """The sandbox over real HTTP on 127.0.0.1, in a background thread (tests and benchmarks)."""

    def __init__(
        self,
        db_path: str | Path = ":memory:",
        port: int | None = None,
        traffic: bool = False,
        modules: tuple[str, ...] = SYSTEM_MODULES,
    ):
        self.port = port or free_port()
        self.world = World(db_path)
        self.faults = FaultBook()
        self.app = create_app(self.world, self.faults, traffic=traffic, modules=modules)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="sandbox-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hub(self):
        return self.app.state.hub

    @property
    def smtp_port(self) -> int:
        """Where the SMTP sink listens (known once the server has started)."""
        return self.hub.system("mail").port

    def start(self) -> SandboxServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("sandbox server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self.world.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(host: str, port: int, db_path: str | Path, traffic: bool = False) -> None:
    """Run the sandbox in the foreground until interrupted."""
    from mienne_ops import settings

    world = World(db_path)
    app = create_app(world, FaultBook(), traffic=traffic, smtp_port=settings.sandbox_smtp_port())
    log.info("sandbox serving on http://%s:%d (state in %s)", host, port, db_path)
    uvicorn.run(app, host=host, port=port, log_level="warning")
