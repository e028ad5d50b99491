"""Flow D's ASN updates under each DCL behaviour: update in place, or cancel-and-replace.

DCL does not document what a new ``reference_transaction_number`` for a PO it holds does (dcl.md
§8.1). With ``BusinessRules.dcl_asn_updates = "cancel_and_replace"`` and the fake playing "every new
reference is a new PO", an edited PO waits (quarantined) until the old DCL PO is cancelled, then the
open quantities go out as the replacement: DCL never expects the goods twice, and receipts on the
replacement post against the same NetSuite order.
"""

from __future__ import annotations

import httpx
import pytest

from mienne_ops import settings
from mienne_ops.business_rules import BusinessRules
from mienne_ops.integrations.dcl import DclResource
from mienne_ops.integrations.netsuite import client_for
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.catalog import build_catalog
from mienne_ops.sync.batch import Outcome, run_batch
from mienne_ops.sync.inbound import (
    ASN_CANCEL_REQUIRED,
    CANCEL_AND_REPLACE,
    ENTITY_ORDER,
    FLOW,
    Announcer,
    ReceiptSync,
)
from mienne_ops_tests.support import new_ledger

SKUS = [s.sku for s in build_catalog().skus if s.item_type == "InvtPart" and s.active][:2]
LOCATIONS = BusinessRules().netsuite_location_by_warehouse


def _post(url: str, path: str, body: dict | None = None) -> dict:
    response = httpx.post(f"{url}{path}", json=body or {}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def world(sandbox, state_dir):
    url = sandbox.url
    _post(url, "/_sandbox/dcl/limits", {"requests_per_second": 1000})
    ledger = new_ledger(settings.ledger_url())
    netsuite = client_for(credentials.NETSUITE, f"{url}/netsuite", max_concurrency=2)
    dcl = DclResource(
        base_url=f"{url}/dcl",
        username=credentials.DCL["username"],
        password=credentials.DCL["password"],
        account_number=credentials.DCL["account_number"],
        freight_account=credentials.DCL["freight_account"],
        retry_base_delay_seconds=0.01,
    ).build_client()
    yield {"url": url, "ledger": ledger, "netsuite": netsuite, "dcl": dcl}
    ledger.dispose()


def _dcl_pos(url: str) -> list[dict]:
    return httpx.get(f"{url}/_sandbox/state").json()["dcl"]["po_notifications"]


def _ns_po(url: str, po_id: str) -> dict:
    orders = httpx.get(f"{url}/_sandbox/state").json()["netsuite"]["purchase_orders"]
    return next(o for o in orders if str(o["id"]) == str(po_id))


def test_cancel_and_replace_waits_for_the_cancel_then_announces_only_what_is_open(world):
    url, ledger, netsuite, dcl = world["url"], world["ledger"], world["netsuite"], world["dcl"]
    _post(url, "/_sandbox/dcl/account", {"asn_updates": "new_po"})
    po = _post(
        url,
        "/_sandbox/netsuite/purchase_orders",
        {
            "dueDate": "2026-12-01",
            "lines": [{"sku": SKUS[0], "quantity": 10}, {"sku": SKUS[1], "quantity": 6}],
        },
    )
    warehouses = {location: code for code, location in LOCATIONS.items()}
    announcer = Announcer(netsuite, dcl, ledger, warehouses, asn_updates=CANCEL_AND_REPLACE)
    receipts = ReceiptSync(netsuite, ledger, dict(LOCATIONS))

    def announce():
        return run_batch(
            flow=FLOW, entity=ENTITY_ORDER, keys=[po["id"]], handle=announcer.announce, ledger=ledger
        )

    def post_receipts(number: str) -> None:
        receipts.sync_po(number, list(dcl.iter_po_receipts(dcl_po_number=number)))

    assert announce().counts[Outcome.DONE] == 1
    (first,) = _dcl_pos(url)
    old = str(first["dcl_po_number"])
    _post(url, f"/_sandbox/dcl/po/{old}/receive", {"lines": [{"line_number": 1, "quantity": 4}]})
    post_receipts(old)

    # The PO is edited: DCL would make a second PO of a new version, so nothing goes out yet.
    netsuite.patch("purchaseOrder", po["id"], {"item": {"items": [{"line": 1, "quantity": 12}]}})
    for _ in range(2):
        report = announce()
        assert report.counts[Outcome.QUARANTINED] == 1
    assert len(_dcl_pos(url)) == 1
    (waiting,) = ledger.exceptions(statuses=["open"], flow=FLOW, key=po["id"])
    assert waiting.reason == ASN_CANCEL_REQUIRED and waiting.context["dcl_po_number"] == old
    assert f"Cancel DCL PO {old}" in waiting.message

    # The operator cancels the old PO in eFactory and sends the exception back.
    _post(url, f"/_sandbox/dcl/po/{old}/cancel")
    ledger.set_exception_status(waiting.id, "retrying")
    assert announce().counts[Outcome.DONE] == 1
    assert not ledger.exceptions(statuses=["open", "retrying"], flow=FLOW, key=po["id"])
    pos = {str(p["dcl_po_number"]): p for p in _dcl_pos(url)}
    (new,) = [number for number, p in pos.items() if not p.get("cancelled")]
    assert new != old and pos[old]["cancelled"]
    # Only what is still open: 12 - 4 on line 1, 6 on line 2 (ordered minus received, never twice).
    assert [(line["line_number"], line["quantity"]) for line in pos[new]["lines"]] == [(1, 8), (2, 6)]
    assert ledger.dcl_po_number(po["id"]) == new
    assert _ns_po(url, po["id"])["custbody_dcl_po_number"] == new

    # A re-run sends nothing; the replacement's receipts post against the same NetSuite PO.
    assert announce().counts[Outcome.SKIPPED] == 1 and len(_dcl_pos(url)) == 2
    _post(url, f"/_sandbox/dcl/po/{new}/receive")
    post_receipts(new)
    received = _ns_po(url, po["id"])
    assert [line["quantityReceived"] for line in received["lines"]] == [12, 6]
    assert received["status"] == "H"


def test_update_in_place_sends_an_edit_as_the_next_version_of_the_same_po(world):
    url, ledger, netsuite, dcl = world["url"], world["ledger"], world["netsuite"], world["dcl"]
    po = _post(url, "/_sandbox/netsuite/purchase_orders", {"lines": [{"sku": SKUS[0], "quantity": 3}]})
    warehouses = {location: code for code, location in LOCATIONS.items()}
    announcer = Announcer(netsuite, dcl, ledger, warehouses)
    assert announcer.announce(po["id"]) is Outcome.DONE
    netsuite.patch("purchaseOrder", po["id"], {"item": {"items": [{"line": 1, "quantity": 5}]}})
    assert announcer.announce(po["id"]) is Outcome.DONE
    (only,) = _dcl_pos(url)
    assert len(only["references"]) == 2 and [line["quantity"] for line in only["lines"]] == [5]
