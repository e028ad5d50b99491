"""The Shopify client's money calls (flow F) against the Shopify sandbox over real HTTP."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from mienne_ops.domain.shopify_money import SuggestedTransaction
from mienne_ops.errors import PermanentError, RemoteValidationError
from mienne_ops.integrations.http import HttpCore, RetryPolicy
from mienne_ops.integrations.shopify import ShopifyClient
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.catalog import build_catalog
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops.sandbox.server import SandboxServer
from mienne_ops_tests.support import single_system_server

FAST = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.05)

server = single_system_server("shopify")


@pytest.fixture
def sandbox(server) -> Iterator[SandboxServer]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server
    httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True})


@pytest.fixture
def client(sandbox) -> Iterator[ShopifyClient]:
    core = HttpCore(
        "shopify",
        f"{sandbox.url}/shopify",
        headers={"X-Shopify-Access-Token": credentials.SHOPIFY["access_token"]},
        retry=FAST,
        sleep=lambda _seconds: None,
    )
    shopify = ShopifyClient(core)
    yield shopify
    shopify.close()


# A taxed order with a discounted line, shipping with tax, paid by card and gift card.
ORDER = {
    "email": "ava.garcia0@example.com",
    "customer": {"id": 7001, "email": "ava.garcia0@example.com"},
    "line_items": [
        {
            "sku": "MN-SERUM-001",
            "quantity": 3,
            "price": "20.00",
            "discount_allocations": [{"amount": "6.00"}],
            "tax_lines": [{"title": "Tax", "price": "4.46", "rate": 0.0825}],
        },
        {
            "sku": "MN-CREAM-002",
            "quantity": 1,
            "price": "35.00",
            "tax_lines": [{"title": "Tax", "price": "2.89", "rate": 0.0825}],
        },
    ],
    "shipping_lines": [
        {"title": "Ground", "price": "8.00", "tax_lines": [{"title": "Tax", "price": "0.66", "rate": 0.0825}]}
    ],
    "total_discounts": "6.00",
    "total_tax": "8.01",
    # 60 - 6 + 35 + 8 + 8.01
    "total_price": "105.01",
    "transactions": [
        {"kind": "sale", "gateway": "gift_card", "amount": "25.00"},
        {"kind": "sale", "gateway": "shopify_payments", "amount": "80.01"},
    ],
}


def inject(sandbox, order: dict | None = None) -> str:
    response = httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=order or ORDER)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_order_money_reads_lines_transactions_and_customer(sandbox, client):
    order_id = inject(sandbox)
    money = client.order_money(order_id)
    assert money.id == order_id and money.gid.endswith(f"/Order/{order_id}")
    assert money.total == Decimal("105.01") and money.total_refunded == Decimal("0.00")
    assert money.display_financial_status == "PAID" and money.cancelled_at is None
    assert money.customer_id == "7001" and money.email == "ava.garcia0@example.com"
    assert [(line.sku, line.quantity, line.refundable_quantity) for line in money.lines] == [
        ("MN-SERUM-001", 3, 3),
        ("MN-CREAM-002", 1, 1),
    ]
    assert [(t.kind, t.gateway, t.amount) for t in money.transactions] == [
        ("SALE", "gift_card", Decimal("25.00")),
        ("SALE", "shopify_payments", Decimal("80.01")),
    ]
    assert money.refunds == []


def test_suggested_then_created_refund_agree_with_the_order_to_the_cent(sandbox, client):
    order_id = inject(sandbox)
    serum = client.order_money(order_id).lines[0]
    suggested = client.suggested_refund(order_id, lines=[(serum.gid, 1)], shipping_amount=Decimal("4.00"))
    # One of three discounted units: (60 - 6) / 3 = 18.00, tax 4.46 / 3 = 1.49; shipping 4.00 + 0.33 tax.
    assert suggested.subtotal == Decimal("18.00")
    assert suggested.total_tax == Decimal("1.82")
    assert suggested.shipping == Decimal("4.00") and suggested.maximum_shipping_refundable == Decimal("8.00")
    assert suggested.amount == Decimal("23.82")
    # Spread over the payments in the order they were taken: the gift card first.
    assert [(t.gateway, t.amount) for t in suggested.transactions] == [("gift_card", Decimal("23.82"))]

    refund = client.create_refund(
        order_id,
        lines=[(serum.gid, 1)],
        shipping_amount=Decimal("4.00"),
        transactions=suggested.transactions,
        note="wrong size",
        notify=False,
        restock=False,
        idempotency_key="refund-1",
    )
    assert refund.total == suggested.amount and refund.note == "wrong size"
    assert [(line.sku, line.quantity, line.subtotal, line.total_tax) for line in refund.lines] == [
        ("MN-SERUM-001", 1, Decimal("18.00"), Decimal("1.49"))
    ]
    assert refund.shipping == Decimal("4.00")
    assert [(t.kind, t.gateway, t.amount) for t in refund.transactions] == [
        ("REFUND", "gift_card", Decimal("23.82"))
    ]

    money = client.order_money(order_id)
    assert money.total_refunded == Decimal("23.82")
    assert money.display_financial_status == "PARTIALLY_REFUNDED"
    assert money.lines[0].refundable_quantity == 2
    assert money.refunds == [refund]

    # The rest of the order refunds to exactly what was paid.
    rest = client.suggested_refund(
        order_id, lines=[(serum.gid, 2), (money.lines[1].gid, 1)], refund_shipping=True
    )
    assert rest.amount + refund.total == Decimal("105.01")
    assert [(t.gateway, t.amount) for t in rest.transactions] == [
        ("gift_card", Decimal("1.18")),
        ("shopify_payments", Decimal("80.01")),
    ]
    client.create_refund(
        order_id,
        lines=[(serum.gid, 2), (money.lines[1].gid, 1)],
        shipping_amount=rest.shipping,
        transactions=rest.transactions,
        note="the rest",
        notify=False,
        restock=True,
        idempotency_key="refund-2",
    )
    money = client.order_money(order_id)
    assert money.display_financial_status == "REFUNDED" and money.total_refunded == Decimal("105.01")
    assert sum(r.total for r in money.refunds) == Decimal("105.01")
    assert sum(line.subtotal + line.total_tax for r in money.refunds for line in r.lines) + sum(
        r.shipping for r in money.refunds
    ) + Decimal("0.66") == Decimal("105.01")


def test_the_same_idempotency_key_replays_the_first_refund(sandbox, client):
    order_id = inject(sandbox)
    line = client.order_money(order_id).lines[1]
    suggested = client.suggested_refund(order_id, lines=[(line.gid, 1)])
    arguments = dict(
        lines=[(line.gid, 1)],
        shipping_amount=None,
        transactions=suggested.transactions,
        note="damaged",
        notify=True,
        restock=False,
    )
    first = client.create_refund(order_id, idempotency_key="k-1", **arguments)
    again = client.create_refund(order_id, idempotency_key="k-1", **arguments)
    assert again == first
    assert len(client.order_money(order_id).refunds) == 1
    # The same key with other parameters is refused; another key is another refund (here: too many).
    with pytest.raises(RemoteValidationError) as mismatch:
        client.create_refund(order_id, idempotency_key="k-1", **{**arguments, "note": "other"})
    assert mismatch.value.code == "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"
    with pytest.raises(RemoteValidationError) as twice:
        client.create_refund(order_id, idempotency_key="k-2", **arguments)
    assert "quantity" in str(twice.value).lower()


class LoseFirstRefundAnswer(httpx.HTTPTransport):
    """Sends every request; the answer to the first refundCreate is lost on the way back."""

    lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if b"refundCreate" in request.content and not self.lost:
            response.read()
            self.lost += 1
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


def test_a_lost_answer_is_retried_with_the_same_key_and_refunds_once(sandbox):
    transport = LoseFirstRefundAnswer()
    core = HttpCore(
        "shopify",
        f"{sandbox.url}/shopify",
        headers={"X-Shopify-Access-Token": credentials.SHOPIFY["access_token"]},
        retry=FAST,
        transport=transport,
        sleep=lambda _seconds: None,
    )
    client = ShopifyClient(core)
    order_id = inject(sandbox)
    line = client.order_money(order_id).lines[1]
    suggested = client.suggested_refund(order_id, lines=[(line.gid, 1)])
    refund = client.create_refund(
        order_id,
        lines=[(line.gid, 1)],
        shipping_amount=None,
        transactions=suggested.transactions,
        note="lost answer",
        notify=False,
        restock=False,
        idempotency_key="lost-1",
    )
    assert transport.lost == 1  # Shopify booked it once; the resend got the same refund back
    money = client.order_money(order_id)
    assert [r.gid for r in money.refunds] == [refund.gid]
    assert money.total_refunded == suggested.amount
    client.close()


def test_over_refunding_is_refused(sandbox, client):
    order_id = inject(sandbox)
    money = client.order_money(order_id)
    card = money.transactions[1]
    too_much = SuggestedTransaction(
        parent_gid=card.gid, gateway=card.gateway, amount=Decimal("80.02"), kind="REFUND"
    )
    with pytest.raises(RemoteValidationError) as raised:
        client.create_refund(
            order_id,
            lines=[],
            shipping_amount=None,
            transactions=[too_much],
            note="",
            notify=False,
            restock=False,
            idempotency_key="over-1",
        )
    assert "exceeds" in str(raised.value)
    with pytest.raises(RemoteValidationError):
        client.create_refund(
            order_id,
            lines=[(money.lines[0].gid, 4)],
            shipping_amount=None,
            transactions=[],
            note="",
            notify=False,
            restock=False,
            idempotency_key="over-2",
        )
    assert client.order_money(order_id).refunds == []


def test_cancel_with_refund_leaves_the_order_refunded_and_a_second_cancel_is_refused(sandbox, client):
    order_id = inject(sandbox)
    client.cancel_order(order_id, reason="customer", refund=True, restock=True, notify_customer=False)
    money = client.order_money(order_id)
    assert money.cancelled_at is not None
    assert money.display_financial_status == "REFUNDED" and money.total_refunded == Decimal("105.01")
    assert len(money.refunds) == 1 and {t.gateway for t in money.refunds[0].transactions} == {
        "gift_card",
        "shopify_payments",
    }
    with pytest.raises(PermanentError) as raised:
        client.cancel_order(order_id, reason="customer", refund=True, restock=True, notify_customer=False)
    assert raised.value.code == "already_cancelled"


def test_cancel_waits_for_a_slow_job(sandbox, client):
    httpx.post(f"{sandbox.url}/_sandbox/shopify/jobs", json={"cancel_job_requests": 4}).raise_for_status()
    order_id = inject(sandbox)
    client.cancel_order(order_id, reason="inventory", refund=False, restock=False, notify_customer=False)
    money = client.order_money(order_id)
    assert money.cancelled_at is not None and money.display_financial_status == "PAID"


def test_cancel_of_a_fulfilled_order_is_a_validation_error(sandbox, client):
    order = {**ORDER, "fulfillment_status": "fulfilled"}
    order_id = inject(sandbox, order)
    with pytest.raises(RemoteValidationError) as raised:
        client.cancel_order(order_id, reason="customer", refund=True, restock=False, notify_customer=False)
    assert raised.value.code == "INVALID"


def test_iter_refunds_yields_the_refunds_created_since(sandbox, client):
    since = datetime.now(UTC) - timedelta(minutes=5)
    first, second, untouched = inject(sandbox), inject(sandbox), inject(sandbox)
    httpx.post(
        f"{sandbox.url}/_sandbox/shopify/orders/{first}/refunds",
        json={"lines": [{"sku": "MN-CREAM-002", "quantity": 1}], "note": "admin"},
    ).raise_for_status()
    client.cancel_order(second, reason="customer", refund=True, restock=False, notify_customer=False)
    found = [
        (order.id, refund.note, refund.total) for order, refund in client.iter_refunds(created_since=since)
    ]
    assert sorted(found) == sorted([(first, "admin", Decimal("37.89")), (second, None, Decimal("105.01"))])
    assert untouched not in {order_id for order_id, _, _ in found}
    assert list(client.iter_refunds(created_since=datetime.now(UTC) + timedelta(hours=1))) == []


def test_iter_refunds_reads_whole_only_the_orders_with_a_new_refund(sandbox, client, monkeypatch):
    """Orders move all day (tags, fulfillments); reading each whole starved Shopify's bucket."""
    since = datetime.now(UTC) - timedelta(minutes=5)
    refunded, *others = [inject(sandbox) for _ in range(4)]
    httpx.post(
        f"{sandbox.url}/_sandbox/shopify/orders/{refunded}/refunds",
        json={"lines": [{"sku": "MN-CREAM-002", "quantity": 1}], "note": "admin"},
    ).raise_for_status()
    read_whole: list[str] = []
    order_money = client.order_money

    def counted(order_id, *args, **kwargs):
        read_whole.append(str(order_id))
        return order_money(order_id, *args, **kwargs)

    monkeypatch.setattr(client, "order_money", counted)
    found = [(order.id, refund.note) for order, refund in client.iter_refunds(created_since=since)]
    assert found == [(refunded, "admin")]
    assert read_whole == [refunded] and len(others) == 3  # the others, no refund, are not read whole


def refund_as_suggested(client, order_id: str, lines: list, suggested, key: str) -> None:
    client.create_refund(
        order_id,
        lines=lines,
        shipping_amount=suggested.shipping or None,
        transactions=suggested.transactions,
        note=key,
        notify=False,
        restock=False,
        idempotency_key=key,
    )


@pytest.mark.parametrize("seed", range(6))
def test_refunding_a_factory_order_in_parts_gives_back_exactly_what_was_paid(sandbox, client, seed):
    """Discounts, taxes (added or included), shipping and gift cards: the parts add up to the cent."""
    rng = random.Random(seed)
    payload = build_order(build_catalog(), rng, taxes_included=seed % 3 == 2, gift_card=seed % 2 == 0)
    order_id = inject(sandbox, payload)
    money = client.order_money(order_id)
    assert money.total == Decimal(payload["total_price"])
    assert sum(t.amount for t in money.transactions) == money.total
    first = [(line.gid, 1) for line in money.lines[:1]]
    part = client.suggested_refund(order_id, lines=first)
    refund_as_suggested(client, order_id, first, part, f"{seed}-a")
    money = client.order_money(order_id)
    rest = [(line.gid, line.refundable_quantity) for line in money.lines if line.refundable_quantity]
    final = client.suggested_refund(order_id, lines=rest, refund_shipping=True)
    refund_as_suggested(client, order_id, rest, final, f"{seed}-b")
    money = client.order_money(order_id)
    assert money.total_refunded == money.total == part.amount + final.amount
    assert money.display_financial_status == "REFUNDED"
    assert all(line.refundable_quantity == 0 for line in money.lines)
