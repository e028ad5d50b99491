"""NetSuite account set-ups the fake can play: OneWorld, integrated carriers, mandatory payment method.

Facts: OneWorld entities need a subsidiary before transactions (Oracle, "Associate Subsidiaries with
Entities and Items"); integrated UPS / FedEx ship methods keep packages in ``packageUps`` /
``packageFedEx`` with suffixed fields (SuiteTalk schema ``ItemFulfillmentPackageUps``,
``ItemFulfillmentPackageFedEx``); a missing mandatory field is ``USER_ERROR`` "Please enter value(s)
for: …"; a bad reference ``INVALID_CONTENT`` (REST error handling page).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mienne_ops.integrations.netsuite import NetSuiteTbaAuth
from mienne_ops.sandbox.credentials import NETSUITE
from mienne_ops.sandbox.server import SandboxServer
from mienne_ops_tests.sandbox.test_netsuite_sandbox import RECORD, error_code, new_order
from mienne_ops_tests.support import single_system_server

server = single_system_server("netsuite")


@pytest.fixture
def ns(server: SandboxServer) -> Iterator[httpx.Client]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    with httpx.Client(base_url=f"{server.url}/netsuite", auth=NetSuiteTbaAuth(**NETSUITE)) as client:
        yield client


def account(server, **settings) -> httpx.Response:
    return httpx.post(f"{server.url}/_sandbox/netsuite/account", json=settings)


def customer(ns, external_id: str, **extra) -> httpx.Response:
    body = {"firstName": "Ada", "lastName": "Lovelace", "email": f"{external_id}@example.com", **extra}
    return ns.put(f"{RECORD}/customer/eid:{external_id}", json=body)


def test_one_world_customers_need_a_known_subsidiary(ns, server):
    assert customer(ns, "plain", subsidiary={"id": "1"}).status_code == 204  # not OneWorld: ignored
    assert account(server, one_world=True).json()["one_world"] is True
    missing = customer(ns, "no-subsidiary")
    assert missing.status_code == 400 and error_code(missing) == "USER_ERROR"
    assert missing.json()["o:errorDetails"][0]["o:errorPath"] == "subsidiary"
    unknown = customer(ns, "bad-subsidiary", subsidiary={"id": "99"})
    assert unknown.status_code == 400 and error_code(unknown) == "INVALID_CONTENT"
    created = customer(ns, "ok", subsidiary={"id": "2"})
    assert created.status_code == 204
    assert ns.get(f"{RECORD}/customer/eid:ok").json()["subsidiary"] == {"id": "2"}
    assert customer(ns, "ok", phone="555").status_code == 204  # an update keeps its subsidiary


def test_integrated_ups_keeps_tracking_only_in_package_ups(ns, server):
    account(server, integrated_ship_methods={"101": "ups", "102": "fedex"})
    ups_order = new_order(ns, "shopify-order-ups", shipMethod={"id": "101"})
    transform = f"{RECORD}/salesOrder/{ups_order}/!transform/itemFulfillment"
    wrong = {
        "item": {"items": [{"orderLine": 1, "quantity": 1}]},
        "package": {"items": [{"packageTrackingNumber": "1Z1"}]},
    }
    strict = ns.post(transform, json=wrong, headers={"X-NetSuite-PropertyNameValidation": "Error"})
    assert strict.status_code == 400 and error_code(strict) == "INVALID_CONTENT"
    lost = ns.post(transform, json=wrong)  # default Warning: accepted, the plain list is dropped
    assert lost.status_code == 204
    right = {
        "item": {"items": [{"orderLine": 1, "quantity": 1}]},
        "packageUps": {"items": [{"packageTrackingNumberUps": "1Z2", "packageWeightUps": 1.5}]},
    }
    kept = ns.post(transform, json=right)
    assert kept.status_code == 204
    fulfillments = {
        f["id"]: f for f in httpx.get(f"{server.url}/_sandbox/state").json()["netsuite"]["item_fulfillments"]
    }
    assert fulfillments[lost.headers["Location"].rsplit("/", 1)[-1]]["tracking"] == []
    record = ns.get(kept.headers["Location"], params={"expandSubResources": "true"}).json()
    assert "package" not in record
    assert record["packageUps"]["items"][0]["packageTrackingNumberUps"] == "1Z2"

    fedex_order = new_order(ns, "shopify-order-fedex", shipMethod={"id": "102"})
    fedex = ns.post(
        f"{RECORD}/salesOrder/{fedex_order}/!transform/itemFulfillment",
        json={"packageFedEx": {"items": [{"packageTrackingNumberFedEx": "7712"}]}},
    )
    state = httpx.get(f"{server.url}/_sandbox/state").json()["netsuite"]["item_fulfillments"]
    mine = next(f for f in state if f["id"] == fedex.headers["Location"].rsplit("/", 1)[-1])
    assert (mine["packageSublist"], mine["tracking"]) == ("packageFedEx", ["7712"])


def test_cash_sale_payment_method_when_the_account_requires_it(ns, server):
    order_id = new_order(ns, "shopify-order-cash")
    assert ns.post(f"{RECORD}/salesOrder/{order_id}/!transform/itemFulfillment", json={}).status_code == 204
    account(server, cash_sale_requires_payment_method=True)
    cash_sale = f"{RECORD}/salesOrder/{order_id}/!transform/cashSale"
    missing = ns.post(cash_sale, json={})
    assert missing.status_code == 400 and error_code(missing) == "USER_ERROR"
    assert "Payment Method" in missing.json()["o:errorDetails"][0]["detail"]
    unknown = ns.post(cash_sale, json={"paymentMethod": {"id": "77"}})
    assert unknown.status_code == 400 and error_code(unknown) == "INVALID_CONTENT"
    billed = ns.post(cash_sale, json={"paymentMethod": {"id": "5"}})
    assert billed.status_code == 204
    assert ns.get(billed.headers["Location"]).json()["paymentMethod"] == {"id": "5", "refName": "VISA"}


def test_account_route_refuses_bad_input_and_reset_restores_defaults(ns, server):
    assert account(server, one_world="yes").status_code == 400
    assert account(server, integrated_ship_methods={"101": "dhl"}).status_code == 400
    assert account(server, unknown=True).status_code == 400
    assert httpx.post(f"{server.url}/_sandbox/netsuite/account", content=b"[").status_code == 400
    account(server, one_world=True)
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    assert httpx.get(f"{server.url}/_sandbox/netsuite/account").json() == {
        "one_world": False,
        "integrated_ship_methods": {},
        "cash_sale_requires_payment_method": False,
        "direct_refund_transforms": True,
        "refund_shipping_cost": True,
    }
