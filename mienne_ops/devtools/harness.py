"""Drive the real Dagster definitions the way the daemon would, in process, against the sandbox.

`FlowDriver` evaluates each sensor with its stored cursor, de-duplicates run requests by run key
(as the sensor daemon does, forever and for every run status), and executes each requested run in
process against a test instance. As in the daemon's code server, a tick initializes only the
resources its sensor needs, afresh (clients and the ledger hold connections and rate-limit state);
only configuration (`CONFIG_ONLY_RESOURCES`) is built once per driver. Each run builds its own
resources, as any in-process run does. The webhook receiver runs over real HTTP too, so the
sandbox's webhook faults (drops, duplicates, reordering) reach it as they would in production.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import dagster as dg
import httpx
import uvicorn
from dagster._core.execution.resources_init import get_transitive_required_resource_keys

from mienne_ops.ledger import Ledger
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.server import free_port
from mienne_ops.webhooks.limits import ReceiverLimits, receiver_config
from mienne_ops.webhooks.receiver import create_receiver_app

#: The sensor of each order-to-cash flow (A import, B dispatch, C fulfilment).
FLOW_SENSORS = {"A": "shopify_orders_sensor", "B": "netsuite_dispatch_sensor", "C": "dcl_shipments_sensor"}
#: The three in flow order: A → B → C.
ORDER_TO_CASH_SENSORS = list(FLOW_SENSORS.values())
#: Resources that are configuration alone (no client, no connection, nothing that changes): a driver
#: builds each once and hands the same object to every tick. Building `BusinessRules` (Dagster
#: infers and validates the config schema of its many fields) was most of what a tick cost.
CONFIG_ONLY_RESOURCES = frozenset({"rules"})


class ReceiverServer:
    """The webhook receiver on 127.0.0.1 in a background thread."""

    def __init__(self, ledger: Ledger) -> None:
        self.port = free_port()
        app = create_receiver_app(
            ledger,
            credentials.SHOPIFY["api_secret"],
            recharge_secret=credentials.RECHARGE["client_secret"],
            gorgias_secret=credentials.GORGIAS["webhook_secret"],
            zendesk_secret=credentials.ZENDESK["webhook_secret"],
            shop_domain=credentials.SHOPIFY["shop_domain"],
        )
        self._server = uvicorn.Server(receiver_config(app, "127.0.0.1", self.port, ReceiverLimits()))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/shopify"

    @property
    def recharge_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/recharge"

    @property
    def zendesk_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/zendesk"

    @property
    def gorgias_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/gorgias"

    def __enter__(self) -> ReceiverServer:
        self._thread.start()
        deadline = time.monotonic() + 60  # a guard against a hang, generous for a busy CI box
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("receiver did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


class FlowDriver:
    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs = defs
        self.instance = instance
        self.repo = defs.get_repository_def()
        self.cursors: dict[str, str | None] = {}
        self.run_keys: set[str] = set()
        self.runs: list[dg.ExecuteInProcessResult] = []
        self._sensors: dict[str, tuple[dg.SensorDefinition, dict[str, dg.ResourceDefinition]]] = {}
        self._config: dict[str, dg.ResourceDefinition] = {}

    def sensor(self, name: str) -> tuple[dg.SensorDefinition, dict[str, dg.ResourceDefinition]]:
        """Sensor ``name`` and the resources its ticks are given: those it requires (and theirs),
        from the repository's top-level resources, as the daemon's code server picks them. Looked up
        once per driver; a tick initializes them afresh, but for `CONFIG_ONLY_RESOURCES`."""
        if name not in self._sensors:
            sensor = self.repo.get_sensor_def(name)
            top_level = self.repo.get_top_level_resources()
            needed = get_transitive_required_resource_keys(sensor.required_resource_keys, top_level)
            resources = {key: top_level[key] for key in needed}
            for key in needed & CONFIG_ONLY_RESOURCES:
                resources[key] = self._built_once(key, top_level[key])
            self._sensors[name] = (sensor, resources)
        return self._sensors[name]

    def _built_once(self, key: str, definition: dg.ResourceDefinition) -> dg.ResourceDefinition:
        """``definition`` initialized once, as a resource that hands that same object to every tick."""
        if key not in self._config:
            with dg.build_resources({key: definition}, instance=self.instance) as built:
                self._config[key] = dg.ResourceDefinition.hardcoded_resource(getattr(built, key))
        return self._config[key]

    def tick(self, sensor_name: str) -> int:
        """Evaluate one sensor once and execute the runs it requests; return how many ran."""
        sensor, resources = self.sensor(sensor_name)
        with dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursors.get(sensor_name),
            sensor_name=sensor_name,
            resources=resources,
            repository_def=self.repo,
        ) as context:
            data = sensor.evaluate_tick(context)
        self.cursors[sensor_name] = data.cursor
        launched = 0
        for request in data.run_requests or []:
            run_key = request.run_key or ""  # every sensor here keys its requests
            if run_key in self.run_keys:
                continue
            self.run_keys.add(run_key)
            job = self.repo.get_job(request.job_name or sensor.job.name)
            result = job.execute_in_process(
                run_config=request.run_config,
                instance=self.instance,
                tags={**request.tags, "dagster/run_key": run_key},
                raise_on_error=False,
            )
            self.runs.append(result)
            launched += 1
        return launched

    def settle(self, sensors: list[str], *, rounds: int = 8, until=None) -> None:
        """Tick every sensor in turn until nothing more is launched (or ``until()`` holds)."""
        for _ in range(rounds):
            launched = sum(self.tick(name) for name in sensors)
            if until is not None and until():
                return
            if launched == 0 and until is None:
                return


def sandbox_state(url: str) -> dict[str, Any]:
    """Every system's records as the sandbox reports them (`GET /_sandbox/state`)."""
    return httpx.get(f"{url}/_sandbox/state", timeout=60).json()
