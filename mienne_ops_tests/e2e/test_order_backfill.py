"""`mienne-ops orders backfill --since`: the orders of an outage, found by one bulk operation and
imported through flow A's normal path exactly once (a second run creates nothing)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from click.testing import CliRunner

from mienne_ops import settings
from mienne_ops.cli import main
from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.ledger import Ledger
from mienne_ops.resources import LIVE_SWITCHES
from mienne_ops.sandbox.order_factory import build_order


@pytest.fixture
def env(sandbox, state_dir, monkeypatch):
    for variable in LIVE_SWITCHES.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("MIENNE_SANDBOX_URL", sandbox.url)
    return sandbox


def place(sandbox, rng: random.Random, **bad) -> dict:
    order = build_order(sandbox.hub.catalog, rng, **bad)
    response = httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=order)
    assert response.status_code == 201
    return response.json()


def backfill(since: datetime):
    return CliRunner().invoke(main, ["orders", "backfill", "--since", since.strftime("%Y-%m-%d")])


def written(sandbox) -> tuple[int, int, list[str]]:
    state = sandbox_state(sandbox.url)
    imported = [o["id"] for o in state["shopify"]["orders"] if "SENT_TO_NS" in o["tags"]]
    return (
        len(state["netsuite"]["sales_orders"]),
        len(state["stateset"]["orders"]),
        sorted(map(str, imported)),
    )


def test_a_backfill_imports_the_missed_orders_once(env):
    sandbox, rng = env, random.Random(21)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    early = place(sandbox, rng)
    first = backfill(yesterday)
    assert first.exit_code == 0, first.output
    assert "1 order(s)" in first.output and "done 1" in first.output
    assert written(sandbox) == (1, 1, [str(early["id"])])

    # The outage: two good orders and one with a SKU NetSuite does not know, no webhook, no poll.
    missed = [place(sandbox, rng), place(sandbox, rng)]
    bad = place(sandbox, rng, bad="unknown_sku")
    second = backfill(yesterday)
    assert second.exit_code == 1, second.output  # a quarantined order is reported, not dropped
    assert "3 order(s)" in second.output and "done 2" in second.output and "quarantined 1" in second.output
    assert f"{bad['id']} [quarantined] unknown_sku" in second.output
    imported = sorted(str(o["id"]) for o in [early, *missed])
    assert written(sandbox) == (3, 3, imported)
    # Imported as flow A imports: with its holds (the rules' 30-minute edit window, just placed).
    ledger = Ledger(settings.ledger_url())
    assert sorted(h.shopify_order_id for h in ledger.active_holds() if h.reason == "edit_window") == imported
    ledger.dispose()

    again = backfill(yesterday)
    assert again.exit_code == 0, again.output
    assert "1 order(s)" in again.output and "nothing to do; held 1" in again.output
    assert written(sandbox) == (3, 3, imported)  # nothing new anywhere

    assert "0 order(s)" in backfill(datetime.now(UTC) + timedelta(days=2)).output
    operations = sandbox_state(sandbox.url)["shopify"]["bulk_operations"]
    assert len(operations) == 4 and {op["status"] for op in operations} == {"COMPLETED"}
    assert all("-tag:SENT_TO_NS" in op["query"] for op in operations)


def test_a_backfill_blocked_by_a_running_bulk_query_says_so(env, monkeypatch):
    from mienne_ops.integrations import shopify_bulk

    sandbox = env
    # A short polling budget: the held operation never finishes, so the backfill must give up.
    monkeypatch.setattr(
        shopify_bulk.BulkQueries, "bulk_polling", shopify_bulk.BulkPolling(0.01, 0.01, max_wait=0.05)
    )
    httpx.post(f"{sandbox.url}/_sandbox/shopify/bulk_operations", json={"hold": True}).raise_for_status()
    query = "{ orders { nodes { id } } }"
    mutation = "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id } } }"
    url = f"{sandbox.url}/shopify/admin/api/2026-04/graphql.json"
    token = httpx.get(f"{sandbox.url}/_sandbox/credentials").json()["shopify"]["access_token"]
    blocking = httpx.post(
        url, json={"query": mutation, "variables": {"q": query}}, headers={"X-Shopify-Access-Token": token}
    ).json()["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"]
    result = backfill(datetime.now(UTC) - timedelta(days=1))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "bulk operation still RUNNING" in result.output and blocking in result.output
