"""An import that stops halfway is finished later, even after flow B sent the order to DCL.

Flow B sends any approved sales order it finds. If flow A's process dies after the sales order exists
but before the StateSet order and the `SENT_TO_NS` tag (a crash: no exception recorded), flow B may
dispatch it and move the journey's stage on. The journey's `imported_at` marker — not the stage —
says whether flow A finished, so the next import of the order completes the missing steps.
"""

from __future__ import annotations

import random

import httpx
import pytest

from mienne_ops import settings
from mienne_ops.business_rules import BusinessRules
from mienne_ops.cli import api_clients
from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.domain.journey import Stage
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops.sync.batch import Outcome
from mienne_ops.sync.orders import OrderIngestor, OrderSystems
from mienne_ops_tests.support import new_ledger


class ProcessDied(BaseException):
    """What a kill -9 looks like from inside: nothing after it runs, nothing is recorded."""


def test_an_import_that_died_after_the_sales_order_is_finished_after_dispatch(
    sandbox, state_dir, monkeypatch
):
    monkeypatch.setenv("MIENNE_SANDBOX_URL", sandbox.url)
    payload = build_order(sandbox.hub.catalog, random.Random(9), gift_card=False)
    placed = httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=payload, timeout=30).json()
    key = str(placed["id"])
    ledger = new_ledger(settings.ledger_url())
    rules = BusinessRules(hold_edit_window_minutes=0)
    with api_clients() as clients:
        ingestor = OrderIngestor.from_rules(rules, OrderSystems.of(clients, ledger))
        with monkeypatch.context() as crash:

            def die(*args, **kwargs):
                raise ProcessDied

            crash.setattr(clients.stateset, "create_order", die)
            with pytest.raises(ProcessDied):
                ingestor.ingest(key)
        halfway = ledger.journey(key)
        assert halfway.netsuite_sales_order_id and halfway.stateset_order_id is None
        assert ledger.exceptions() == []  # a crash leaves no exception behind

        # Flow B finds the approved sales order and sends it to DCL: the stage moves on.
        ledger.record_dispatch(halfway.netsuite_sales_order_id, "SO-CRASH-1", shopify_order_id=key)
        assert ledger.journey(key).stage == Stage.DISPATCHED and ledger.journey(key).import_pending

        assert ingestor.ingest(key) == Outcome.DONE  # the next tick brings it back; it is finished
        assert ingestor.ingest(key) == Outcome.SKIPPED
    done = ledger.journey(key)
    assert done.imported_at is not None and done.stateset_order_id
    assert done.stage == Stage.DISPATCHED  # never moved back
    state = sandbox_state(sandbox.url)
    external = f"shopify-order-{key}"
    assert [
        o["id"] for o in state["stateset"]["orders"] if o["data"]["metadata"]["external_id"] == external
    ] == [done.stateset_order_id]
    order = next(o for o in state["shopify"]["orders"] if str(o["id"]) == key)
    assert "SENT_TO_NS" in order["tags"]
    assert [so["externalId"] for so in state["netsuite"]["sales_orders"]].count(external) == 1
    ledger.dispose()
