"""The control plane of the sandbox server, independent of any one system fake."""

import json

import httpx
import pytest

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.server import SandboxServer


def test_control_plane_serves_catalog_faults_and_reset(tmp_path):
    with SandboxServer(tmp_path / "world.db", modules=()) as server:
        catalog = httpx.get(f"{server.url}/_sandbox/catalog").json()
        assert len(catalog["skus"]) >= 300
        kits = [b for b in catalog["bundles"] if len(b["components"]) >= 2]
        assert kits and all(2 <= len(b["components"]) <= 4 for b in kits)
        assert any(c["quantity"] > 1 for b in kits for c in b["components"])
        assert {loc["code"] for loc in catalog["locations"]} == {"FR", "LA"}

        bad = httpx.post(f"{server.url}/_sandbox/faults", json={"nosuch": {"error_rate": 0.5}})
        assert bad.status_code == 400

        assert httpx.post(f"{server.url}/_sandbox/reset").json()["ok"] is True
        assert httpx.get(f"{server.url}/_sandbox/state").json() == {}


# Every control route, given bad input, answers 400 with a message (never a 500).
BAD_INPUT = [
    ("POST", "/reset", b"{not json"),
    ("POST", "/reset", {"seed": "seven"}),
    ("POST", "/faults", {"dcl": "lots"}),
    ("POST", "/faults", {"dcl": {"error_rate": "high"}}),
    ("POST", "/faults", [1, 2]),
    ("POST", "/dcl/orders/{dcl_order}/ship", {"lines": [{"line": 1, "quantity": 1}]}),
    ("POST", "/dcl/orders/{dcl_order}/ship", {"lines": [{"line_number": "1", "quantity": 1}]}),
    ("POST", "/dcl/orders/{dcl_order}/ship", {"lines": "all"}),
    ("POST", "/dcl/orders/{dcl_order}/ship", {"tracking_numbers": "1Z1"}),
    ("POST", "/dcl/orders/{dcl_order}/ship", {"ship_date": "June 5"}),
    ("POST", "/dcl/orders/{dcl_order}/ship", [1]),
    ("POST", "/dcl/orders/{dcl_order}/ship", b"{"),
    ("POST", "/dcl/orders/{dcl_order}/stage", {"stage": "shipped"}),
    ("POST", "/dcl/orders/{dcl_order}/stage", {}),
    ("POST", "/dcl/inventory", {"items": [{"item_number": "MN-SERUM-001"}]}),
    ("POST", "/dcl/inventory", {"items": {"MN-SERUM-001": 5}}),
    ("POST", "/dcl/limits", {"requests_per_second": "fast"}),
    ("POST", "/dcl/limits", {"drop_response_after_create": "yes"}),
    ("POST", "/dcl/limits", {"frozen_clock": "yes"}),
    ("POST", "/dcl/limits", {"advance_seconds": 1}),
    ("POST", "/dcl/account", {"shipment_shape": "boxes"}),
    ("POST", "/dcl/account", {"no_such_setting": True}),
    ("POST", "/dcl/account", {"no_records_code": 1}),
    ("POST", "/dcl/po/{dcl_po}/receive", {"lines": [{"sku": "X", "quantity": 1}]}),
    ("POST", "/dcl/po/{dcl_po}/receive", {"lines": [{"line_number": 1, "quantity": "2"}]}),
    ("POST", "/dcl/po_notifications/{reference}/receive", {"lines": [{"item_number": "X", "quantity": 1}]}),
    ("POST", "/stateset/limits", {"requests_per_second": "fast"}),
    ("POST", "/stateset/limits", b"{"),
    ("POST", "/stateset/limits", {"frozen_clock": True, "advance_seconds": "1s"}),
    ("POST", "/netsuite/limits", {"concurrency": "many"}),
    ("POST", "/netsuite/limits", {"hold": "yes"}),
    ("POST", "/netsuite/inventory", {"item": "x"}),
    ("POST", "/netsuite/purchase_orders", {"lines": "ten"}),
    ("POST", "/shopify/limits", {"restore_rate": "fast"}),
    ("POST", "/shopify/orders", b"[1, 2"),
    ("POST", "/shopify/inventory", {"levels": [{"sku": 1}]}),
    ("POST", "/zendesk/tickets", {"subject": "x", "body": "y"}),
    ("POST", "/zendesk/tickets", {"requester_email": "a@b.c", "subject": "x", "body": "y", "tags": "t"}),
    ("POST", "/zendesk/tickets", b"{"),
    ("POST", "/zendesk/limits", {"account_per_minute": "lots"}),
    ("POST", "/zendesk/limits", {"advance_seconds": 5}),
    ("POST", "/zendesk/webhooks", {"url": 5}),
    ("POST", "/zendesk/tickets/999/fill", {"count": 1}),
    ("POST", "/recharge/customers", {"email": 5}),
    ("POST", "/recharge/customers", b"{"),
    ("POST", "/recharge/subscriptions", {"customer_id": "x"}),
    ("POST", "/recharge/subscriptions", {"customer_id": 1, "sku": "A", "quantity": 1}),
    ("POST", "/recharge/limits", {"bucket_size": "big"}),
    ("POST", "/recharge/limits", {"advance_seconds": 1}),
    ("POST", "/recharge/settings", {"already_cancelled": "maybe"}),
    ("POST", "/recharge/write_faults", {"operation": "explode"}),
]


@pytest.fixture(scope="module")
def full_sandbox(tmp_path_factory):
    with SandboxServer(tmp_path_factory.mktemp("control") / "world.db") as server:
        httpx.post(f"{server.url}/_sandbox/reset", timeout=30).raise_for_status()
        yield server


@pytest.fixture(scope="module")
def targets(full_sandbox) -> dict[str, str]:
    """A real DCL order and PO to aim the bad input at (so only the input is wrong)."""
    url = full_sandbox.url
    auth = (credentials.DCL["username"], credentials.DCL["password"])
    account = credentials.DCL["account_number"]
    order = {
        "order_number": "CTL-1",
        "account_number": account,
        "freight_account": "00500",
        "shipping_carrier": "UPS",
        "shipping_service": "GROUND",
        "shipping_address": {
            "attention": "A",
            "address1": "1 Main St",
            "city": "Austin",
            "state_province": "TX",
            "postal_code": "78701",
            "country_code": "US",
        },
        "lines": [{"line_number": 1, "item_number": "MN-SERUM-001", "quantity": 2}],
    }
    batch = httpx.post(
        f"{url}/dcl/api/v1/batches", auth=auth, json={"allow_partial": True, "orders": [order]}
    )
    assert batch.json()["order_statuses"][0]["error_code"] == 0
    asn = httpx.post(
        f"{url}/dcl/api/v1/po_notifications",
        auth=auth,
        json={
            "account_number": account,
            "location": "FR",
            "reference_transaction_number": "CTL-PO-1",
            "reference_order_number": "CTL-PO",
            "order_date": "2026-06-01",
            "expected_delivery_date": "2026-06-10",
            "lines": [{"line_number": 1, "item_number": "MN-SERUM-001", "quantity": 3}],
        },
    )
    return {"dcl_order": "CTL-1", "dcl_po": str(asn.json()["dcl_po_number"]), "reference": "CTL-PO-1"}


@pytest.mark.parametrize(("method", "path", "body"), BAD_INPUT)
def test_bad_input_to_a_control_route_is_a_400_with_a_message(full_sandbox, targets, method, path, body):
    url = f"{full_sandbox.url}/_sandbox{path.format(**targets)}"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = httpx.request(method, url, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, (path, body, response.status_code, response.text)
    answer = response.json()
    message = answer.get("error_message") or answer.get("error") or answer.get("errors")
    assert message, answer


def test_good_input_still_works_after_bad_input(full_sandbox, targets):
    url = f"{full_sandbox.url}/_sandbox/dcl/orders/{targets['dcl_order']}/ship"
    shipped = httpx.post(
        url, json={"lines": [{"line_number": 1, "quantity": 1}], "tracking_numbers": ["1ZOK"]}
    )
    assert shipped.status_code == 200, shipped.text
    assert shipped.json()["packages"][0]["tracking_number"] == "1ZOK"
