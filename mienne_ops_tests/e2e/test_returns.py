"""Returns end to end through the real definitions, with API faults and duplicated/dropped helpdesk
deliveries on, and simulated time for the waits (a `returns_job` dated later, never a sleep): a US and
a Canadian return (different label services), a partial receipt refunded partially, an instant refund
at the carrier's first scan, expiry after the deadline, returns refused (outside the window, final
sale), the same request twice, a restart in the middle of the wait, Shopify's customer return requests,
and DCL receipts that do not match. In every case NetSuite's refunds equal Shopify's to the cent."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import pytest

from mienne_ops.devtools.harness import FlowDriver, sandbox_state
from mienne_ops.domain.returns import ReturnStatus
from mienne_ops.domain.service_requests import RequestStatus
from mienne_ops.integrations.netsuite import suiteql_literal
from mienne_ops.resources import build_resources, shopify_resource
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops.sync.inventory import LEVELS_QUERY
from mienne_ops_tests.e2e import flow_f_kit as kit

pytestmark = pytest.mark.e2e

SENSORS = [*kit.SENSORS, "returns_sensor"]
NO_INSTANT = {"return_instant_refund_max": None, "returns_poll_seconds": 0}


def _settle(stack, rounds: int = 8) -> None:
    kit.post(stack["sandbox"].url, "/_sandbox/faults", kit.FAULTS)
    stack["driver"].settle(SENSORS, rounds=rounds)


def _seed_for(stack, country: str, start: int = 100) -> int:
    """A seed whose demo customer lives in ``country`` (the catalog's customers are US or CA)."""
    catalog = stack["sandbox"].hub.catalog
    for seed in range(start, start + 500):
        order = build_order(catalog, random.Random(seed), gift_card=False)
        if order["shipping_address"]["country_code"] == country:
            return seed
    raise AssertionError(f"no demo customer in {country}")


def _seed_multi_line(stack, start: int = 200) -> int:
    """A seed whose order has at least two lines (a US customer)."""
    catalog = stack["sandbox"].hub.catalog
    for seed in range(start, start + 500):
        order = build_order(catalog, random.Random(seed), gift_card=False)
        if order["shipping_address"]["country_code"] == "US" and len(order["line_items"]) >= 2:
            return seed
    raise AssertionError("no two-line demo order")


def _shipped_order(stack, country: str = "US", seed: int | None = None) -> dict:
    """An order shipped by DCL and fulfilled in Shopify (flow C retries through the faults)."""
    placed = kit.place(stack, seed if seed is not None else _seed_for(stack, country))
    _settle(stack)
    kit.shipped(stack, placed["id"])
    for _ in range(5):
        if kit.money(placed["id"]).display_fulfillment_status == "FULFILLED":
            return placed
        _settle(stack)
    raise AssertionError(f"{placed['name']} was not fulfilled in Shopify")


def _start(stack, order_name: str, *lines: str, reason: str = "size_fit_issue", key: str | None = None):
    """A return started from the Dagster UI: `start_return_job` with its typed config (the stack's
    rules apply, which the CLI's defaults would not)."""
    config = {"order": order_name, "lines": list(lines), "reason": reason, "key": key}
    result = (
        stack["defs"]
        .get_job_def("start_return_job")
        .execute_in_process(
            run_config={"ops": {"start_return": {"config": config}}},
            instance=stack["driver"].instance,
            raise_on_error=False,
        )
    )
    assert result.success
    return result


def _returns(stack, order_id) -> list:
    return stack["ledger"].returns(shopify_order_id=str(order_id))


def _one_return(stack, order_id):
    (ret,) = _returns(stack, order_id)
    return ret


def _run_returns(stack, *, days: float = 0) -> None:
    """`returns_job` as the sensor launches it, dated ``days`` later (simulated time for the waits)."""
    as_of = (datetime.now(UTC) + timedelta(days=days)).isoformat()
    job = stack["defs"].get_job_def("returns_job")
    result = job.execute_in_process(
        run_config={"ops": {"advance_returns": {"config": {"as_of": as_of}}}},
        instance=stack["driver"].instance,
        raise_on_error=False,
    )
    assert result.success


def _receive(stack, rma_number: str, lines: list[dict]) -> None:
    kit.post(stack["sandbox"].url, f"/_sandbox/dcl/rmas/{rma_number}/receive", {"lines": lines})


def _scan(stack, rma_number: str) -> None:
    kit.post(stack["sandbox"].url, f"/_sandbox/dcl/rmas/{rma_number}/scan", {})


def _dcl_rma(stack, rma_number: str) -> dict:
    rmas = sandbox_state(stack["sandbox"].url)["dcl"]["rmas"]
    return next(r for r in rmas if r["rma_number"] == rma_number)


def _netsuite_refund_totals(stack, ret) -> Decimal:
    """What NetSuite booked for a return's refunds (cash refunds from its RMA)."""
    rma_id = str(ret.outcome["netsuite_rma_id"])
    state = sandbox_state(stack["sandbox"].url)["netsuite"]
    refunds = [r for r in state["cash_refunds"] if r["createdFrom"] == rma_id]
    return sum((Decimal(str(r["total"])) for r in refunds), Decimal("0"))


def _shopify_refund_totals(order_id) -> Decimal:
    return sum((r.total for r in kit.money(order_id).refunds), Decimal("0"))


def _all_lines(order_id) -> list[str]:
    return [f"{line.sku}:{line.quantity}" for line in kit.money(order_id).lines if line.sku]


def _units(order_id) -> list[dict]:
    return [
        {"item_number": line.sku, "quantity": line.quantity, "condition": "good"}
        for line in kit.money(order_id).lines
        if line.sku
    ]


def _stock(skus: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Available per SKU at the FR warehouse: NetSuite's (flow E's SuiteQL) and DCL's."""
    where = f" AND i.itemid IN ({', '.join(suiteql_literal(s) for s in skus)})"
    resources = build_resources()
    with (
        resources["netsuite"].process_config_and_initialize_cm() as netsuite,
        resources["dcl"].process_config_and_initialize_cm() as dcl,
    ):
        books = {
            row["sku"]: int(float(row["quantityavailable"] or 0))
            for row in netsuite.client.suiteql(LEVELS_QUERY.format(location=1, skus=where))
        }
        warehouse = {
            row["item_number"]: int(row["available"])
            for row in dcl.client.iter_items(item_numbers=skus, inventory_type="FR")
        }
    return books, warehouse


@pytest.mark.parametrize("stack", [NO_INSTANT], indirect=True)
def test_a_us_return_from_a_ticket_gets_a_label_and_is_refunded_when_dcl_receives_it(stack):
    url = stack["sandbox"].url
    placed = _shipped_order(stack, "US")
    ticket = kit.ticket(stack, placed["name"], ["return-request"])
    _settle(stack)
    returned = {u["item_number"]: u["quantity"] for u in _units(placed["id"])}
    books_before, warehouse_before = _stock(sorted(returned))

    ret = _one_return(stack, placed["id"])
    assert ret.status == ReturnStatus.AWAITING_PARCEL and ret.rma_number
    assert ret.outcome["label_service"].startswith("USPS")
    (reply,) = kit.replies(url, ticket["id"])
    assert ret.outcome["label_url"] in reply and placed["name"] in reply

    _receive(stack, ret.rma_number, _units(placed["id"]))
    _settle(stack)
    ret = _one_return(stack, placed["id"])
    assert ret.status == ReturnStatus.COMPLETED
    assert _shopify_refund_totals(placed["id"]) == ret.refunded == _netsuite_refund_totals(stack, ret) > 0
    assert ret.money_pending == 0 and ret.refunded == ret.value  # the lines with their tax
    replies = kit.replies(url, ticket["id"])
    assert len(replies) == 3  # the label, "we received it", "refunded"
    # The goods are back in stock once in each system (DCL's receipt, NetSuite's item receipt): flow E
    # sees NetSuite and DCL agree, and nothing was counted twice (Shopify's restock is overwritten by
    # flow E's next push of NetSuite's level).
    books_after, warehouse_after = _stock(sorted(returned))
    for sku, units in returned.items():
        assert books_after[sku] - books_before[sku] == units == warehouse_after[sku] - warehouse_before[sku]


@pytest.mark.parametrize("stack", [NO_INSTANT], indirect=True)
def test_a_canadian_return_gets_the_canadian_label_service(stack):
    placed = _shipped_order(stack, "CA")
    _start(stack, placed["name"], *_all_lines(placed["id"])[:1])
    ret = _one_return(stack, placed["id"])
    assert ret.country == "CA" and ret.outcome["label_service"].startswith("CANADA POST")
    assert _dcl_rma(stack, ret.rma_number)["shipping_carrier"] == "CANADA POST"


def _fulfillment_ids(order_id) -> list[str]:
    with shopify_resource().process_config_and_initialize_cm() as shopify:
        return [f["id"] for f in shopify.client.fulfillments(int(order_id))]


def _shopify_returns(stack, order_id) -> list[dict]:
    wanted = f"gid://shopify/Order/{order_id}"
    return [
        r
        for r in sandbox_state(stack["sandbox"].url)["shopify"]["returns"]
        if str(r.get("order_id") or r.get("orderId")) in (wanted, str(order_id))
    ]


def _stateset_returns(stack) -> list[dict]:
    return sandbox_state(stack["sandbox"].url)["stateset"]["returns"]


def _netsuite_rma(stack, ret) -> dict:
    rmas = sandbox_state(stack["sandbox"].url)["netsuite"]["return_authorizations"]
    return next(r for r in rmas if r["id"] == str(ret.outcome["netsuite_rma_id"]))


def _open_exceptions(stack, reason: str) -> list:
    return [e for e in stack["ledger"].exceptions(flow="F") if e.reason == reason and e.status == "open"]


@pytest.mark.parametrize("stack", [NO_INSTANT], indirect=True)
def test_a_partial_receipt_is_refunded_partially_and_the_rest_when_it_arrives(stack):
    placed = _shipped_order(stack, "US", seed=_seed_multi_line(stack))
    _start(stack, placed["name"])
    ret = _one_return(stack, placed["id"])
    first, *rest = _units(placed["id"])

    _receive(stack, ret.rma_number, [first])
    _settle(stack)
    ret = _one_return(stack, placed["id"])
    assert ret.status == ReturnStatus.RECEIVED
    assert ret.refunded_units == {first["item_number"]: first["quantity"]}
    assert 0 < ret.refunded < ret.value
    assert _shopify_refund_totals(placed["id"]) == ret.refunded == _netsuite_refund_totals(stack, ret)

    _receive(stack, ret.rma_number, rest)
    _settle(stack)
    ret = _one_return(stack, placed["id"])
    assert ret.status == ReturnStatus.COMPLETED and len(ret.outcome["refunds"]) == 2
    assert _shopify_refund_totals(placed["id"]) == ret.refunded == _netsuite_refund_totals(stack, ret)
    assert _netsuite_rma(stack, ret)["status"] in ("G", "H")


@pytest.mark.parametrize(
    "stack",
    [
        {
            "return_instant_refund_max": "100000.00",
            "return_instant_refund_min_orders": 1,
            "returns_poll_seconds": 0,
        }
    ],
    indirect=True,
)
def test_an_instant_return_is_refunded_at_the_first_scan_and_never_again_on_receipt(stack):
    placed = _shipped_order(stack, "US")
    _start(stack, placed["name"])
    ret = _one_return(stack, placed["id"])
    assert ret.instant and ret.refunded == 0

    _scan(stack, ret.rma_number)
    _settle(stack)
    ret = _one_return(stack, placed["id"])
    assert ret.status == ReturnStatus.IN_TRANSIT and ret.refunded == ret.value > 0  # all of it, tax too
    refunded_before_receipt = ret.refunded
    assert (
        _shopify_refund_totals(placed["id"]) == refunded_before_receipt == _netsuite_refund_totals(stack, ret)
    )

    _receive(stack, ret.rma_number, _units(placed["id"]))
    _settle(stack)
    ret = _one_return(stack, placed["id"])
    assert ret.status == ReturnStatus.COMPLETED and len(ret.outcome["refunds"]) == 1
    assert (
        _shopify_refund_totals(placed["id"]) == refunded_before_receipt == _netsuite_refund_totals(stack, ret)
    )


@pytest.mark.parametrize("stack", [NO_INSTANT], indirect=True)
def test_a_return_nobody_sends_gets_reminded_then_expires_and_closes_everywhere(stack):
    url = stack["sandbox"].url
    placed = _shipped_order(stack, "US")
    ticket = kit.ticket(stack, placed["name"], ["return-request"])
    _settle(stack)
    ret = _one_return(stack, placed["id"])

    _run_returns(stack, days=4)  # the first reminder is due after 3 days
    _run_returns(stack, days=4)  # ... and sent once
    assert _one_return(stack, placed["id"]).reminders_sent == 1
    assert len(kit.replies(url, ticket["id"])) == 2

    _run_returns(stack, days=15)  # past the 14-day deadline
    ret = _one_return(stack, placed["id"])
    assert ret.status == ReturnStatus.EXPIRED and ret.refunded == 0
    assert _netsuite_rma(stack, ret)["status"] in ("C", "H")
    (shopify_return,) = _shopify_returns(stack, placed["id"])
    assert shopify_return["status"].upper() == "CANCELED"
    stateset = next(r for r in _stateset_returns(stack) if r["id"] == ret.outcome["stateset_return_id"])
    assert stateset["status"] == "CANCELLED"
    replies = kit.replies(url, ticket["id"])
    assert len(replies) == 3 and "expired" in replies[-1]
    assert not _shopify_refund_totals(placed["id"])


@pytest.mark.parametrize("stack", [NO_INSTANT], indirect=True)
def test_returns_outside_the_window_or_of_final_sale_items_are_refused_and_explained(stack):
    url = stack["sandbox"].url
    late = _shipped_order(stack, "US")
    long_ago = datetime.now(UTC) - timedelta(days=45)
    for fulfillment_id in _fulfillment_ids(late["id"]):
        number = fulfillment_id.rsplit("/", 1)[-1]
        kit.post(
            url, f"/_sandbox/shopify/fulfillments/{number}/backdate", {"created_at": long_ago.isoformat()}
        )
        kit.post(
            url,
            f"/_sandbox/shopify/fulfillments/{number}/delivered",
            {"at": (long_ago + timedelta(days=3)).isoformat()},
        )
    final = _shipped_order(stack, "US", seed=_seed_for(stack, "US", start=300))
    sku = kit.money(final["id"]).lines[0].sku
    kit.post(url, "/_sandbox/shopify/products/tags", {"sku": sku, "tags": ["final-sale"]})

    late_ticket = kit.ticket(stack, late["name"], ["return-request"])
    final_ticket = kit.ticket(stack, final["name"], ["return-request"])
    _settle(stack)

    assert _returns(stack, late["id"]) == [] and _returns(stack, final["id"]) == []
    (late_reply,) = kit.replies(url, late_ticket["id"])
    (final_reply,) = kit.replies(url, final_ticket["id"])
    assert "return" in late_reply.lower() and sku in final_reply
    statuses = {r.status for r in [*kit.requests(stack, late["id"]), *kit.requests(stack, final["id"])]}
    assert statuses == {RequestStatus.REFUSED}
    assert sandbox_state(url)["dcl"]["rmas"] == []


@pytest.mark.parametrize("stack", [NO_INSTANT], indirect=True)
def test_the_same_return_asked_twice_is_one_return_everywhere(stack):
    url = stack["sandbox"].url
    placed = _shipped_order(stack, "US")
    ticket = kit.ticket(stack, placed["name"], ["return-request"])
    _settle(stack)
    again = {"body_text": "Did you get my return request?"}
    kit.post(url, f"/_sandbox/gorgias/tickets/{ticket['id']}/messages", again)
    _settle(stack)
    for _ in range(2):  # an operator launches the same return twice from the UI
        _start(stack, placed["name"], reason="changed_mind")
    returns = _returns(stack, placed["id"])
    # One from the ticket (however often it is delivered), one from the operator's command (typed
    # twice): the second finds the first's units already in a return and is refused.
    assert len([r for r in returns if r.status != ReturnStatus.FAILED]) == 1
    assert len(sandbox_state(url)["dcl"]["rmas"]) == 1
    assert len(_shopify_returns(stack, placed["id"])) == 1
    assert len(kit.replies(url, ticket["id"])) == 1


@pytest.mark.parametrize("stack", [NO_INSTANT], indirect=True)
def test_a_restart_in_the_middle_of_the_wait_still_refunds_once(stack):
    placed = _shipped_order(stack, "US")
    _start(stack, placed["name"])
    # The deployment restarts: new code location, new daemon (fresh sensor cursors), same ledger.
    with dg.instance_for_test() as instance:
        stack["driver"] = FlowDriver(stack["defs"], instance)
        ret = _one_return(stack, placed["id"])
        _receive(stack, ret.rma_number, _units(placed["id"]))
        _settle(stack)
        _run_returns(stack)  # and a re-run of the job changes nothing
    ret = _one_return(stack, placed["id"])
    assert ret.status == ReturnStatus.COMPLETED and len(ret.outcome["refunds"]) == 1
    assert len(kit.money(placed["id"]).refunds) == 1
    assert _shopify_refund_totals(placed["id"]) == ret.refunded == _netsuite_refund_totals(stack, ret)


@pytest.mark.parametrize("stack", [NO_INSTANT], indirect=True)
def test_a_customer_return_request_in_shopify_is_approved_with_our_label_and_processed(stack):
    url = stack["sandbox"].url
    placed = _shipped_order(stack, "US")
    line = kit.money(placed["id"]).lines[0]
    body = {"lines": [{"sku": line.sku, "quantity": 1, "reason": "SIZE_TOO_SMALL"}]}
    kit.post(url, f"/_sandbox/shopify/orders/{placed['id']}/return_requests", body)
    _settle(stack)
    ret = _one_return(stack, placed["id"])
    assert ret.expected == {line.sku: 1}
    (shopify_return,) = _shopify_returns(stack, placed["id"])
    assert shopify_return["status"].upper() == "OPEN"

    _receive(stack, ret.rma_number, [{"item_number": line.sku, "quantity": 1, "condition": "good"}])
    _settle(stack)
    ret = _one_return(stack, placed["id"])
    assert ret.status == ReturnStatus.COMPLETED
    (shopify_return,) = _shopify_returns(stack, placed["id"])
    assert shopify_return["status"].upper() == "CLOSED"
    assert _shopify_refund_totals(placed["id"]) == ret.refunded == _netsuite_refund_totals(stack, ret) > 0


@pytest.mark.parametrize("stack", [NO_INSTANT], indirect=True)
def test_wrong_items_damaged_goods_and_unknown_rmas_are_exceptions_and_block_nothing(stack):
    url = stack["sandbox"].url
    placed = _shipped_order(stack, "US", seed=_seed_multi_line(stack))
    _start(stack, placed["name"])
    ret = _one_return(stack, placed["id"])
    (good, damaged, *_rest) = _units(placed["id"])
    stranger = next(s.sku for s in stack["sandbox"].hub.catalog.sellable_skus() if s.sku not in ret.expected)
    _receive(
        stack,
        ret.rma_number,
        [
            good,
            {**damaged, "condition": "damaged"},
            {"item_number": stranger, "quantity": 1, "condition": "good"},
        ],
    )
    portal = kit.post(
        url,
        "/_sandbox/dcl/rmas",
        {
            "lines": [{"item_number": stranger, "quantity": 1}],
            "shipping_address": {
                "attention": "Walk In",
                "address1": "1 Main St",
                "city": "Fremont",
                "state_province": "CA",
                "postal_code": "94538",
                "country_code": "US",
            },
            "rma_type": "T01",
            "disposition": 2,
        },
    )
    kit.post(url, f"/_sandbox/dcl/rmas/{portal['rma_number']}/receive", {})
    _settle(stack)

    ret = _one_return(stack, placed["id"])
    assert ret.refunded_units == {good["item_number"]: good["quantity"]}
    assert _shopify_refund_totals(placed["id"]) == ret.refunded == _netsuite_refund_totals(stack, ret) > 0
    assert _open_exceptions(stack, "damaged") and _open_exceptions(stack, "wrong_item")
    assert [e.key for e in _open_exceptions(stack, "unknown_rma")] == [portal["rma_number"]]


@pytest.mark.parametrize("stack", [NO_INSTANT], indirect=True)
def test_a_label_dcl_refuses_fails_the_return_visibly_and_closes_its_rma(stack):
    url = stack["sandbox"].url
    placed = _shipped_order(stack, "US")
    kit.post(url, "/_sandbox/dcl/rmas/settings", {"refuse_labels": True})
    _start(stack, placed["name"])
    ret = _one_return(stack, placed["id"])
    assert ret.status == ReturnStatus.FAILED and ret.outcome["failure_code"] == "label_refused"
    assert _netsuite_rma(stack, ret)["status"] in ("C", "H")
    assert sandbox_state(url)["dcl"]["rmas"] == [] and _shopify_returns(stack, placed["id"]) == []
    (request,) = kit.requests(stack, placed["id"])
    assert request.status == RequestStatus.FAILED
    assert [e.reason for e in stack["ledger"].exceptions(flow="F") if e.key == request.request_key] == [
        "label_refused"
    ]
