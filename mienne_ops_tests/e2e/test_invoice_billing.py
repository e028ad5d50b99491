"""Flow C bills by invoice when the rules say so (`BusinessRules.billing_record = "invoice"`).

Same drive as `test_fulfillment_orders`: flows A and B, DCL ships, then the shipments sensor ticks
a few times; the sales order gets exactly one invoice (keyed ``invoice-so-<id>``), no cash sale, and
the journey keeps the invoice's id.
"""

import pytest

from mienne_ops.devtools.harness import sandbox_state
from mienne_ops_tests.e2e.test_fulfillment_orders import place, to_dcl_and_ship

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("stack", [{"billing_record": "invoice"}], indirect=True)
def test_a_shipped_order_is_billed_once_with_an_invoice(stack):
    url, driver = stack["sandbox"].url, stack["driver"]
    created = place(url, line_items=[{"sku": "MN-CREAM-002", "quantity": 2}])
    to_dcl_and_ship(stack)
    for _ in range(3):  # the first tick bills; the others must create nothing
        driver.tick("dcl_shipments_sensor")
    netsuite = sandbox_state(url)["netsuite"]
    [order] = netsuite["sales_orders"]
    assert order["status"] == "G"  # billed
    assert netsuite["cash_sales"] == []
    [invoice] = netsuite["invoices"]
    assert invoice["externalId"] == f"invoice-so-{order['id']}" and invoice["createdFrom"] == order["id"]
    journey = stack["ledger"].journey(str(created["id"]))
    assert journey.invoice_id == invoice["id"] and journey.cash_sale_id is None
    assert [e for e in stack["ledger"].exceptions() if e.flow == "C"] == []
