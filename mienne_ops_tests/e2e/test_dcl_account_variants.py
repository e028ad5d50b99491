"""Flows B, C and D through Dagster while the DCL fake plays its undocumented account behaviours.

Flow B with a non-zero top-level code on a partial batch and "no records" codes; flow C with
``shipments[].shipped_lines`` and the carrier only on the order, and with a shipment no reader
understands (quarantined with its raw payload, never done); flow D with receipts whose line fields are
unknown (quarantined with the raw payload, not re-requested on every tick, posted once readable).
"""

import random

import httpx
import pytest

from mienne_ops.devtools.harness import ORDER_TO_CASH_SENSORS, sandbox_state
from mienne_ops.domain.fulfillment import shopify_carrier
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops.sync.fulfillment import ENTITY as ENTITY_DCL_ORDER
from mienne_ops.sync.fulfillment import FLOW as FLOW_C
from mienne_ops.sync.inbound import ENTITY_RECEIPT
from mienne_ops.sync.inbound import FLOW as FLOW_D
from mienne_ops_tests.e2e.test_inbound import ASN, RECEIPTS, SKUS, _order, _post, _rerun

pytestmark = pytest.mark.e2e


def _account(url: str, **settings) -> None:
    _post(url, "/_sandbox/dcl/account", settings)


def test_flows_b_and_c_under_the_other_dcl_answers(stack):
    sandbox, driver, ledger = stack["sandbox"], stack["driver"], stack["ledger"]
    url = sandbox.url
    httpx.post(f"{url}/_sandbox/shopify/limits", json={"restore_rate": 1000, "bucket_size": 10000})
    _post(url, "/_sandbox/dcl/limits", {"requests_per_second": 100})
    _account(url, partial_batch_error_code=True, no_records_code=True, shipment_shape="shipped_lines")
    rng = random.Random(7)
    for _ in range(3):
        placed = httpx.post(f"{url}/_sandbox/shopify/orders", json=build_order(sandbox.hub.catalog, rng))
        assert placed.status_code == 201, placed.text
    driver.settle(ORDER_TO_CASH_SENSORS[:1])
    driver.settle(ORDER_TO_CASH_SENSORS[1:2])
    dcl_orders = sorted(sandbox_state(url)["dcl"]["orders"], key=lambda o: o["order_number"])
    assert len(dcl_orders) == 3

    # Two ship readably (items in shipped_lines, carrier only on the order); one unreadably.
    for dcl_order in dcl_orders[:2]:
        _post(url, f"/_sandbox/dcl/orders/{dcl_order['order_number']}/ship", {"carrier": "FEDEX"})
    odd = dcl_orders[2]["order_number"]
    _post(url, f"/_sandbox/dcl/orders/{odd}/ship", {"unreadable": True})
    driver.settle(ORDER_TO_CASH_SENSORS[2:], rounds=4)

    state = sandbox_state(url)
    assert len(state["netsuite"]["item_fulfillments"]) == 2
    fulfilled = [o for o in state["shopify"]["orders"] if o.get("fulfillments")]
    assert len(fulfilled) == 2
    companies = {f["tracking_company"] for o in fulfilled for f in o["fulfillments"]}
    # The carrier requested on the order: in this shape the shipment names none.
    assert companies == {shopify_carrier(o["shipping_carrier"]) for o in dcl_orders[:2]}
    (stuck,) = [e for e in ledger.exceptions(statuses=["open"], flow=FLOW_C) if e.entity == ENTITY_DCL_ORDER]
    assert stuck.key == odd and stuck.reason == "unreadable_shipment"
    assert stuck.context["raw"]["packages"] and "shipped_items" not in stuck.context["raw"]["packages"][0]
    # Never done: not complete in the ledger, and no further runs are requested for it.
    assert driver.tick("dcl_shipments_sensor") == 0
    assert not ledger.journey_by_dcl_order(odd).complete_for(1)


def test_unreadable_receipt_is_quarantined_with_its_payload_then_posted_once_readable(stack):
    sandbox, driver, ledger = stack["sandbox"], stack["driver"], stack["ledger"]
    url = sandbox.url
    _post(url, "/_sandbox/dcl/limits", {"requests_per_second": 100})
    po = _post(url, "/_sandbox/netsuite/purchase_orders", {"lines": [{"sku": SKUS[0], "quantity": 4}]})
    driver.tick(ASN)
    number = ledger.dcl_po_number(po["id"])
    assert number
    _account(url, receipt_shape="opaque")
    _post(url, f"/_sandbox/dcl/po/{number}/receive")
    driver.tick(RECEIPTS)
    assert sandbox_state(url)["netsuite"]["item_receipts"] == []
    (unreadable,) = [
        e for e in ledger.exceptions(statuses=["open"], flow=FLOW_D) if e.entity == ENTITY_RECEIPT
    ]
    assert unreadable.reason == "unreadable_receipt"
    assert unreadable.context["raw"]["rcpt_dtl"] == [{"sku_cd": SKUS[0], "rcv_qty": 4}]
    assert ledger.posted_receipt(unreadable.key) is None  # never recorded as handled
    assert driver.tick(RECEIPTS) == 0  # waits in the exceptions queue, not re-run every tick
    result = driver.repo.get_job("inbound_reconciliation_job").execute_in_process(instance=driver.instance)
    assert not all(check.passed for check in result.get_asset_check_evaluations())

    # The account turns out to use other field names the reader knows: a retry posts it once.
    _account(url, receipt_shape="alternate")
    _rerun(driver, "inbound_receipt_job", "post_dcl_receipts", {"dcl_po_numbers": [number]})
    _rerun(driver, "inbound_receipt_job", "post_dcl_receipts", {"dcl_po_numbers": [number]})
    state = sandbox_state(url)
    assert [r["createdFrom"] for r in state["netsuite"]["item_receipts"]] == [po["id"]]
    assert _order(state, "purchase_orders", po["tranId"])["status"] == "H"
    assert not [e for e in ledger.exceptions(statuses=["open"], flow=FLOW_D) if e.entity == ENTITY_RECEIPT]
