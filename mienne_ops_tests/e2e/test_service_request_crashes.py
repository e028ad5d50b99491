"""Flow F after a crash at each step of a refund: re-running the request finishes it, and nothing is
refunded or booked twice (Shopify's @idempotent key, NetSuite's externalId, the request's notes)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.domain.service_requests import RequestDetails, RequestedLine, RequestKind, RequestStatus
from mienne_ops.flows.service_requests import request_rules
from mienne_ops.resources import build_resources
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops.sync.request_intake import RequestIntake
from mienne_ops.sync.service_requests import RequestWorker
from mienne_ops.sync.support_desk import SupportDesk
from mienne_ops_tests.e2e import flow_f_kit as kit

pytestmark = pytest.mark.e2e

SENSORS = ["shopify_orders_sensor", "netsuite_dispatch_sensor", "dcl_shipments_sensor"]


def _shipped_order(stack) -> dict:
    url = stack["sandbox"].url
    payload = build_order(stack["sandbox"].hub.catalog, random.Random(35), gift_card=False)
    payload["processed_at"] = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    placed = httpx.post(f"{url}/_sandbox/shopify/orders", json=payload, timeout=30).json()
    stack["driver"].settle(SENSORS)
    number = next(o["order_number"] for o in sandbox_state(url)["dcl"]["orders"])
    httpx.post(f"{url}/_sandbox/dcl/orders/{number}/ship", json={}, timeout=30).raise_for_status()
    stack["driver"].settle(SENSORS)
    assert stack["ledger"].journey(str(placed["id"])).cash_sale_id
    return placed


def _worker(stack, clients) -> RequestWorker:
    rules = stack["defs"].resources["rules"]
    return RequestWorker(
        shopify=clients["shopify"].client,
        netsuite=clients["netsuite"].client,
        dcl=clients["dcl"].client,
        stateset=clients["stateset"].client,
        ledger=stack["ledger"],
        rules=request_rules(rules),
        desk=SupportDesk(),
        recharge=clients["recharge"].client,
    )


@pytest.mark.parametrize("step", ["create_refund", "cash_refund", "refund_order"])
def test_a_refund_that_crashed_after_each_write_finishes_once(stack, monkeypatch, step):
    url = stack["sandbox"].url
    placed = _shipped_order(stack)
    resources = build_resources()
    clients = {key: resources[key] for key in ("shopify", "netsuite", "dcl", "stateset", "recharge")}
    worker = _worker(stack, clients)
    money = worker.shopify.order_money(str(placed["id"]))
    sku = money.lines[0].sku
    rules = stack["defs"].resources["rules"].ticket_rules()
    intake = RequestIntake(ledger=stack["ledger"], shopify=worker.shopify, desk=worker.desk, rules=rules)
    details = RequestDetails(lines=(RequestedLine(sku=sku, quantity=1),), shipping=True)
    request, _ = intake.from_operator(RequestKind.REFUND, placed["name"], details)
    target = {
        "create_refund": worker.shopify,
        "cash_refund": worker.netsuite,
        "refund_order": worker.stateset,
    }[step]
    kit.crash_once(monkeypatch, target, step)

    with pytest.raises(kit.Crash):
        worker.carry_out(request.request_key)
    assert stack["ledger"].request(request.id).status == RequestStatus.RECEIVED  # handed back, not lost
    worker.carry_out(request.request_key)  # the re-run
    worker.carry_out(request.request_key)  # and once more: nothing left to do

    done = stack["ledger"].request(request.id)
    assert done.status == RequestStatus.DONE
    (refund,) = worker.shopify.order_money(str(placed["id"])).refunds
    state = sandbox_state(url)
    (booked,) = [
        r
        for r in state["netsuite"]["cash_refunds"]
        if r["externalId"].endswith(refund.gid.rsplit("/", 1)[-1])
    ]
    assert Decimal(booked["total"]) == refund.total
    stateset = next(
        o
        for o in state["stateset"]["orders"]
        if o["data"]["metadata"]["external_id"].endswith(str(placed["id"]))
    )
    assert len(stateset["data"]["refunds"]) == 1
    for resource in clients.values():
        resource.client.close()
