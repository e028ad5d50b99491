"""A revoked NetSuite token through Dagster: one failed run with one clear message, nothing quarantined.

A revoked token answers 401 ``INVALID_LOGIN`` to every call. Flow A must not quarantine every order
(they are not at fault) nor let Dagster retry the storm: the run fails once, without retries, naming
NetSuite and the credentials; once the token works again the orders go through.
"""

import random

import httpx
import pytest

from mienne_ops.devtools.harness import ORDER_TO_CASH_SENSORS, sandbox_state
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops.sync.orders import FLOW

pytestmark = pytest.mark.e2e


def _place(url: str, payload: dict) -> dict:
    response = httpx.post(f"{url}/_sandbox/shopify/orders", json=payload, timeout=30)
    response.raise_for_status()
    return response.json()


def test_revoked_netsuite_token_fails_the_run_once_and_quarantines_nothing(stack):
    sandbox, driver, ledger = stack["sandbox"], stack["driver"], stack["ledger"]
    url = sandbox.url
    rng = random.Random(8)
    orders = [_place(url, build_order(sandbox.hub.catalog, rng)) for _ in range(3)]
    httpx.post(f"{url}/_sandbox/netsuite/token", json={"revoked": True}).raise_for_status()

    assert driver.tick(ORDER_TO_CASH_SENSORS[0]) == 1
    (run,) = driver.runs
    assert not run.success
    failures = [e for e in run.all_events if e.event_type_value == "STEP_FAILURE"]
    assert len(failures) == 1
    message = failures[0].step_failure_data.user_failure_data.description
    assert "netsuite rejected our credentials (401 INVALID_LOGIN)" in message
    retries = [e for e in run.all_events if e.event_type_value in ("STEP_UP_FOR_RETRY", "STEP_RESTARTED")]
    assert retries == []
    assert ledger.exceptions(statuses=["open", "retrying"], flow=FLOW) == []
    assert sandbox_state(url)["netsuite"]["sales_orders"] == []

    # The token works again: the reconciliation poll picks the orders up; each is imported once.
    httpx.post(f"{url}/_sandbox/netsuite/token", json={"revoked": False}).raise_for_status()
    driver.settle(
        ORDER_TO_CASH_SENSORS[:1],
        until=lambda: len(sandbox_state(url)["netsuite"]["sales_orders"]) == len(orders),
    )
    external_ids = sorted(o["externalId"] for o in sandbox_state(url)["netsuite"]["sales_orders"])
    assert external_ids == sorted(f"shopify-order-{o['id']}" for o in orders)
