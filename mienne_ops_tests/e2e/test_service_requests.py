"""Flow F end to end through the real definitions, with API faults and duplicated/dropped helpdesk
deliveries on: cancellations before dispatch, at DCL and too late; refunds to the cent in NetSuite;
Shopify admin refunds followed; the approval queue; subscription orders; bad input explained."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from click.testing import CliRunner

from mienne_ops.cli import main
from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.domain.service_requests import RequestStatus
from mienne_ops.sandbox.traffic import TrafficSimulator
from mienne_ops_tests.e2e import flow_f_kit as kit
from mienne_ops_tests.e2e.flow_f_kit import CUSTOMER

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("stack", [{"hold_edit_window_minutes": 30}], indirect=True)
def test_a_ticket_cancels_an_order_before_dispatch_and_it_never_reaches_dcl(stack):
    url = stack["sandbox"].url
    placed = kit.place(stack, 21, processed_at=datetime.now(UTC).isoformat())  # inside its edit window
    kit.settle(stack)
    assert kit.sales_order(url, placed["id"]) is not None and kit.dcl_order(url, placed["id"]) is None

    ticket = kit.ticket(stack, placed["name"], ["cancel-order"])
    kit.settle(stack)

    found = kit.requests(stack, placed["id"])
    (request,) = found
    assert request.status == RequestStatus.DONE, request.decision
    money = kit.money(placed["id"])
    assert money.cancelled_at is not None and money.total_refunded == money.total
    assert all(line["isClosed"] for line in kit.sales_order(url, placed["id"])["lines"])
    assert kit.stateset_order(url, placed["id"])["status"] == "CANCELLED"
    assert stack["ledger"].journey(str(placed["id"])).stage == "cancelled"
    assert not stack["ledger"].active_holds([str(placed["id"])])
    (reply,) = kit.replies(url, ticket["id"])
    assert "cancelled" in reply and f"{money.total:.2f}" in reply
    assert any(request.request_key in note for note in kit.notes(url, ticket["id"]))

    kit.settle(stack)  # the window ends, the sensors tick on: still nothing at DCL, nothing twice
    assert kit.dcl_order(url, placed["id"]) is None
    assert len(kit.replies(url, ticket["id"])) == 1 and len(kit.money(placed["id"]).refunds) == 1


def test_an_order_at_dcl_is_cancelled_there_first_and_too_late_once_picking_started(stack):
    url = stack["sandbox"].url
    early, late = kit.place(stack, 22), kit.place(stack, 23)
    kit.settle(stack)
    assert kit.dcl_order(url, early["id"]) and kit.dcl_order(url, late["id"])
    kit.post(
        url, f"/_sandbox/dcl/orders/{kit.dcl_order(url, late['id'])['order_number']}/stage", {"stage": 20}
    )

    # An operator cancels from the Dagster UI: the job with its typed config.
    job = stack["defs"].resolve_job_def("cancel_order_job")
    run_config = {"ops": {"cancel_order": {"config": {"order": early["name"], "reason": "customer"}}}}
    result = job.execute_in_process(run_config=run_config, instance=stack["driver"].instance)
    assert result.success and result.output_for_node("cancel_order") == "done"
    assert kit.dcl_order(url, early["id"])["is_cancelled"]
    assert kit.money(early["id"]).cancelled_at is not None

    ticket = kit.ticket(stack, late["name"], ["cancel-order"])
    kit.settle(stack)
    (request,) = kit.requests(stack, late["id"])
    assert request.status == RequestStatus.REFUSED and "packing" in request.decision[0]
    assert not kit.dcl_order(url, late["id"])["is_cancelled"] and kit.money(late["id"]).cancelled_at is None
    assert not stack["ledger"].active_holds([str(late["id"])])  # the cancellation's hold is gone
    (reply,) = kit.replies(url, ticket["id"])
    assert "could not cancel" in reply and "return" in reply


def test_a_partial_refund_of_a_line_and_shipping_is_booked_in_netsuite_to_the_cent(stack):
    url = stack["sandbox"].url
    placed = kit.place(stack, 35)  # two lines, 12.50 shipping
    kit.settle(stack)
    kit.shipped(stack, placed["id"])
    sku = kit.money(placed["id"]).lines[0].sku

    for _ in range(2):  # the same command twice is one request, one refund
        kit.cli("refunds", "create", placed["name"], "--line", f"{sku}:1", "--shipping")
    money = kit.money(placed["id"])
    (refund,) = money.refunds
    (booked,) = [
        r
        for r in kit.cash_refunds(url)
        if r["externalId"] == f"SHOPIFY-REFUND-{refund.gid.rsplit('/', 1)[-1]}"
    ]
    assert Decimal(booked["total"]) == refund.total > 0
    assert refund.shipping > 0 and [line.sku for line in refund.lines] == [sku]
    (request,) = kit.requests(stack, placed["id"])
    assert request.status == RequestStatus.DONE and Decimal(request.outcome["money_refunded"]) == refund.total
    payment = kit.stateset_order(url, placed["id"])["data"]["payment_details"]
    assert payment["status"] == "partially_refunded"
    assert Decimal(str(payment["amount_refunded"])) == refund.total


@pytest.mark.parametrize("stack", [{"refund_approval_above": None}], indirect=True)
def test_a_refund_ticket_delivered_twice_refunds_once(stack):
    url = stack["sandbox"].url
    placed = kit.place(stack, 31)
    kit.settle(stack)
    kit.shipped(stack, placed["id"])
    ticket = kit.ticket(stack, placed["name"], ["refund-request"])
    kit.settle(stack)
    # The customer writes again on the same ticket: Gorgias calls us again (and the faults duplicate
    # deliveries): still one request, one refund, one reply.
    kit.post(
        url, f"/_sandbox/gorgias/tickets/{ticket['id']}/messages", {"body_text": "Any news on my refund?"}
    )
    kit.settle(stack)
    (refund,) = kit.money(placed["id"]).refunds
    assert refund.total == kit.money(placed["id"]).total
    assert len(kit.requests(stack, placed["id"])) == 1 and len(kit.replies(url, ticket["id"])) == 1
    assert (
        len([r for r in kit.cash_refunds(url) if r["externalId"].endswith(refund.gid.rsplit("/", 1)[-1])])
        == 1
    )


@pytest.mark.parametrize("stack", [{"refund_approval_above": None}], indirect=True)
def test_a_zendesk_refund_request_is_refunded_and_answered_on_the_ticket(stack):
    url = stack["sandbox"].url
    placed = kit.place(stack, 33)
    kit.settle(stack)
    kit.shipped(stack, placed["id"])
    body = {
        "requester_email": CUSTOMER,
        "subject": f"Refund for {placed['name']}",
        "body": "It arrived but I would like my money back.",
        "tags": ["refund-request"],
    }
    ticket = kit.post(url, "/_sandbox/zendesk/tickets", body)["ticket"]
    kit.settle(stack)

    (refund,) = kit.money(placed["id"]).refunds
    assert refund.total == kit.money(placed["id"]).total
    booked = [r for r in kit.cash_refunds(url) if r["externalId"].endswith(refund.gid.rsplit("/", 1)[-1])]
    assert [Decimal(r["total"]) for r in booked] == [refund.total]
    (zendesk,) = [t for t in sandbox_state(url)["zendesk"]["tickets"] if t["id"] == ticket["id"]]
    public = [
        c["body"] for c in zendesk["comments"] if c["public"] and c["author_id"] != zendesk["requester_id"]
    ]
    internal = [c["body"] for c in zendesk["comments"] if not c["public"]]
    assert len(public) == 1 and f"{refund.total:.2f}" in public[0]
    assert internal and "shopify_refund_id" in internal[0]


def test_a_refund_made_in_the_shopify_admin_reaches_netsuite_and_reconciles(stack):
    url = stack["sandbox"].url
    placed = kit.place(stack, 25)
    kit.settle(stack)
    kit.shipped(stack, placed["id"])
    sku = kit.money(placed["id"]).lines[0].sku
    kit.post(
        url, f"/_sandbox/shopify/orders/{placed['id']}/refunds", {"lines": [{"sku": sku, "quantity": 1}]}
    )
    kit.settle(stack)

    (refund,) = kit.money(placed["id"]).refunds
    key = f"SHOPIFY-REFUND-{refund.gid.rsplit('/', 1)[-1]}"
    (booked,) = [r for r in kit.cash_refunds(url) if r["externalId"] == key]
    assert Decimal(booked["total"]) == refund.total

    today = date.today().isoformat()
    job = stack["defs"].resolve_job_def("refund_reconciliation_job")
    result = job.execute_in_process(instance=stack["driver"].instance, partition_key=today)
    (check,) = [e for e in result.get_asset_check_evaluations()]
    assert check.passed, check.metadata


@pytest.mark.parametrize("stack", [{"refund_approval_above": "1.00"}], indirect=True)
def test_an_over_cap_refund_waits_for_approval_and_then_goes_through_once(stack):
    url = stack["sandbox"].url
    placed = kit.place(stack, 26)
    kit.settle(stack)
    kit.shipped(stack, placed["id"])
    output = kit.cli("refunds", "create", placed["name"], "--full")
    assert "awaiting_approval" in output
    (request,) = kit.requests(stack, placed["id"])
    assert not kit.money(placed["id"]).refunds
    assert request.request_key in kit.cli("approvals", "list")

    kit.cli("approvals", "approve", str(request.id))
    kit.settle(stack)
    kit.settle(stack)
    (refund,) = kit.money(placed["id"]).refunds
    assert stack["ledger"].request(request.id).status == RequestStatus.DONE
    assert (
        len([r for r in kit.cash_refunds(url) if r["externalId"].endswith(refund.gid.rsplit("/", 1)[-1])])
        == 1
    )


@pytest.mark.parametrize("action", ["cancel-subscription", "skip-subscription"])
def test_a_subscription_order_is_cancelled_with_its_subscription_and_refunded_on_recharge(stack, action):
    url = stack["sandbox"].url
    sku = next(s.sku for s in stack["sandbox"].hub.catalog.skus if s.item_type == "InvtPart" and s.active)
    customer = kit.post(
        url, "/_sandbox/recharge/customers", {"email": CUSTOMER, "first_name": "Ana", "last_name": "Lopez"}
    )
    created = kit.post(
        url,
        "/_sandbox/recharge/subscriptions",
        {
            "customer_id": customer["customer"]["id"],
            "sku": sku,
            "quantity": 1,
            "price": "30.00",
            "order_interval_unit": "month",
            "order_interval_frequency": 1,
        },
    )
    processed = kit.post(url, f"/_sandbox/recharge/charges/{created['charge']['id']}/process", {})
    order = processed["shopify_order"]

    ticket = kit.ticket(stack, order["name"], ["cancel-order", action])
    kit.settle(stack)

    (request,) = kit.requests(stack, order["id"])
    assert request.status == RequestStatus.DONE, request.decision
    recharge = sandbox_state(url)["recharge"]
    subscription = next(s for s in recharge["subscriptions"] if s["id"] == created["subscription"]["id"])
    charge = next(c for c in recharge["charges"] if c["id"] == created["charge"]["id"])
    assert Decimal(str(charge["total_refunds"])) == Decimal(str(charge["total_price"]))
    assert kit.money(order["id"]).cancelled_at is not None
    (reply,) = kit.replies(url, ticket["id"])
    if action == "cancel-subscription":
        assert subscription["status"] == "cancelled" and "subscription is cancelled" in reply
    else:  # the subscription goes on; its next charge is skipped
        later = sorted((c for c in recharge["charges"] if c["id"] != charge["id"]), key=lambda c: c["id"])
        # The next charge is skipped; Recharge then queues the one after it.
        assert subscription["status"] == "active" and [c["status"] for c in later] == ["skipped", "queued"]
        assert "next subscription delivery is skipped" in reply


def test_bad_requests_are_explained_on_the_ticket_and_in_the_queue_and_block_nothing(stack):
    url = stack["sandbox"].url
    mine, theirs, good = (
        kit.place(stack, 27),
        kit.place(stack, 28, email="bo@example.com"),
        kit.place(stack, 29),
    )
    kit.settle(stack)
    kit.cli("orders", "cancel", mine["name"])
    unknown = kit.ticket(stack, "#99999", ["cancel-order"])
    not_mine = kit.ticket(stack, theirs["name"], ["cancel-order"])
    twice = kit.ticket(stack, mine["name"], ["cancel-order"])
    fine = kit.ticket(stack, good["name"], ["cancel-order"])
    kit.settle(stack)

    reasons = {e.key: e.reason for e in stack["ledger"].exceptions(flow="F")}
    assert reasons[f"gorgias:{unknown['id']}:cancel"] == "unknown_order"
    assert reasons[f"gorgias:{not_mine['id']}:cancel"] == "not_the_customer"
    assert reasons[f"gorgias:{twice['id']}:cancel"] == "already_cancelled"
    for ticket in (unknown, not_mine, twice):
        assert kit.notes(url, ticket["id"]) and not kit.replies(url, ticket["id"])
    assert kit.money(theirs["id"]).cancelled_at is None
    assert kit.money(good["id"]).cancelled_at is not None and kit.replies(url, fine["id"])

    too_much = CliRunner().invoke(main, ["refunds", "create", good["name"], "--amount", "100000.00"])
    euros = CliRunner().invoke(
        main, ["refunds", "create", theirs["name"], "--amount", "1.00", "--currency", "EUR"]
    )
    assert too_much.exit_code != 0 and "above_refundable" in too_much.output
    assert euros.exit_code != 0 and "currency_mismatch" in euros.output
    assert not kit.money(theirs["id"]).refunds


def test_the_demo_traffics_support_tickets_are_answered(stack):
    """What `make dev` shows: the traffic simulator's customers write in, flow F answers them."""
    url = stack["sandbox"].url
    placed = kit.place(stack, 30)
    kit.settle(stack)
    ticket = TrafficSimulator(stack["sandbox"].hub, seed=3).open_support_ticket()
    assert ticket is not None and "cancel-order" in {t["name"] for t in ticket["tags"]}
    kit.settle(stack)
    (reply,) = kit.replies(url, ticket["id"])
    assert placed["name"] in reply and "cancelled" in reply
    assert kit.money(placed["id"]).cancelled_at is not None


@pytest.mark.parametrize(
    "stack", [{"billing_record": "invoice", "refund_approval_above": None}], indirect=True
)
def test_an_invoiced_order_is_refunded_by_credit_memo_and_customer_refund_to_the_cent(stack):
    url = stack["sandbox"].url
    placed = kit.place(stack, 37)  # three lines, 12.50 shipping
    kit.settle(stack)
    assert not sandbox_state(url)["netsuite"]["invoices"]
    dcl = kit.dcl_order(url, placed["id"])
    kit.post(url, f"/_sandbox/dcl/orders/{dcl['order_number']}/ship", {})
    kit.settle(stack)
    assert stack["ledger"].journey(str(placed["id"])).invoice_id
    sku = kit.money(placed["id"]).lines[0].sku
    kit.cli("refunds", "create", placed["name"], "--line", f"{sku}:1", "--shipping")

    (refund,) = kit.money(placed["id"]).refunds
    key = f"SHOPIFY-REFUND-{refund.gid.rsplit('/', 1)[-1]}"
    netsuite = sandbox_state(url)["netsuite"]
    (memo,) = [m for m in netsuite["credit_memos"] if m["externalId"] == key]
    (paid,) = [r for r in netsuite["customer_refunds"] if r["externalId"] == f"{key}-PAY"]
    assert Decimal(memo["total"]) == Decimal(paid["total"]) == refund.total > 0
