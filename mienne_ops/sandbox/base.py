"""What every system fake provides to the sandbox server.

A `SystemSandbox` owns one external system's behaviour: its real API routes (mounted under
``/<name>`` with the vendor's own paths below), its control-plane routes (mounted under
``/_sandbox/<name>``), how it resets to the seed catalog, how it dumps its state, the credentials it
accepts, and how an injected fault looks in that system's real error shape.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from mienne_ops.sandbox.catalog import Catalog
from mienne_ops.sandbox.faults import FaultBook
from mienne_ops.sandbox.world import World


class SystemSandbox(ABC):
    name: str

    def __init__(self, world: World, faults: FaultBook) -> None:
        self.world = world
        self.faults = faults

    @abstractmethod
    def routes(self) -> list[BaseRoute]:
        """The vendor API, with the vendor's paths (mounted under /<name>)."""

    def control_routes(self) -> list[BaseRoute]:
        """Control-plane routes for this system (mounted under /_sandbox/<name>)."""
        return []

    @abstractmethod
    def reset(self, catalog: Catalog) -> None:
        """Empty this system's state and load the seed catalog (called inside a world transaction)."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """Every record of this system as JSON, for assertions and `GET /_sandbox/state`."""

    @abstractmethod
    def credentials(self) -> dict[str, Any]:
        """The credentials this fake accepts (documented; returned by `GET /_sandbox/credentials`)."""

    def fault_response(self, status: int) -> Response:
        """An injected error (5xx or 429) in this system's real error shape. Override per system."""
        headers = {"Retry-After": "1"} if status == 429 else {}
        return JSONResponse({"error": "injected fault"}, status_code=status, headers=headers)

    def start(self) -> None:  # noqa: B027 - optional hook, most fakes have no background work
        """Start background work (webhook delivery, simulators). Called once the server is up."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        """Stop background work."""
