"""A vendor row that cannot be read quarantines its own record, with the reason; the batch goes on."""

from __future__ import annotations

import httpx
import pytest

from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.sandbox.catalog import build_catalog
from mienne_ops.sync.inbound import FLOW

pytestmark = pytest.mark.e2e

SKUS = [s.sku for s in build_catalog().skus if s.item_type == "InvtPart" and s.active][:2]


def _post(url: str, path: str, body: dict) -> dict:
    response = httpx.post(f"{url}{path}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_po_with_a_fractional_quantity_is_quarantined_and_the_others_are_announced(stack):
    sandbox, driver, ledger = stack["sandbox"], stack["driver"], stack["ledger"]
    url = sandbox.url
    lines = [{"sku": SKUS[0], "quantity": 10}, {"sku": SKUS[1], "quantity": 6}]
    good = _post(url, "/_sandbox/netsuite/purchase_orders", {"tranDate": "2026-11-03", "lines": lines})
    fractional = _post(
        url,
        "/_sandbox/netsuite/purchase_orders",
        {"tranDate": "2026-11-03", "lines": [{"sku": SKUS[0], "quantity": 2.5}]},
    )
    result = driver.repo.get_job("inbound_announcement_job").execute_in_process(
        run_config={
            "ops": {"announce_inbound_orders": {"config": {"order_ids": [fractional["id"], good["id"]]}}}
        },
        instance=driver.instance,
        raise_on_error=False,
    )
    assert result.success  # one unreadable order does not fail the batch
    announced = {po["reference_order_number"] for po in sandbox_state(url)["dcl"]["po_notifications"]}
    assert announced == {good["tranId"]}  # never announced as 2 units
    (exception,) = ledger.exceptions(flow=FLOW)
    assert (exception.key, exception.reason) == (fractional["id"], "invalid_quantity")
    assert "quantity '2.5' is not a whole number" in exception.message
