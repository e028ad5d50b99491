"""Flow D through Dagster with faults on: POs / TOs announced once, receipts posted once, excess quarantined.

NetSuite and DCL inject 5xx errors and 429 bursts. A PO is announced once although the sensor ticks
repeatedly and its run is executed again; an edit is announced as an update of the same DCL PO; a
send whose answer was lost (simulated by DCL already holding that reference) still ends as one DCL
PO; a cancelled (closed) PO is never announced. The PO is received in two parts (two item receipts,
then closed); a re-run creates nothing new; an over-receipt and an unknown item on a TO are
quarantined while the known quantity posts. The whole flow runs under two account date preferences
(SuiteQL answers dates as ``12/1/2026`` or ``1/12/2026``): the ASN carries ISO dates either way, and
once everything is announced the sensor finds no PO edited.
"""

import httpx
import pytest

from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.integrations.netsuite import client_for
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.catalog import build_catalog
from mienne_ops.sync.inbound import ENTITY_RECEIPT, FLOW

pytestmark = pytest.mark.e2e

FAULTS = {
    "seed": 4,
    "netsuite": {"error_rate": 0.05, "rate_429": 0.03, "burst_length": 2},
    "dcl": {"error_rate": 0.05, "rate_429": 0.03, "burst_length": 2},
}
ASN, RECEIPTS = "netsuite_inbound_orders_sensor", "dcl_po_receipts_sensor"
SKUS = [s.sku for s in build_catalog().skus if s.item_type == "InvtPart" and s.active][:4]


def _post(url: str, path: str, body: dict | None = None) -> dict:
    response = httpx.post(f"{url}{path}", json=body or {}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _dcl_pos(state: dict) -> dict[str, dict]:
    return {po["reference_order_number"]: po for po in state["dcl"]["po_notifications"]}


def _order(state: dict, kind: str, tran_id: str) -> dict:
    return next(o for o in state["netsuite"][kind] if o["tranId"] == tran_id)


def _rerun(driver, job_name: str, op: str, config: dict) -> None:
    result = driver.repo.get_job(job_name).execute_in_process(
        run_config={"ops": {op: {"config": config}}}, instance=driver.instance, raise_on_error=False
    )
    assert result.success


@pytest.mark.parametrize("date_format", ["M/D/YYYY", "D/M/YYYY"])
def test_inbound_announced_once_received_in_parts_closed_and_excess_quarantined(stack, date_format):
    sandbox, driver, ledger = stack["sandbox"], stack["driver"], stack["ledger"]
    url = sandbox.url
    _post(url, "/_sandbox/dcl/limits", {"requests_per_second": 100})
    assert _post(url, "/_sandbox/netsuite/preferences", {"date_format": date_format}) == {
        "date_format": date_format
    }
    po = _post(
        url,
        "/_sandbox/netsuite/purchase_orders",
        {
            "tranDate": "2026-11-03",
            "dueDate": "2026-12-01",
            "lines": [{"sku": SKUS[0], "quantity": 10}, {"sku": SKUS[1], "quantity": 6}],
        },
    )
    cancelled = _post(url, "/_sandbox/netsuite/purchase_orders", {"lines": [{"sku": SKUS[2], "quantity": 1}]})
    _post(url, f"/_sandbox/netsuite/purchase_orders/{cancelled['id']}/close")
    to = _post(
        url,
        "/_sandbox/netsuite/transfer_orders",
        {"from_location": 2, "to_location": 1, "lines": [{"sku": SKUS[2], "quantity": 4}]},
    )
    # The TO's first send "lost its answer": DCL already holds the reference the flow will use.
    lost = httpx.post(
        f"{url}/dcl/api/v1/po_notifications",
        auth=(credentials.DCL["username"], credentials.DCL["password"]),
        json={
            "account_number": credentials.DCL["account_number"],
            "location": "FR",
            "reference_transaction_number": f"{to['tranId']}-1",
            "reference_order_number": to["tranId"],
            "order_date": "2026-11-01",
            "expected_delivery_date": "2026-11-01",
            "lines": [{"line_number": 1, "item_number": SKUS[2], "quantity": 4}],
        },
    )
    assert lost.status_code == 201, lost.text
    lost_number = lost.json()["dcl_po_number"]
    _post(url, "/_sandbox/faults", FAULTS)

    # ASN out: repeated ticks and an explicit re-execution of the run announce each order once.
    for _ in range(3):
        driver.tick(ASN)
    _rerun(driver, "inbound_announcement_job", "announce_inbound_orders", {"order_ids": [po["id"], to["id"]]})
    state = sandbox_state(url)
    pos = _dcl_pos(state)
    assert set(pos) == {po["tranId"], to["tranId"]}, pos  # the closed PO is not announced
    assert pos[po["tranId"]]["references"] == [f"{po['tranId']}-1"]
    # ISO dates whatever the preference (SuiteQL alone would say 11/3/2026 or 3/11/2026).
    assert (pos[po["tranId"]]["order_date"], pos[po["tranId"]]["expected_delivery_date"]) == (
        "2026-11-03",
        "2026-12-01",
    )
    assert pos[to["tranId"]]["dcl_po_number"] == lost_number  # an update, not a second DCL PO
    assert pos[to["tranId"]]["references"] == [f"{to['tranId']}-1", f"{to['tranId']}-2"]
    ns_po = _order(state, "purchase_orders", po["tranId"])
    number = str(pos[po["tranId"]]["dcl_po_number"])
    assert ns_po["custbody_sent_to_3pl"] and ns_po["custbody_dcl_po_number"] == number
    assert ledger.dcl_po_number(po["id"]) == number

    # An edit (more units, one more line) is announced again as an update of the same DCL PO.
    netsuite = client_for(credentials.NETSUITE, base_url=f"{url}/netsuite", max_concurrency=2)
    item = next(s.netsuite_item_id for s in build_catalog().skus if s.sku == SKUS[3])
    netsuite.patch(
        "purchaseOrder",
        po["id"],
        {"item": {"items": [{"line": 1, "quantity": 12}, {"item": {"id": str(item)}, "quantity": 2}]}},
    )
    driver.tick(ASN)
    driver.tick(ASN)
    dcl_po = _dcl_pos(sandbox_state(url))[po["tranId"]]
    assert str(dcl_po["dcl_po_number"]) == number
    assert dcl_po["references"] == [f"{po['tranId']}-1", f"{po['tranId']}-2"]
    assert [(line["line_number"], line["quantity"]) for line in dcl_po["lines"]] == [(1, 12), (2, 6), (3, 2)]

    # Receipts in: two parts -> two item receipts, then the PO is closed.
    _post(url, f"/_sandbox/dcl/po/{number}/receive", {"lines": [{"line_number": 1, "quantity": 5}]})
    driver.tick(RECEIPTS)
    state = sandbox_state(url)
    assert [r["externalId"] for r in state["netsuite"]["item_receipts"]] == [
        f"dcl-receipt-{number}-R500000"
    ], [r.success for r in driver.runs]
    assert _order(state, "purchase_orders", po["tranId"])["status"] == "D"
    _post(url, f"/_sandbox/dcl/po/{number}/receive")  # everything still open
    driver.tick(RECEIPTS)
    state = sandbox_state(url)
    receipts = [r for r in state["netsuite"]["item_receipts"] if r["createdFrom"] == po["id"]]
    assert len(receipts) == 2
    closed = _order(state, "purchase_orders", po["tranId"])
    assert closed["status"] == "H"
    assert [line["quantityReceived"] for line in closed["lines"]] == [12, 6, 2]

    # Over-receipt and an unknown item on the TO: quarantined, the known quantity posts.
    to_number = ledger.dcl_po_number(to["id"])
    _post(
        url,
        f"/_sandbox/dcl/po/{to_number}/receive",
        {"lines": [{"line_number": 1, "quantity": 6}, {"item_number": SKUS[0], "quantity": 1}]},
    )
    driver.tick(RECEIPTS)
    state = sandbox_state(url)
    to_state = _order(state, "transfer_orders", to["tranId"])
    assert [line["quantityReceived"] for line in to_state["lines"]] == [4]
    assert to_state["status"] == "H"
    open_exceptions = [
        e for e in ledger.exceptions(statuses=["open"], flow=FLOW) if e.entity == ENTITY_RECEIPT
    ]
    assert len(open_exceptions) == 1
    assert open_exceptions[0].reason == "over_receipt+unknown_item"
    assert "2 received beyond" in open_exceptions[0].message

    # A re-run creates nothing new anywhere.
    before = sandbox_state(url)
    for _ in range(2):
        driver.tick(ASN)
        driver.tick(RECEIPTS)
    _rerun(driver, "inbound_receipt_job", "post_dcl_receipts", {"dcl_po_numbers": [number, str(to_number)]})
    _rerun(driver, "inbound_announcement_job", "announce_inbound_orders", {"order_ids": [po["id"], to["id"]]})
    after = sandbox_state(url)
    assert after["netsuite"]["item_receipts"] == before["netsuite"]["item_receipts"]
    assert after["dcl"]["po_notifications"] == before["dcl"]["po_notifications"]
    assert len(ledger.exceptions(statuses=["open"], flow=FLOW)) == 1

    # Nothing was edited since the last announcement: with the faults off, the sensor requests no run
    # (a locale date read as a stamp would make every announced PO look edited on every tick).
    _post(url, "/_sandbox/faults", {"clear": True})
    assert driver.tick(ASN) == 0

    # The reconciliation asset materializes (nothing left open) and its checks pass.
    result = driver.repo.get_job("inbound_reconciliation_job").execute_in_process(instance=driver.instance)
    checks = result.get_asset_check_evaluations()
    assert checks and all(check.passed for check in checks)
