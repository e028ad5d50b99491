"""bench/sensor_ticks.py runs end to end on a small ledger (2,000 orders, SQLite): every flow sensor
is evaluated in each state and the archive leaves only the live orders. It checks the script, not
its times (a benchmark; the figures are in deploy/README.md)."""

import importlib.util
import json
import os
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "sensor_ticks.py"
STATES = ["without 0009 indexes", "with 0009 indexes", "after archive"]


def load_bench(monkeypatch):
    """The script as a module (registered, as its dataclasses need)."""
    spec = importlib.util.spec_from_file_location("sensor_ticks", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_the_sensor_tick_benchmark_runs_on_two_thousand_orders(tmp_path, monkeypatch):
    bench = load_bench(monkeypatch)
    # The script points the environment at its own sandbox and state: give it all back afterwards.
    for variable in (
        *bench.LIVE_SWITCHES.values(),
        "MIENNE_LEDGER_URL",
        "MIENNE_SANDBOX_URL",
        "MIENNE_STATE_DIR",
    ):
        monkeypatch.setenv(variable, os.environ.get(variable, ""))
    output = tmp_path / "ticks.json"
    args = [
        "--orders",
        "2000",
        "--in-flight",
        "200",
        "--ticks",
        "1",
        "--backend",
        "sqlite",
        "--output",
        str(output),
    ]
    assert bench.main(args) == 0

    result = json.loads(output.read_text())["backends"]["sqlite"]
    states = result["states"]
    sensors = set(states["with 0009 indexes"]["sensors"])
    assert {
        "shopify_orders_sensor",
        "netsuite_dispatch_sensor",
        "dcl_shipments_sensor",
        "order_holds_sensor",
    } <= sensors
    assert all(set(states[state]["sensors"]) == sensors for state in STATES)
    assert result["rows_written"]["order_journeys"] == 2000
    # 200 in flight stay, plus the finished orders of the last 90 days (a quarter of the year).
    live = states["after archive"]["live_rows"]["order_journeys"]
    assert 200 < live < 700 and states["archive"]["moved"]["order_journeys"] == 2000 - live
