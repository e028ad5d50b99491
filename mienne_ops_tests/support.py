"""Helpers shared by test modules (fixtures that need parameters live here, not in conftest)."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest

from mienne_ops.business_rules import BusinessRules
from mienne_ops.ledger import Ledger
from mienne_ops.ledger.migrate import upgrade_ledger
from mienne_ops.ledger.resource import LedgerResource
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.server import SandboxServer


def new_ledger(url: str) -> Ledger:
    """A ledger migrated to the newest schema, as `mienne-ops ledger upgrade` leaves it."""
    upgrade_ledger(url)
    return Ledger(url)


@contextmanager
def ledger_asset_env(tmp_path: Path) -> Iterator[dict]:
    """What an asset that reads the ledger is materialized with in a test: a migrated SQLite ledger
    (``ledger``), the resources it is read through with default rules (``resources``, replace
    ``rules`` to try others) and a throw-away Dagster ``instance``."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = new_ledger(url)
    resources = {"ledger": LedgerResource(url=url), "rules": BusinessRules()}
    with dg.instance_for_test() as instance:
        yield {"ledger": ledger, "resources": resources, "instance": instance}
    ledger.dispose()


def materialize_asset(asset: dg.AssetsDefinition, env: dict) -> tuple[dict, dict]:
    """Materialize ``asset`` in a `ledger_asset_env` (it must succeed): the metadata of its one
    materialization and its checks' evaluations by check name."""
    result = dg.materialize([asset], resources=env["resources"], instance=env["instance"])
    assert result.success
    (event,) = result.get_asset_materialization_events()
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    return event.materialization.metadata, checks


def single_system_server(system: str):
    """A module-scoped fixture: one system's fake alone over real HTTP (for that fake's own tests).

    Use as ``server = single_system_server("dcl")`` at a test module's top level.
    """

    @pytest.fixture(scope="module")
    def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
        db = tmp_path_factory.mktemp(system) / "world.db"
        with SandboxServer(db, modules=(f"mienne_ops.sandbox.{system}",)) as running:
            yield running

    return server


def dcl_order(
    number: str, lines: list[dict] | None = None, *, carrier: str = "FEDEX", **address: str
) -> dict:
    """An order for DCL's batch API: the sandbox account, ground service, a Toronto address (any of its
    fields overridden by keyword) and ``lines`` (one unit of a seed item when not given)."""
    return {
        "order_number": number,
        "account_number": credentials.DCL["account_number"],
        "freight_account": credentials.DCL["freight_account"],
        "shipping_carrier": carrier,
        "shipping_service": "GROUND",
        "shipping_address": {
            "attention": "Test Person",
            "address1": "1 Main St",
            "city": "Toronto",
            "state_province": "ON",
            "postal_code": "M5V 2T6",
            "country_code": "CA",
            **address,
        },
        "lines": lines or [{"line_number": 1, "item_number": "MN-CREAM-002", "quantity": 1}],
    }
