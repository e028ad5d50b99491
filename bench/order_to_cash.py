"""Order-to-cash benchmark: N orders through flows A -> B -> C against the sandbox, with real limits.

What it runs: the sandbox in this process over real HTTP, with an added latency on every API call
and the vendors' limits (Shopify Standard plan 100 cost points/s with a 2,000-point bucket, NetSuite
5 concurrent requests, DCL 5 requests/s). N orders are placed in Shopify; the real Dagster
definitions are driven as the daemon would (`mienne_ops.devtools.harness.FlowDriver`: sensor
ticks, runs executed in process): flow A (the reconciliation poll finds the orders; no webhook
receiver), flow B, then every DCL order is shipped (every ``--split-every``-th order with 2+ lines
in two shipments), then flow C.

What it measures, in one run: wall time and orders/min per flow and end to end, API calls per order
per system and Shopify cost points per order (`mienne_ops.integrations.http.STATS`), peak memory,
and the ratio of the achieved throughput to the bound the limits allow (see `flow_bound`). It ends
with an exactly-once check on the state every system reports, prints a table and writes
``bench/results/order_to_cash.json``.

    .venv/bin/python bench/order_to_cash.py                              # 1,000 orders, 100 ms
    .venv/bin/python bench/order_to_cash.py --orders 50 --latency-ms 20  # about a minute
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import httpx

from mienne_ops import settings as mienne_settings
from mienne_ops.business_rules import BusinessRules
from mienne_ops.definitions import build_definitions
from mienne_ops.devtools.harness import FLOW_SENSORS, FlowDriver, sandbox_state
from mienne_ops.integrations.http import STATS
from mienne_ops.ledger import Ledger
from mienne_ops.ledger.migrate import upgrade_ledger
from mienne_ops.ledger.store import ExceptionStatus
from mienne_ops.resources import LIVE_SWITCHES, build_resources, netsuite_resource
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops.sandbox.server import SandboxServer

SYSTEMS = ("shopify", "netsuite", "dcl", "stateset")
RESULTS = Path(__file__).resolve().parent / "results" / "order_to_cash.json"


# -- settings ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    orders: int
    latency_ms: float
    parallel: int
    orders_per_run: int
    dispatch_batch_size: int
    shopify_restore_rate: float
    shopify_bucket: float
    netsuite_concurrency: int
    netsuite_client_concurrency: int | None
    dcl_rps: float
    stateset_rps: float
    split_every: int
    seed: int
    tracemalloc: bool
    output: Path


def parse_args(argv: list[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--orders", type=int, default=1000, help="orders to place (default 1000)")
    add("--latency-ms", type=float, default=100, help="latency added to every API call (default 100)")
    add("--parallel", type=int, default=4, help="BusinessRules.parallel_records (default 4)")
    add("--orders-per-run", type=int, default=250, help="BusinessRules.orders_per_run (A and C)")
    add("--dispatch-batch-size", type=int, default=250, help="BusinessRules.dispatch_batch_size (B)")
    add("--shopify-restore-rate", type=float, default=100, help="cost points/s (Standard plan: 100)")
    add("--shopify-bucket", type=float, default=2000, help="bucket size in points (Standard: 2000)")
    add("--netsuite-concurrency", type=int, default=5, help="account concurrency limit (default 5)")
    add(
        "--netsuite-client-concurrency",
        type=int,
        default=None,
        help="our client's own cap (default: the resource's default, one slot below the account's)",
    )
    add("--dcl-rps", type=float, default=5, help="DCL requests/s per credential (default 5)")
    add("--stateset-rps", type=float, default=0, help="StateSet requests/s (default 0 = unlimited)")
    add("--split-every", type=int, default=10, help="ship every Nth order in two shipments (0: never)")
    add("--seed", type=int, default=2026)
    add("--tracemalloc", action="store_true", help="also report Python's allocation peak (slower)")
    add("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    return Settings(**{k: v for k, v in vars(args).items()})


# -- measurement ------------------------------------------------------------------------------------
@dataclass
class Phase:
    """One measured step: wall time, API calls (per system and operation), cost points, retries."""

    name: str
    seconds: float = 0.0
    calls: dict[str, float] = field(default_factory=dict)
    retries: dict[str, float] = field(default_factory=dict)
    shopify_cost: float = 0.0
    runs: int = 0
    failed_runs: int = 0
    step_retries: int = 0
    peak_rss_mb: float = 0.0

    def system_calls(self, system: str) -> float:
        return self.calls.get(system, 0)


def _diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def peak_rss_mb() -> float:
    """The process's resident-set high-water mark (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if platform.system() == "Darwin" else peak / 1024


class Meter:
    def __init__(self, driver: FlowDriver) -> None:
        self.driver = driver
        self.phases: list[Phase] = []

    def measure(self, name: str, action) -> Phase:
        before = STATS.snapshot()
        runs_before = len(self.driver.runs)
        started = time.perf_counter()
        action()
        phase = Phase(name, seconds=time.perf_counter() - started)
        after = STATS.snapshot()
        phase.calls = _diff(after["calls"], before["calls"])
        phase.retries = _diff(after["retries"], before["retries"])
        phase.shopify_cost = after["units"].get("shopify:cost", 0) - before["units"].get("shopify:cost", 0)
        new_runs = self.driver.runs[runs_before:]
        phase.runs = len(new_runs)
        phase.failed_runs = sum(1 for r in new_runs if not r.success)
        # A batch with records left "retrying" fails its step; Dagster re-executes it (RetryPolicy).
        phase.step_retries = sum(
            1 for r in new_runs for e in r.all_events if e.event_type_value == "STEP_RESTARTED"
        )
        phase.peak_rss_mb = peak_rss_mb()
        self.phases.append(phase)
        log(
            f"{name}: {phase.seconds:.1f}s, {phase.runs} run(s) ({phase.failed_runs} failed, "
            f"{phase.step_retries} step re-executions), "
            f"calls { ({s: int(phase.system_calls(s)) for s in SYSTEMS}) }"
        )
        return phase


# -- the bound --------------------------------------------------------------------------------------
@dataclass
class SystemBound:
    system: str
    demand_per_order: float  # calls (cost points for Shopify) per order in this flow
    capacity_per_second: float  # calls/s (points/s for Shopify) the limits allow
    orders_per_minute: float | None  # None: this flow does not use the system
    basis: str


def capacities(s: Settings) -> dict[str, tuple[float, str]]:
    """What each system's limits allow per second, and how that number was made."""
    latency = s.latency_ms / 1000
    unbounded = float("inf")
    netsuite = s.netsuite_concurrency / latency if latency else unbounded
    if s.stateset_rps:
        stateset, stateset_basis = s.stateset_rps, f"rate limit {s.stateset_rps:g} req/s"
    else:
        stateset = s.parallel / latency if latency else unbounded
        stateset_basis = f"no limit: {s.parallel} workers / {s.latency_ms:g} ms"
    return {
        "shopify": (s.shopify_restore_rate, f"restore rate {s.shopify_restore_rate:g} points/s"),
        "netsuite": (netsuite, f"{s.netsuite_concurrency} concurrent / {s.latency_ms:g} ms"),
        "dcl": (s.dcl_rps, f"{s.dcl_rps:g} req/s"),
        "stateset": (stateset, stateset_basis),
    }


def flow_bound(phase: Phase, orders: int, s: Settings) -> list[SystemBound]:
    """Per system: capacity / demand per order, in orders per minute.

    The flow's bound is the minimum over the systems it uses. Shopify's demand is the ACTUAL cost
    (the bucket refunds requested - actual); NetSuite's capacity treats the injected latency as the
    whole service time, so it is an upper bound on what 5 concurrent requests can do.
    """
    bounds = []
    for system, (capacity, basis) in capacities(s).items():
        used = phase.shopify_cost if system == "shopify" else phase.system_calls(system)
        demand = used / orders
        per_minute = capacity / demand * 60 if demand else None
        bounds.append(SystemBound(system, demand, capacity, per_minute, basis))
    return bounds


def binding(bounds: list[SystemBound]) -> SystemBound | None:
    used = [b for b in bounds if b.orders_per_minute is not None]
    return min(used, key=lambda b: b.orders_per_minute or 0) if used else None


def serial(rates: list[float]) -> float:
    """Throughput of steps run one after the other: the harmonic combination of their rates."""
    return 1 / sum(1 / r for r in rates) if rates and all(r > 0 for r in rates) else 0.0


# -- the world --------------------------------------------------------------------------------------
def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def configure_sandbox(url: str, s: Settings) -> None:
    post = lambda path, body: httpx.post(f"{url}{path}", json=body, timeout=30).raise_for_status()  # noqa: E731
    post("/_sandbox/reset", {})
    post("/_sandbox/faults", {"*": {"latency_ms": s.latency_ms}})
    post(
        "/_sandbox/shopify/limits",
        {"restore_rate": s.shopify_restore_rate, "bucket_size": s.shopify_bucket},
    )
    post("/_sandbox/netsuite/limits", {"concurrency": s.netsuite_concurrency})
    post("/_sandbox/dcl/limits", {"requests_per_second": s.dcl_rps})
    if s.stateset_rps:
        post("/_sandbox/stateset/limits", {"requests_per_second": s.stateset_rps})


def in_parallel(function, items: list, workers: int = 8) -> list:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


def place_orders(url: str, catalog, s: Settings) -> list[str]:
    rng = random.Random(s.seed)
    payloads = [build_order(catalog, rng) for _ in range(s.orders)]
    with httpx.Client(base_url=url, timeout=60) as client:

        def place(payload: dict) -> str:
            response = client.post("/_sandbox/shopify/orders", json=payload)
            response.raise_for_status()
            return str(response.json()["id"])

        return in_parallel(place, payloads)


def ship_everything(url: str, s: Settings) -> int:
    """Ship every DCL order (some in two shipments); return the number of shipments."""
    orders = sorted(sandbox_state(url)["dcl"]["orders"], key=lambda o: o["order_number"])
    with httpx.Client(base_url=url, timeout=60) as client:

        def ship(indexed: tuple[int, dict]) -> int:
            index, order = indexed
            path = f"/_sandbox/dcl/orders/{order['order_number']}/ship"
            lines = order["lines"]
            shipments = 0
            if s.split_every and index % s.split_every == 0 and len(lines) > 1:
                first = {"line_number": lines[0]["line_number"], "quantity": lines[0]["quantity"]}
                client.post(path, json={"lines": [first]}).raise_for_status()
                shipments += 1
            client.post(path, json={}).raise_for_status()
            return shipments + 1

        return sum(in_parallel(ship, list(enumerate(orders))))


# -- exactly once -----------------------------------------------------------------------------------
def exactly_once_problems(state: dict, placed: list[str]) -> list[str]:
    """Every order: one sales order, one DCL order, one item fulfillment and Shopify fulfillment per
    shipment, one StateSet order (shipped); nothing extra anywhere."""
    problems: list[str] = []

    def expect(what: str, counter: Counter, keys: set[str]) -> None:
        missing = keys - set(counter)
        extra = set(counter) - keys
        doubled = sorted(k for k, c in counter.items() if c > 1)
        if missing or extra or doubled:
            problems.append(
                f"{what}: {len(missing)} missing, {len(extra)} unexpected, {len(doubled)} duplicated"
                f" (e.g. {sorted(missing)[:3]} {sorted(extra)[:3]} {doubled[:3]})"
            )

    external_ids = {f"shopify-order-{key}" for key in placed}
    sales_orders = state["netsuite"]["sales_orders"]
    expect("NetSuite sales orders", Counter(so["externalId"] for so in sales_orders), external_ids)
    tran_ids = {str(so["tranId"]) for so in sales_orders if so["externalId"] in external_ids}
    dcl_orders = state["dcl"]["orders"]
    expect("DCL orders", Counter(str(o["order_number"]) for o in dcl_orders), tran_ids)

    shipments = {o["order_number"]: len(o.get("shipments") or []) for o in dcl_orders}
    unshipped = [n for n, count in shipments.items() if not count]
    if unshipped:
        problems.append(f"{len(unshipped)} DCL order(s) without a shipment")
    fulfillments = Counter(f["externalId"] for f in state["netsuite"]["item_fulfillments"])
    if len(fulfillments) != sum(shipments.values()) or any(c > 1 for c in fulfillments.values()):
        problems.append(
            f"item fulfillments: {sum(fulfillments.values())} for {sum(shipments.values())} shipments"
        )

    so_by_order = {so["externalId"].removeprefix("shopify-order-"): str(so["tranId"]) for so in sales_orders}
    shopify = {str(o["id"]): o for o in state["shopify"]["orders"]}
    wrong = [
        key
        for key in placed
        if len(shopify[key].get("fulfillments") or []) != shipments.get(so_by_order.get(key, ""), -1)
    ]
    if wrong:
        problems.append(
            f"{len(wrong)} Shopify order(s) whose fulfillments != DCL shipments, e.g. {wrong[:3]}"
        )

    stateset = state["stateset"]["orders"]
    expect("StateSet orders", Counter(o["data"]["metadata"]["external_id"] for o in stateset), external_ids)
    not_shipped = [o["id"] for o in stateset if o["status"] != "SHIPPED"]
    if not_shipped:
        problems.append(f"{len(not_shipped)} StateSet order(s) not SHIPPED")
    return problems


# -- the run ----------------------------------------------------------------------------------------
def quiet_logs() -> None:
    """Dagster logs every step event at INFO and the sync layer warns per retried record: keep the
    console to the benchmark's own lines (failures are still counted and reported)."""
    for name in ("dagster", "mienne_ops", "httpx", "uvicorn", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("DAGSTER_CLI_API_GRPC_LOG_LEVEL", "ERROR")


def isolate_environment(state_dir: Path, url: str) -> None:
    """Point every resource at the sandbox: never at a live system, never at a real ledger."""
    for variable in (*LIVE_SWITCHES.values(), "MIENNE_LEDGER_URL"):
        os.environ.pop(variable, None)
    os.environ["MIENNE_SANDBOX_URL"] = url
    os.environ["MIENNE_STATE_DIR"] = str(state_dir)


def build_stack(s: Settings) -> dict[str, Any]:
    client_settings = {"retry_base_delay_seconds": 0.05, "max_attempts": 8}
    resources = build_resources(**client_settings)
    if s.netsuite_client_concurrency:
        resources["netsuite"] = netsuite_resource(
            **client_settings, max_concurrency=s.netsuite_client_concurrency
        )
    resources["rules"] = BusinessRules(
        reconcile_every_seconds=0,  # poll on every tick: the orders arrive without webhooks
        hold_edit_window_minutes=0,  # throughput, not the 30-minute edit window, is measured
        orders_per_run=s.orders_per_run,
        parallel_records=s.parallel,
        dispatch_batch_size=s.dispatch_batch_size,
    )
    return resources


def run(s: Settings) -> dict[str, Any]:
    quiet_logs()
    if s.tracemalloc:
        tracemalloc.start()
    s.output.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        # Dagster's console logger writes every step event to stderr: keep them in a file.
        run_log = stack.enter_context(open(s.output.with_suffix(".dagster.log"), "w"))
        stack.enter_context(contextlib.redirect_stderr(run_log))
        log(f"Dagster run logs: {s.output.with_suffix('.dagster.log')}")
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mienne-bench-")))
        sandbox = stack.enter_context(SandboxServer(tmp / "world.db"))
        isolate_environment(tmp / "state", sandbox.url)
        configure_sandbox(sandbox.url, s)
        resources = build_stack(s)
        netsuite_client_cap = resources["netsuite"].max_concurrency
        upgrade_ledger(mienne_settings.ledger_url())
        ledger = Ledger(mienne_settings.ledger_url())
        stack.callback(ledger.dispose)
        instance = stack.enter_context(dg.instance_for_test())
        driver = FlowDriver(build_definitions(resources), instance)
        meter = Meter(driver)

        log(f"placing {s.orders} orders in Shopify")
        placed: list[str] = []
        meter.measure(
            "place orders", lambda: placed.extend(place_orders(sandbox.url, sandbox.hub.catalog, s))
        )
        STATS.reset()
        flow_a = meter.measure("flow A", lambda: driver.settle([FLOW_SENSORS["A"]]))
        flow_b = meter.measure("flow B", lambda: driver.settle([FLOW_SENSORS["B"]]))
        shipped: list[int] = []
        meter.measure("ship at DCL", lambda: shipped.append(ship_everything(sandbox.url, s)))
        flow_c = meter.measure("flow C", lambda: driver.settle([FLOW_SENSORS["C"]]))
        totals = STATS.snapshot()

        state = sandbox_state(sandbox.url)
        problems = exactly_once_problems(state, placed)
        exceptions = [
            (e.flow, e.key, e.status, e.reason)
            for e in ledger.exceptions(statuses=[ExceptionStatus.OPEN, ExceptionStatus.RETRYING])
        ]
        if exceptions:
            problems.append(f"{len(exceptions)} open/retrying exception(s), e.g. {exceptions[:3]}")
        traced_peak = tracemalloc.get_traced_memory()[1] / 2**20 if s.tracemalloc else None
        flows = [flow_a, flow_b, flow_c]
        return report(s, flows, meter.phases, totals, shipped[0], problems, netsuite_client_cap, traced_peak)
    raise AssertionError("unreachable")  # pragma: no cover


def report(
    s: Settings,
    flows: list[Phase],
    phases: list[Phase],
    totals: dict,
    shipments: int,
    problems: list[str],
    netsuite_client_cap: int,
    traced_peak_mb: float | None,
) -> dict[str, Any]:
    n = s.orders
    per_flow = []
    flow_bounds: list[float] = []
    for flow, name in zip(flows, "ABC", strict=True):
        bounds = flow_bound(flow, n, s)
        bound = binding(bounds)
        bound_rate = bound.orders_per_minute if bound else None
        achieved = n / flow.seconds * 60
        if bound_rate:
            flow_bounds.append(bound_rate)
        per_flow.append(
            {
                "flow": name,
                "seconds": round(flow.seconds, 2),
                "orders_per_minute": round(achieved, 1),
                "runs": flow.runs,
                "failed_runs": flow.failed_runs,
                "step_retries": flow.step_retries,
                "calls_per_order": {sys_: round(flow.system_calls(sys_) / n, 3) for sys_ in SYSTEMS},
                "shopify_cost_per_order": round(flow.shopify_cost / n, 2),
                "retries_per_order": {k: round(v / n, 3) for k, v in flow.retries.items()},
                "calls_by_operation": {k: v for k, v in sorted(flow.calls.items()) if ":" in k},
                "bounds": [asdict(b) for b in bounds],
                "bound_orders_per_minute": round(bound_rate, 1) if bound_rate else None,
                "binding_system": bound.system if bound else None,
                "ratio": round(achieved / bound_rate, 3) if bound_rate else None,
            }
        )
    seconds = sum(f.seconds for f in flows)
    achieved = n / seconds * 60
    bound_e2e = serial(flow_bounds)
    result = {
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(s).items()},
        "netsuite_client_concurrency": netsuite_client_cap,
        "flows": per_flow,
        "phases": {p.name: round(p.seconds, 2) for p in phases},
        "shipments": shipments,
        "end_to_end": {
            "seconds": round(seconds, 2),
            "orders_per_minute": round(achieved, 1),
            "bound_orders_per_minute": round(bound_e2e, 1),
            "ratio": round(achieved / bound_e2e, 3) if bound_e2e else None,
            "calls_per_order": {sys_: round(totals["calls"].get(sys_, 0) / n, 3) for sys_ in SYSTEMS},
            "shopify_cost_per_order": round(totals["units"].get("shopify:cost", 0) / n, 2),
            "retries": totals["retries"],
        },
        "memory": {"peak_rss_mb": round(peak_rss_mb(), 1), "tracemalloc_peak_mb": traced_peak_mb},
        "exactly_once": problems or "OK",
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    return result


# -- output -----------------------------------------------------------------------------------------
def fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def print_table(r: dict[str, Any]) -> None:
    s = r["settings"]
    e2e = r["end_to_end"]
    print()
    print(
        f"order to cash: {s['orders']} orders, {s['latency_ms']:g} ms latency per call, "
        f"parallel_records {s['parallel']}, orders_per_run {s['orders_per_run']}, "
        f"dispatch_batch_size {s['dispatch_batch_size']}, {r['shipments']} shipments"
    )
    print(
        f"limits: Shopify {s['shopify_restore_rate']:g} points/s (bucket {s['shopify_bucket']:g}), "
        f"NetSuite {s['netsuite_concurrency']} concurrent (our client caps at "
        f"{r['netsuite_client_concurrency']}), DCL {s['dcl_rps']:g} req/s, StateSet "
        + (f"{s['stateset_rps']:g} req/s" if s["stateset_rps"] else "unlimited")
    )
    print()
    header = f"{'flow':<6}{'seconds':>9}{'orders/min':>12}{'bound/min':>11}{'ratio':>7}  {'binds':<9}"
    header += "".join(f"{name + ' calls':>15}" for name in SYSTEMS) + f"{'cost pts':>10}"
    print(header)
    print("-" * len(header))
    for f in r["flows"]:
        ratio = f"{f['ratio']:.2f}" if f["ratio"] is not None else "-"
        row = f"{f['flow']:<6}{f['seconds']:>9.1f}{fmt_rate(f['orders_per_minute']):>12}"
        row += f"{fmt_rate(f['bound_orders_per_minute']):>11}{ratio:>7}  {f['binding_system'] or '-':<9}"
        row += "".join(f"{f['calls_per_order'][name]:>15.2f}" for name in SYSTEMS)
        print(row + f"{f['shopify_cost_per_order']:>10.1f}")
    print("-" * len(header))
    binds = min(r["flows"], key=lambda f: f["bound_orders_per_minute"] or float("inf"))
    row = f"{'total':<6}{e2e['seconds']:>9.1f}{fmt_rate(e2e['orders_per_minute']):>12}"
    binds_label = f"{binds['flow']}:{binds['binding_system']}"
    row += f"{fmt_rate(e2e['bound_orders_per_minute']):>11}{e2e['ratio'] or 0:>7.2f}  {binds_label:<9}"
    row += "".join(f"{e2e['calls_per_order'][name]:>15.2f}" for name in SYSTEMS)
    print(row + f"{e2e['shopify_cost_per_order']:>10.1f}")
    print("(calls and Shopify cost points are per order)")
    print()
    print("bound per flow = min over systems of capacity / demand per order (orders/min):")
    for f in r["flows"]:
        parts = [
            f"{b['system']} {b['basis']} / {b['demand_per_order']:.2f} = {fmt_rate(b['orders_per_minute'])}"
            for b in f["bounds"]
            if b["orders_per_minute"] is not None
        ]
        print(f"  {f['flow']}: " + "; ".join(parts))
    print(
        "  total = serial combination 1 / (1/A + 1/B + 1/C): the flows run one after another here;"
        " shipping at DCL (the warehouse, not us) is timed apart."
    )
    print(f"  Shopify demand is ACTUAL cost points; the {s['shopify_bucket']:g}-point starting bucket is")
    print("  not counted, so a short run can beat Shopify's steady-state bound.")
    print()
    print("calls/order count every HTTP attempt; of them, retried attempts per order (429/THROTTLED/5xx):")
    for f in r["flows"]:
        retried = ", ".join(f"{k} {v:.2f}" for k, v in f["retries_per_order"].items()) or "none"
        print(
            f"  {f['flow']}: {retried}; {f['runs']} run(s), {f['failed_runs']} failed,"
            f" {f['step_retries']} step re-executions"
        )
    others = ", ".join(f"{k} {v:.1f}s" for k, v in r["phases"].items() if not k.startswith("flow"))
    print(f"not timed in the flows: {others}")
    mem = r["memory"]
    traced = f", tracemalloc peak {mem['tracemalloc_peak_mb']:.0f} MiB" if mem["tracemalloc_peak_mb"] else ""
    print(f"peak memory: RSS {mem['peak_rss_mb']:.0f} MiB (this process, sandbox included){traced}")
    if r["exactly_once"] == "OK":
        print("exactly-once: OK")
    else:
        print("exactly-once: FAILED")
        for problem in r["exactly_once"]:
            print(f"  - {problem}")


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    result = run(settings)
    print_table(result)
    settings.output.parent.mkdir(parents=True, exist_ok=True)
    settings.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nresults: {settings.output}")
    return 0 if result["exactly_once"] == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
