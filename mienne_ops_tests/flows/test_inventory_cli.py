"""`mienne-ops inventory sync|show` against the sandbox (same sync layer and ledger as the assets)."""

from __future__ import annotations

import re

import dagster as dg
from click.testing import CliRunner

from mienne_ops.cli import main
from mienne_ops.flows.inventory import SYNC_ASSETS
from mienne_ops.resources import LIVE_SWITCHES


def test_sync_then_show(sandbox, tmp_path, monkeypatch):
    for variable in LIVE_SWITCHES.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("MIENNE_SANDBOX_URL", sandbox.url)
    monkeypatch.setenv("MIENNE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("MIENNE_LEDGER_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(main, ["ledger", "upgrade"]).exit_code == 0  # as `make dev` / a deploy does
    home = tmp_path / "dagster_home"  # the instance `mienne-ops dev` would run
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    full = runner.invoke(main, ["inventory", "sync", "--location", "FR"])
    assert full.exit_code == 0, full.output
    assert "FR:" in full.output and "pushed" in full.output
    # The sync by hand shows in Dagster: the partition is materialized, as by a run.
    assert "recorded in Dagster" in full.output
    instance = dg.DagsterInstance.from_config(str(home))
    for asset in SYNC_ASSETS:
        assert instance.get_materialized_partitions(asset.key) == {"FR"}
    instance.dispose()
    again = runner.invoke(main, ["inventory", "sync", "--location", "FR", "--sku", "MN-SERUM-001"])
    assert again.exit_code == 0 and "0 pushed" in again.output
    kit = sandbox.hub.catalog.bundles[0]
    shown = runner.invoke(main, ["inventory", "show", kit.sku])
    assert shown.exit_code == 0, shown.output
    assert "available to sell" in shown.output and "bundle math" in shown.output
    assert kit.components[0].component_sku in shown.output and "last push" in shown.output
    assert runner.invoke(main, ["inventory", "show", "NOPE"]).exit_code != 0
    assert runner.invoke(main, ["inventory", "sync", "--location", "XX"]).exit_code != 0


def test_show_adds_a_kit_up_on_screen_and_calls_an_unsynced_warehouse_unknown(sandbox, tmp_path, monkeypatch):
    for variable in LIVE_SWITCHES.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("MIENNE_SANDBOX_URL", sandbox.url)
    monkeypatch.setenv("MIENNE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("MIENNE_LEDGER_URL", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "no_instance"))  # nothing recorded anywhere
    runner = CliRunner()
    assert runner.invoke(main, ["ledger", "upgrade"]).exit_code == 0
    assert runner.invoke(main, ["inventory", "sync", "--location", "FR"]).exit_code == 0  # LA never
    kit = sandbox.hub.catalog.bundles[0]
    shown = runner.invoke(main, ["inventory", "show", kit.sku])
    assert shown.exit_code == 0, shown.output
    fr, la = shown.output.split(f"{kit.sku} @ LA")[0], shown.output.split(f"{kit.sku} @ LA")[1]
    la_levels = la.split("bundle math")[0]
    assert re.search(r"netsuite\s+unknown", la_levels) and re.search(
        r"available to sell\s+unknown", la_levels
    )
    # available to sell = kits from sellable − kit buffer, and kits from sellable = the minimum over
    # the components' sellable // per kit printed in the bundle math.
    ats = int(re.search(r"available to sell\s+(\d+)", fr).group(1))
    from_sellable, buffer = map(int, re.search(r"= kits from sellable (\d+) − kit buffer (\d+)", fr).groups())
    assert ats == max(0, from_sellable - buffer)
    per_component = [
        int(n) for n in re.findall(r"FR: \d+ // \d+ = \d+, sellable \d+ // \d+ = (\d+)", shown.output)
    ]
    assert len(per_component) == len(kit.components) and min(per_component) == from_sellable
    from_stock = int(re.search(r"kits from stock\s+(\d+)", fr).group(1))
    stock_parts = [int(n) for n in re.findall(r"FR: \d+ // \d+ = (\d+), sellable", shown.output)]
    assert min(stock_parts) == from_stock
    assert "LA: unknown" in shown.output.split("bundle math")[1]
