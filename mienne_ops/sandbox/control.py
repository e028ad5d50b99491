"""The sandbox control plane (``/_sandbox/…``), used by tests, benchmarks and outside harnesses.

- ``POST /_sandbox/reset``        empty world plus the seed catalog (body optional: ``{"seed": 7}``)
- ``GET  /_sandbox/catalog``      SKUs (with NetSuite item ids), bundles and BOMs, locations, …
- ``GET  /_sandbox/state``        every system's records as JSON
- ``GET  /_sandbox/credentials``  the credentials each fake accepts
- ``GET|POST /_sandbox/faults``   per-system faults, e.g. ``{"shopify": {"error_rate": 0.1}}``;
  ``"*"`` applies to every system; ``{"clear": true}`` removes all faults; ``"seed"`` reseeds
- ``GET  /_sandbox/health``
- ``/_sandbox/<system>/…``        each system's own controls (inject a Shopify order, ship a DCL
  order, …), documented in that system's module

Bad input to any control route (malformed JSON, a body that is not an object, a missing or mistyped
field) answers 400 with a message naming the route and the problem, never a 500: the routes validate
what they can, and `BadInputGuard` turns what slips through (``KeyError``, ``ValueError``,
``TypeError``, ``AttributeError``, pydantic ``ValidationError``) into that 400.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from mienne_ops.sandbox.base import SystemSandbox
from mienne_ops.sandbox.catalog import Catalog, build_catalog
from mienne_ops.sandbox.faults import FaultBook, SystemFaults
from mienne_ops.sandbox.world import World

if TYPE_CHECKING:
    from mienne_ops.sandbox.traffic import TrafficSimulator


class SandboxHub:
    """Owns the systems and the world; implements the cross-system control plane."""

    def __init__(self, world: World, faults: FaultBook, systems: list[SystemSandbox]) -> None:
        self.world = world
        self.faults = faults
        self.systems = {system.name: system for system in systems}
        self.catalog: Catalog = build_catalog()
        self._traffic: TrafficSimulator | None = None

    def system(self, name: str) -> Any:
        return self.systems[name]

    def is_seeded(self) -> bool:
        return self.world.get("sandbox", "meta", "seeded") is not None

    def reset(self, seed: int | None = None) -> None:
        self.faults.clear(seed)
        with self.world.tx():
            for system in self.systems.values():
                system.reset(self.catalog)
            self.world.put("sandbox", "meta", "seeded", {"at": self.world.now().isoformat()})

    def state(self) -> dict[str, Any]:
        return {name: system.state() for name, system in self.systems.items()}

    def set_faults(self, body: dict[str, Any]) -> dict[str, Any]:
        for name, settings in body.items():
            if name not in ("clear", "seed") and not isinstance(settings, dict):
                raise BadInput(f"faults for {name!r} must be an object")
        if body.get("clear"):
            self.faults.clear()
        if "seed" in body:
            self.faults.seed(int(body["seed"]))
        for name, settings in body.items():
            if name in ("clear", "seed"):
                continue
            targets = list(self.systems) if name == "*" else [name]
            for target in targets:
                if target not in self.systems:
                    raise KeyError(target)
                self.faults.set(target, SystemFaults.model_validate(settings))
        return self.faults.snapshot()

    # -- traffic simulator ------------------------------------------------------------------------
    def start_traffic(self, **options: Any) -> None:
        from mienne_ops.sandbox.traffic import TrafficSimulator

        if self._traffic is None:
            self._traffic = TrafficSimulator(self, **options)
            self._traffic.start()

    def stop_traffic(self) -> None:
        if self._traffic is not None:
            self._traffic.stop()
            self._traffic = None

    # -- routes ---------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            Route("/reset", self._reset, methods=["POST"]),
            Route("/catalog", self._catalog, methods=["GET"]),
            Route("/state", self._state, methods=["GET"]),
            Route("/credentials", self._credentials, methods=["GET"]),
            Route("/faults", self._faults, methods=["GET", "POST"]),
            Route("/health", self._health, methods=["GET"]),
        ]
        for system in self.systems.values():
            extra = system.control_routes()
            if extra:
                routes.append(Mount(f"/{system.name}", routes=extra))
        return [Mount("", app=BadInputGuard(Router(routes=routes)))]

    async def _reset(self, request: Request) -> JSONResponse:
        body = await _json_body(request)
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise BadInput("seed must be an integer")
        self.reset(seed)
        return JSONResponse({"ok": True, "skus": len(self.catalog.skus)})

    def _catalog(self, request: Request) -> JSONResponse:
        return JSONResponse(self.catalog.to_json())

    def _state(self, request: Request) -> JSONResponse:
        return JSONResponse(self.state())

    def _credentials(self, request: Request) -> JSONResponse:
        return JSONResponse({name: s.credentials() for name, s in self.systems.items()})

    async def _faults(self, request: Request) -> JSONResponse:
        if request.method == "GET":
            return JSONResponse(self.faults.snapshot())
        try:
            return JSONResponse(self.set_faults(await _json_body(request)))
        except KeyError as error:
            return JSONResponse({"error": f"unknown system {error}"}, status_code=400)
        except ValidationError as error:
            errors = error.errors(include_url=False, include_context=False, include_input=False)
            return JSONResponse({"error": errors}, status_code=400)

    def _health(self, request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "systems": sorted(self.systems)})


class BadInput(ValueError):
    """A control-plane request the route cannot act on; answered 400 with this message."""


class BadInputGuard:
    """ASGI wrapper: bad input that reaches a control handler is a 400 with a message, not a 500."""

    # sqlite3.InterfaceError: a JSON object or list bound where the fake stores a number or text.
    CAUGHT = (
        BadInput,
        KeyError,
        ValueError,
        TypeError,
        AttributeError,
        ValidationError,
        sqlite3.InterfaceError,
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except self.CAUGHT as error:
            if started or scope["type"] != "http":
                raise
            response = JSONResponse({"error": describe_bad_input(scope, error)}, status_code=400)
            await response(scope, receive, send)


def describe_bad_input(scope: Scope, error: Exception) -> str:
    where = f"{scope.get('method', '')} /_sandbox{scope.get('path', '')}".strip()
    if isinstance(error, BadInput):
        detail = str(error)
    elif isinstance(error, json.JSONDecodeError):
        detail = f"the body is not valid JSON ({error.msg})"
    elif isinstance(error, KeyError):
        detail = f"missing field {error}"
    elif isinstance(error, ValidationError):
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
    else:
        detail = f"{type(error).__name__}: {error}"
    return f"bad input for {where}: {detail}"


async def _json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``); anything else is bad input."""
    raw = await request.body()
    if not raw:
        return {}
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object")
    return body
