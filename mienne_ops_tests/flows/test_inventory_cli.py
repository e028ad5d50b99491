"""`mienne-ops inventory sync|show` against the sandbox (same sync layer and ledger as the assets)."""

from __future__ import annotations

from click.testing import CliRunner

from mienne_ops.cli import main
from mienne_ops.resources import LIVE_SWITCHES


def test_sync_then_show(sandbox, tmp_path, monkeypatch):
    for variable in LIVE_SWITCHES.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("MIENNE_SANDBOX_URL", sandbox.url)
    monkeypatch.setenv("MIENNE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("MIENNE_LEDGER_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(main, ["ledger", "upgrade"]).exit_code == 0  # as `make dev` / a deploy does
    full = runner.invoke(main, ["inventory", "sync", "--location", "FR"])
    assert full.exit_code == 0, full.output
    assert "FR:" in full.output and "pushed" in full.output
    again = runner.invoke(main, ["inventory", "sync", "--location", "FR", "--sku", "MN-SERUM-001"])
    assert again.exit_code == 0 and "0 pushed" in again.output
    kit = sandbox.hub.catalog.bundles[0]
    shown = runner.invoke(main, ["inventory", "show", kit.sku])
    assert shown.exit_code == 0, shown.output
    assert "available to sell" in shown.output and "bundle math" in shown.output
    assert kit.components[0].component_sku in shown.output and "last push" in shown.output
    assert runner.invoke(main, ["inventory", "show", "NOPE"]).exit_code != 0
    assert runner.invoke(main, ["inventory", "sync", "--location", "XX"]).exit_code != 0
