"""A return after a crash at each external write, while it opens and when its parcel arrives: the re-run
finishes it, and every record exists once — NetSuite's RMA and item receipt (externalId), DCL's RMA
(looked up before a resend), the Shopify return (adopted by its lines) and refund (found by its note),
NetSuite's cash refund — with NetSuite's refund equal to Shopify's to the cent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.domain.returns import ReturnStatus
from mienne_ops.domain.service_requests import RequestDetails, RequestKind, RequestStatus
from mienne_ops.flows.service_requests import request_rules, return_rules
from mienne_ops.resources import build_resources
from mienne_ops.sync.request_intake import RequestIntake
from mienne_ops.sync.returns import ReturnWorker
from mienne_ops.sync.service_requests import RequestWorker
from mienne_ops.sync.support_desk import SupportDesk
from mienne_ops_tests.e2e import flow_f_kit as kit

pytestmark = pytest.mark.e2e

SENSORS = ["shopify_orders_sensor", "netsuite_dispatch_sensor", "dcl_shipments_sensor"]
OPENING = {"return_authorization": "netsuite", "create_rma": "dcl", "create_return": "shopify"}
RECEIVING = {"receive_return": "netsuite", "process_return": "shopify", "cash_refund": "netsuite"}


def _workers(stack, clients) -> tuple[RequestWorker, ReturnWorker]:
    rules = stack["defs"].resources["rules"]
    returns = ReturnWorker(
        shopify=clients["shopify"].client,
        netsuite=clients["netsuite"].client,
        dcl=clients["dcl"].client,
        stateset=clients["stateset"].client,
        ledger=stack["ledger"],
        rules=return_rules(rules),
        desk=SupportDesk(),
        recharge=clients["recharge"].client,
    )
    requests = RequestWorker(
        shopify=clients["shopify"].client,
        netsuite=clients["netsuite"].client,
        dcl=clients["dcl"].client,
        stateset=clients["stateset"].client,
        ledger=stack["ledger"],
        rules=request_rules(rules),
        desk=SupportDesk(),
        recharge=clients["recharge"].client,
        returns=returns,
    )
    return requests, returns


def _shipped_order(stack) -> dict:
    placed = kit.place(stack, 35)
    stack["driver"].settle(SENSORS)
    kit.shipped(stack, placed["id"])
    return placed


@pytest.mark.parametrize("stack", [{"return_instant_refund_max": None}], indirect=True)
@pytest.mark.parametrize("step", [*OPENING, *RECEIVING])
def test_a_return_that_crashed_after_each_write_finishes_once(stack, monkeypatch, step):
    url = stack["sandbox"].url
    placed = _shipped_order(stack)
    resources = build_resources()
    clients = {key: resources[key] for key in ("shopify", "netsuite", "dcl", "stateset", "recharge")}
    requests, returns = _workers(stack, clients)
    rules = stack["defs"].resources["rules"].ticket_rules()
    intake = RequestIntake(ledger=stack["ledger"], shopify=requests.shopify, desk=requests.desk, rules=rules)
    request, _ = intake.from_operator(
        RequestKind.RETURN, placed["name"], RequestDetails(reason="changed_mind")
    )
    system = {**OPENING, **RECEIVING}[step]
    target = getattr(returns, system)

    if step in OPENING:
        kit.crash_once(monkeypatch, target, step)
        with pytest.raises(kit.Crash):
            requests.carry_out(request.request_key)
        assert stack["ledger"].request(request.id).status == RequestStatus.RECEIVED  # handed back
    requests.carry_out(request.request_key)
    requests.carry_out(request.request_key)
    ret = stack["ledger"].return_by_key(request.request_key)
    assert ret is not None and ret.status == ReturnStatus.AWAITING_PARCEL

    units = [
        {"item_number": line.sku, "quantity": line.quantity, "condition": "good"}
        for line in kit.money(placed["id"]).lines
        if line.sku
    ]
    kit.post(url, f"/_sandbox/dcl/rmas/{ret.rma_number}/receive", {"lines": units})
    if step in RECEIVING:
        kit.crash_once(monkeypatch, target, step)
        with pytest.raises(kit.Crash):
            returns.advance(ret.return_key)
    for _ in range(2):  # the re-run, and once more: nothing left to do
        returns._rmas.clear()
        returns.advance(ret.return_key)

    ret = stack["ledger"].return_by_key(request.request_key)
    assert ret.status == ReturnStatus.COMPLETED
    state = sandbox_state(url)
    assert (
        len(
            [
                r
                for r in state["netsuite"]["return_authorizations"]
                if r["externalId"] == f"MIENNE-RETURN-{ret.id}"
            ]
        )
        == 1
    )
    assert len(state["dcl"]["rmas"]) == 1
    assert len([r for r in state["shopify"]["returns"] if str(r["order_id"]) == str(placed["id"])]) == 1
    (refund,) = kit.money(placed["id"]).refunds
    (booked,) = [
        r
        for r in state["netsuite"]["cash_refunds"]
        if r["createdFrom"] == str(ret.outcome["netsuite_rma_id"])
    ]
    assert Decimal(booked["total"]) == refund.total == ret.refunded > 0
    receipts = [
        r
        for r in state["netsuite"].get("item_receipts", [])
        if r.get("createdFrom") == str(ret.outcome["netsuite_rma_id"])
    ]
    assert len(receipts) == 1
    for resource in clients.values():
        resource.client.close()
