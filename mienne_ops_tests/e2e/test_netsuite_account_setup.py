"""Order to cash in a NetSuite account set up the way many are: OneWorld, integrated carriers, and a
cash-sale form that requires a payment method.

The fake refuses a customer without a subsidiary and a cash sale without a payment method, and
keeps tracking only in the package sublist the order's ship method has (``packageUps`` for an
integrated UPS method, ``packageFedEx`` for FedEx, ``package`` otherwise): a fulfillment sent with
the wrong one loses its tracking numbers silently, as NetSuite drops an unknown field. The rules
name the subsidiary, the payment method and the sublist per ship method; every order goes through.
"""

import random

import httpx
import pytest

from mienne_ops.devtools.harness import ORDER_TO_CASH_SENSORS, sandbox_state
from mienne_ops.integrations.netsuite import client_for
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.order_factory import build_order

pytestmark = pytest.mark.e2e

ACCOUNT = {
    "one_world": True,
    "integrated_ship_methods": {"101": "ups", "102": "fedex", "103": "fedex"},
    "cash_sale_requires_payment_method": True,
}
RULES = {
    "netsuite_subsidiary_id": 2,
    "cash_sale_payment_method_id": 5,
    "netsuite_package_sublists": {"101": "packageUps", "102": "packageFedEx", "103": "packageFedEx"},
}
SUBLIST_BY_SHIP_METHOD = {101: "packageUps", 102: "packageFedEx", 103: "packageFedEx", 104: "package"}


@pytest.mark.parametrize("stack", [RULES], indirect=True)
def test_one_world_integrated_carriers_and_required_payment_method(stack):
    sandbox, driver, ledger = stack["sandbox"], stack["driver"], stack["ledger"]
    url = sandbox.url
    assert httpx.post(f"{url}/_sandbox/netsuite/account", json=ACCOUNT).json().items() >= ACCOUNT.items()
    httpx.post(f"{url}/_sandbox/dcl/limits", json={"requests_per_second": 50}).raise_for_status()
    rng = random.Random(31)
    placed = []
    for _ in range(8):
        response = httpx.post(f"{url}/_sandbox/shopify/orders", json=build_order(sandbox.hub.catalog, rng))
        response.raise_for_status()
        placed.append(response.json())

    driver.settle(
        ORDER_TO_CASH_SENSORS[:2], until=lambda: len(sandbox_state(url)["dcl"]["orders"]) == len(placed)
    )
    for order in sandbox_state(url)["dcl"]["orders"]:
        shipped = httpx.post(f"{url}/_sandbox/dcl/orders/{order['order_number']}/ship", json={})
        assert shipped.status_code == 200, shipped.text
    driver.settle(
        ORDER_TO_CASH_SENSORS[2:],
        until=lambda: len(sandbox_state(url)["netsuite"]["cash_sales"]) == len(placed),
    )

    assert ledger.exceptions(statuses=["open", "retrying"]) == []
    state = sandbox_state(url)["netsuite"]
    ship_method = {so["id"]: so["shipMethod"] for so in state["sales_orders"]}
    assert set(ship_method.values()) >= {101, 102}, ship_method  # both integrations exercised
    assert len(state["item_fulfillments"]) == len(placed)
    for fulfillment in state["item_fulfillments"]:
        assert (
            fulfillment["packageSublist"] == SUBLIST_BY_SHIP_METHOD[ship_method[fulfillment["createdFrom"]]]
        )
        assert fulfillment["tracking"] and all(fulfillment["tracking"]), fulfillment
    netsuite = client_for(credentials.NETSUITE, base_url=f"{url}/netsuite")
    for cash_sale in state["cash_sales"]:
        assert netsuite.get("cashSale", cash_sale["id"])["paymentMethod"]["id"] == "5"
    new_customers = [c for c in state["customers"] if c["externalId"]]
    assert new_customers
    for customer in new_customers:
        assert netsuite.get("customer", customer["id"])["subsidiary"]["id"] == "2"
    netsuite.close()
