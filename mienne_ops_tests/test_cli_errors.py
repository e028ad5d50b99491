"""An unreachable ledger is one clear line from the CLI, not a driver traceback (issue 13)."""

from __future__ import annotations

from click.testing import CliRunner

from mienne_ops.cli import main
from mienne_ops.sandbox.server import free_port


def test_a_dead_postgresql_port_is_one_line_and_exit_1(monkeypatch):
    url = f"postgresql+psycopg2://ops:hunter2@127.0.0.1:{free_port()}/ledger"
    monkeypatch.setenv("MIENNE_LEDGER_URL", url)
    for command in (["order", "status", "#1001"], ["exceptions", "list"], ["ledger", "purge"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1, (command, result.output)
        assert isinstance(result.exception, SystemExit)  # click's handled error, not a crash
        [line] = result.output.strip().splitlines()
        assert line.startswith("Error: the ledger at postgresql+psycopg2://ops:***@127.0.0.1:")
        assert "Connection refused" in line or "connection" in line.lower()
        assert "hunter2" not in result.output and "Traceback" not in result.output


def test_a_ledger_never_migrated_says_what_to_run(monkeypatch, tmp_path):
    monkeypatch.setenv("MIENNE_LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    result = CliRunner().invoke(main, ["order", "status", "#1001"])
    assert result.exit_code == 1 and "mienne-ops ledger upgrade" in result.output
    assert len(result.output.strip().splitlines()) == 1
