"""Flow F end to end through the real definitions, with API faults and duplicated/dropped helpdesk
deliveries on: cancellations before dispatch, at DCL and too late; refunds to the cent in NetSuite;
Shopify admin refunds followed; the approval queue; subscription orders; bad input explained."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from click.testing import CliRunner

from mienne_ops.cli import main
from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.domain.service_requests import RequestStatus
from mienne_ops.resources import shopify_resource
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops.sandbox.traffic import TrafficSimulator

pytestmark = pytest.mark.e2e

SENSORS = [
    "shopify_orders_sensor",
    "order_holds_sensor",
    "netsuite_dispatch_sensor",
    "dcl_shipments_sensor",
    "service_requests_sensor",
]
API_FAULTS = {"error_rate": 0.05, "rate_429": 0.03, "burst_length": 2}
FAULTS = {
    "seed": 11,
    **{system: API_FAULTS for system in ("shopify", "netsuite", "dcl", "stateset", "recharge")},
    "gorgias": {**API_FAULTS, "webhook_drop_rate": 0.3, "webhook_duplicate_rate": 0.3},
}
CUSTOMER = "ana.lopez@example.com"


def _post(url: str, path: str, body: dict) -> dict:
    response = httpx.post(f"{url}{path}", json=body, timeout=30)
    assert response.status_code in (200, 201), response.text
    return response.json()


def _place(stack, seed: int, **changes) -> dict:
    payload = build_order(stack["sandbox"].hub.catalog, random.Random(seed), gift_card=False)
    payload.setdefault("processed_at", (datetime.now(UTC) - timedelta(hours=2)).isoformat())
    payload["email"] = CUSTOMER
    payload.update(changes)
    return _post(stack["sandbox"].url, "/_sandbox/shopify/orders", payload)


def _settle(stack, rounds: int = 8) -> None:
    _post(stack["sandbox"].url, "/_sandbox/faults", FAULTS)
    stack["driver"].settle(SENSORS, rounds=rounds)


def _ticket(stack, order_name: str, tags: list[str], email: str = CUSTOMER, text: str = "") -> dict:
    body = {
        "customer_email": email,
        "customer_name": "Ana Lopez",
        "subject": f"About my order {order_name}",
        "body_text": text or f"Hello, please help with order {order_name}. Thanks!",
        "tags": tags,
    }
    return _post(stack["sandbox"].url, "/_sandbox/gorgias/tickets", body)


def _messages(url: str, ticket_id) -> list[dict]:
    return [m for m in sandbox_state(url)["gorgias"]["messages"] if str(m["ticket_id"]) == str(ticket_id)]


def _replies(url: str, ticket_id) -> list[str]:
    return [m["body_text"] for m in _messages(url, ticket_id) if m["from_agent"] and m["public"]]


def _notes(url: str, ticket_id) -> list[str]:
    return [m["body_text"] for m in _messages(url, ticket_id) if m["channel"] == "internal-note"]


def _money(order_id):
    with shopify_resource().process_config_and_initialize_cm() as shopify:
        return shopify.client.order_money(str(order_id))


def _sales_order(url: str, order_id) -> dict | None:
    external_id = f"shopify-order-{order_id}"
    return next(
        (s for s in sandbox_state(url)["netsuite"]["sales_orders"] if s["externalId"] == external_id), None
    )


def _dcl_order(url: str, order_id) -> dict | None:
    so = _sales_order(url, order_id)
    if so is None:
        return None
    return next((o for o in sandbox_state(url)["dcl"]["orders"] if o["order_number"] == so["tranId"]), None)


def _stateset_order(url: str, order_id) -> dict | None:
    orders = sandbox_state(url)["stateset"]["orders"]
    wanted = f"shopify-order-{order_id}"
    return next((o for o in orders if o["data"]["metadata"].get("external_id") == wanted), None)


def _cash_refunds(url: str) -> list[dict]:
    return sandbox_state(url)["netsuite"]["cash_refunds"]


def _requests(stack, order_id) -> list:
    return stack["ledger"].requests(shopify_order_id=str(order_id))


def _cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _shipped(stack, order_id) -> None:
    """Ship the whole order at DCL and let flow C book it (item fulfillment, cash sale)."""
    url = stack["sandbox"].url
    dcl = _dcl_order(url, order_id)
    assert dcl is not None, "the order should be at DCL"
    _post(url, f"/_sandbox/dcl/orders/{dcl['order_number']}/ship", {})
    _settle(stack)
    assert stack["ledger"].journey(str(order_id)).cash_sale_id


@pytest.mark.parametrize("stack", [{"hold_edit_window_minutes": 30}], indirect=True)
def test_a_ticket_cancels_an_order_before_dispatch_and_it_never_reaches_dcl(stack):
    url = stack["sandbox"].url
    placed = _place(stack, 21, processed_at=datetime.now(UTC).isoformat())  # inside its edit window
    _settle(stack)
    assert _sales_order(url, placed["id"]) is not None and _dcl_order(url, placed["id"]) is None

    ticket = _ticket(stack, placed["name"], ["cancel-order"])
    _settle(stack)

    found = _requests(stack, placed["id"])
    (request,) = found
    assert request.status == RequestStatus.DONE, request.decision
    money = _money(placed["id"])
    assert money.cancelled_at is not None and money.total_refunded == money.total
    assert all(line["isClosed"] for line in _sales_order(url, placed["id"])["lines"])
    assert _stateset_order(url, placed["id"])["status"] == "CANCELLED"
    assert stack["ledger"].journey(str(placed["id"])).stage == "cancelled"
    assert not stack["ledger"].active_holds([str(placed["id"])])
    (reply,) = _replies(url, ticket["id"])
    assert "cancelled" in reply and f"{money.total:.2f}" in reply
    assert any(request.request_key in note for note in _notes(url, ticket["id"]))

    _settle(stack)  # the window ends, the sensors tick on: still nothing at DCL, nothing twice
    assert _dcl_order(url, placed["id"]) is None
    assert len(_replies(url, ticket["id"])) == 1 and len(_money(placed["id"]).refunds) == 1


def test_an_order_at_dcl_is_cancelled_there_first_and_too_late_once_picking_started(stack):
    url = stack["sandbox"].url
    early, late = _place(stack, 22), _place(stack, 23)
    _settle(stack)
    assert _dcl_order(url, early["id"]) and _dcl_order(url, late["id"])
    _post(url, f"/_sandbox/dcl/orders/{_dcl_order(url, late['id'])['order_number']}/stage", {"stage": 20})

    # An operator cancels from the Dagster UI: the job with its typed config.
    job = stack["defs"].resolve_job_def("cancel_order_job")
    run_config = {"ops": {"cancel_order": {"config": {"order": early["name"], "reason": "customer"}}}}
    result = job.execute_in_process(run_config=run_config, instance=stack["driver"].instance)
    assert result.success and result.output_for_node("cancel_order") == "done"
    assert _dcl_order(url, early["id"])["is_cancelled"]
    assert _money(early["id"]).cancelled_at is not None

    ticket = _ticket(stack, late["name"], ["cancel-order"])
    _settle(stack)
    (request,) = _requests(stack, late["id"])
    assert request.status == RequestStatus.REFUSED and "packing" in request.decision[0]
    assert not _dcl_order(url, late["id"])["is_cancelled"] and _money(late["id"]).cancelled_at is None
    assert not stack["ledger"].active_holds([str(late["id"])])  # the cancellation's hold is gone
    (reply,) = _replies(url, ticket["id"])
    assert "could not cancel" in reply and "return" in reply


def test_a_partial_refund_of_a_line_and_shipping_is_booked_in_netsuite_to_the_cent(stack):
    url = stack["sandbox"].url
    placed = _place(stack, 35)  # two lines, 12.50 shipping
    _settle(stack)
    _shipped(stack, placed["id"])
    sku = _money(placed["id"]).lines[0].sku

    for _ in range(2):  # the same command twice is one request, one refund
        _cli("refunds", "create", placed["name"], "--line", f"{sku}:1", "--shipping")
    money = _money(placed["id"])
    (refund,) = money.refunds
    (booked,) = [
        r for r in _cash_refunds(url) if r["externalId"] == f"SHOPIFY-REFUND-{refund.gid.rsplit('/', 1)[-1]}"
    ]
    assert Decimal(booked["total"]) == refund.total > 0
    assert refund.shipping > 0 and [line.sku for line in refund.lines] == [sku]
    (request,) = _requests(stack, placed["id"])
    assert request.status == RequestStatus.DONE and Decimal(request.outcome["money_refunded"]) == refund.total
    payment = _stateset_order(url, placed["id"])["data"]["payment_details"]
    assert payment["status"] == "partially_refunded"
    assert Decimal(str(payment["amount_refunded"])) == refund.total


@pytest.mark.parametrize("stack", [{"refund_approval_above": None}], indirect=True)
def test_a_refund_ticket_delivered_twice_refunds_once(stack):
    url = stack["sandbox"].url
    placed = _place(stack, 31)
    _settle(stack)
    _shipped(stack, placed["id"])
    ticket = _ticket(stack, placed["name"], ["refund-request"])
    _settle(stack)
    # The customer writes again on the same ticket: Gorgias calls us again (and the faults duplicate
    # deliveries): still one request, one refund, one reply.
    _post(url, f"/_sandbox/gorgias/tickets/{ticket['id']}/messages", {"body_text": "Any news on my refund?"})
    _settle(stack)
    (refund,) = _money(placed["id"]).refunds
    assert refund.total == _money(placed["id"]).total
    assert len(_requests(stack, placed["id"])) == 1 and len(_replies(url, ticket["id"])) == 1
    assert (
        len([r for r in _cash_refunds(url) if r["externalId"].endswith(refund.gid.rsplit("/", 1)[-1])]) == 1
    )


@pytest.mark.parametrize("stack", [{"refund_approval_above": None}], indirect=True)
def test_a_zendesk_refund_request_is_refunded_and_answered_on_the_ticket(stack):
    url = stack["sandbox"].url
    placed = _place(stack, 33)
    _settle(stack)
    _shipped(stack, placed["id"])
    body = {
        "requester_email": CUSTOMER,
        "subject": f"Refund for {placed['name']}",
        "body": "It arrived but I would like my money back.",
        "tags": ["refund-request"],
    }
    ticket = _post(url, "/_sandbox/zendesk/tickets", body)["ticket"]
    _settle(stack)

    (refund,) = _money(placed["id"]).refunds
    assert refund.total == _money(placed["id"]).total
    booked = [r for r in _cash_refunds(url) if r["externalId"].endswith(refund.gid.rsplit("/", 1)[-1])]
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
    placed = _place(stack, 25)
    _settle(stack)
    _shipped(stack, placed["id"])
    sku = _money(placed["id"]).lines[0].sku
    _post(url, f"/_sandbox/shopify/orders/{placed['id']}/refunds", {"lines": [{"sku": sku, "quantity": 1}]})
    _settle(stack)

    (refund,) = _money(placed["id"]).refunds
    key = f"SHOPIFY-REFUND-{refund.gid.rsplit('/', 1)[-1]}"
    (booked,) = [r for r in _cash_refunds(url) if r["externalId"] == key]
    assert Decimal(booked["total"]) == refund.total

    today = date.today().isoformat()
    job = stack["defs"].resolve_job_def("refund_reconciliation_job")
    result = job.execute_in_process(instance=stack["driver"].instance, partition_key=today)
    (check,) = [e for e in result.get_asset_check_evaluations()]
    assert check.passed, check.metadata


@pytest.mark.parametrize("stack", [{"refund_approval_above": "1.00"}], indirect=True)
def test_an_over_cap_refund_waits_for_approval_and_then_goes_through_once(stack):
    url = stack["sandbox"].url
    placed = _place(stack, 26)
    _settle(stack)
    _shipped(stack, placed["id"])
    output = _cli("refunds", "create", placed["name"], "--full")
    assert "awaiting_approval" in output
    (request,) = _requests(stack, placed["id"])
    assert not _money(placed["id"]).refunds
    assert request.request_key in _cli("approvals", "list")

    _cli("approvals", "approve", str(request.id))
    _settle(stack)
    _settle(stack)
    (refund,) = _money(placed["id"]).refunds
    assert stack["ledger"].request(request.id).status == RequestStatus.DONE
    assert (
        len([r for r in _cash_refunds(url) if r["externalId"].endswith(refund.gid.rsplit("/", 1)[-1])]) == 1
    )


@pytest.mark.parametrize("action", ["cancel-subscription", "skip-subscription"])
def test_a_subscription_order_is_cancelled_with_its_subscription_and_refunded_on_recharge(stack, action):
    url = stack["sandbox"].url
    sku = next(s.sku for s in stack["sandbox"].hub.catalog.skus if s.item_type == "InvtPart" and s.active)
    customer = _post(
        url, "/_sandbox/recharge/customers", {"email": CUSTOMER, "first_name": "Ana", "last_name": "Lopez"}
    )
    created = _post(
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
    processed = _post(url, f"/_sandbox/recharge/charges/{created['charge']['id']}/process", {})
    order = processed["shopify_order"]

    ticket = _ticket(stack, order["name"], ["cancel-order", action])
    _settle(stack)

    (request,) = _requests(stack, order["id"])
    assert request.status == RequestStatus.DONE, request.decision
    recharge = sandbox_state(url)["recharge"]
    subscription = next(s for s in recharge["subscriptions"] if s["id"] == created["subscription"]["id"])
    charge = next(c for c in recharge["charges"] if c["id"] == created["charge"]["id"])
    assert Decimal(str(charge["total_refunds"])) == Decimal(str(charge["total_price"]))
    assert _money(order["id"]).cancelled_at is not None
    (reply,) = _replies(url, ticket["id"])
    if action == "cancel-subscription":
        assert subscription["status"] == "cancelled" and "subscription is cancelled" in reply
    else:  # the subscription goes on; its next charge is skipped
        later = sorted((c for c in recharge["charges"] if c["id"] != charge["id"]), key=lambda c: c["id"])
        # The next charge is skipped; Recharge then queues the one after it.
        assert subscription["status"] == "active" and [c["status"] for c in later] == ["skipped", "queued"]
        assert "next subscription delivery is skipped" in reply


def test_bad_requests_are_explained_on_the_ticket_and_in_the_queue_and_block_nothing(stack):
    url = stack["sandbox"].url
    mine, theirs, good = _place(stack, 27), _place(stack, 28, email="bo@example.com"), _place(stack, 29)
    _settle(stack)
    _cli("orders", "cancel", mine["name"])
    unknown = _ticket(stack, "#99999", ["cancel-order"])
    not_mine = _ticket(stack, theirs["name"], ["cancel-order"])
    twice = _ticket(stack, mine["name"], ["cancel-order"])
    fine = _ticket(stack, good["name"], ["cancel-order"])
    _settle(stack)

    reasons = {e.key: e.reason for e in stack["ledger"].exceptions(flow="F")}
    assert reasons[f"gorgias:{unknown['id']}:cancel"] == "unknown_order"
    assert reasons[f"gorgias:{not_mine['id']}:cancel"] == "not_the_customer"
    assert reasons[f"gorgias:{twice['id']}:cancel"] == "already_cancelled"
    for ticket in (unknown, not_mine, twice):
        assert _notes(url, ticket["id"]) and not _replies(url, ticket["id"])
    assert _money(theirs["id"]).cancelled_at is None
    assert _money(good["id"]).cancelled_at is not None and _replies(url, fine["id"])

    too_much = CliRunner().invoke(main, ["refunds", "create", good["name"], "--amount", "100000.00"])
    euros = CliRunner().invoke(
        main, ["refunds", "create", theirs["name"], "--amount", "1.00", "--currency", "EUR"]
    )
    assert too_much.exit_code != 0 and "above_refundable" in too_much.output
    assert euros.exit_code != 0 and "currency_mismatch" in euros.output
    assert not _money(theirs["id"]).refunds


def test_the_demo_traffics_support_tickets_are_answered(stack):
    """What `make dev` shows: the traffic simulator's customers write in, flow F answers them."""
    url = stack["sandbox"].url
    placed = _place(stack, 30)
    _settle(stack)
    ticket = TrafficSimulator(stack["sandbox"].hub, seed=3).open_support_ticket()
    assert ticket is not None and "cancel-order" in {t["name"] for t in ticket["tags"]}
    _settle(stack)
    (reply,) = _replies(url, ticket["id"])
    assert placed["name"] in reply and "cancelled" in reply
    assert _money(placed["id"]).cancelled_at is not None


@pytest.mark.parametrize(
    "stack", [{"billing_record": "invoice", "refund_approval_above": None}], indirect=True
)
def test_an_invoiced_order_is_refunded_by_credit_memo_and_customer_refund_to_the_cent(stack):
    url = stack["sandbox"].url
    placed = _place(stack, 37)  # three lines, 12.50 shipping
    _settle(stack)
    assert not sandbox_state(url)["netsuite"]["invoices"]
    dcl = _dcl_order(url, placed["id"])
    _post(url, f"/_sandbox/dcl/orders/{dcl['order_number']}/ship", {})
    _settle(stack)
    assert stack["ledger"].journey(str(placed["id"])).invoice_id
    sku = _money(placed["id"]).lines[0].sku
    _cli("refunds", "create", placed["name"], "--line", f"{sku}:1", "--shipping")

    (refund,) = _money(placed["id"]).refunds
    key = f"SHOPIFY-REFUND-{refund.gid.rsplit('/', 1)[-1]}"
    netsuite = sandbox_state(url)["netsuite"]
    (memo,) = [m for m in netsuite["credit_memos"] if m["externalId"] == key]
    (paid,) = [r for r in netsuite["customer_refunds"] if r["externalId"] == f"{key}-PAY"]
    assert Decimal(memo["total"]) == Decimal(paid["total"]) == refund.total > 0
