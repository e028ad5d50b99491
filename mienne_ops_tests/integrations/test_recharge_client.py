"""The Recharge client against the Recharge sandbox over real HTTP, and webhook signatures."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from mienne_ops.errors import AuthError, PermanentError, RemoteValidationError, TransientError
from mienne_ops.integrations import recharge
from mienne_ops.integrations.recharge import RechargeResource, sign_webhook, verify_webhook
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.server import SandboxServer

SKU = "MN-SERUM-001"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    db = tmp_path_factory.mktemp("recharge_client") / "world.db"
    modules = ("mienne_ops.sandbox.shopify", "mienne_ops.sandbox.recharge")
    with SandboxServer(db, modules=modules) as running:
        yield running


@pytest.fixture
def url(server) -> Iterator[str]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server.url
    httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True})


@pytest.fixture
def client(url):
    made = make_client(url)
    yield made
    made.close()


def make_client(url: str, token: str = credentials.RECHARGE["access_token"]) -> recharge.RechargeClient:
    resource = RechargeResource(
        base_url=f"{url}/recharge",
        access_token=token,
        client_secret=credentials.RECHARGE["client_secret"],
        retry_base_delay_seconds=0.01,
        rate_limit_wait_seconds=0.05,
    )
    return resource.build_client()


def customer(url: str, email: str = "ava@example.com", shopify_id: str | None = "9001") -> int:
    body = {"email": email, "first_name": "Ava", "last_name": "Garcia", "shopify_customer_id": shopify_id}
    return httpx.post(f"{url}/_sandbox/recharge/customers", json=body).json()["customer"]["id"]


def subscription(url: str, customer_id: int, **overrides) -> dict:
    body = {
        "customer_id": customer_id,
        "sku": SKU,
        "quantity": 1,
        "price": "24.00",
        "order_interval_unit": "month",
        "order_interval_frequency": 1,
        **overrides,
    }
    return httpx.post(f"{url}/_sandbox/recharge/subscriptions", json=body).json()


def processed(url: str, price: str = "24.00", quantity: int = 2) -> dict:
    created = subscription(url, customer(url), price=price, quantity=quantity)
    return httpx.post(f"{url}/_sandbox/recharge/charges/{created['charge']['id']}/process").json()


def refunds_recorded(url: str) -> list[dict]:
    return httpx.get(f"{url}/_sandbox/state").json()["recharge"]["refunds"]


def test_a_wrong_token_is_an_auth_error(url):
    with pytest.raises(AuthError):
        make_client(url, token="sk_wrong").customer_by_email("ava@example.com")


def test_customer_by_email_and_by_shopify_id(url, client):
    wanted = customer(url, "Ava.Garcia@Example.com", shopify_id="424242")
    customer(url, "other@example.com", shopify_id="1")
    found = client.customer_by_email("ava.garcia@example.com")
    assert found is not None and found.id == wanted and found.shopify_customer_id == "424242"
    assert client.customer_by_email("nobody@example.com") is None
    by_gid = client.customer_by_shopify_id("gid://shopify/Customer/424242")
    assert by_gid is not None and by_gid.id == wanted
    assert client.customer_by_shopify_id("999") is None


def test_subscriptions_read_every_page(url, client, monkeypatch):
    monkeypatch.setattr(recharge, "MAX_PAGE", 2)
    owner = customer(url)
    ids = [subscription(url, owner)["subscription"]["id"] for _ in range(5)]
    subscription(url, customer(url, "someone@example.com"))
    subs = client.subscriptions(owner)
    assert [s.id for s in subs] == ids
    first = subs[0]
    assert (first.status, first.sku, first.quantity, first.price) == ("active", SKU, 1, Decimal("24.00"))
    assert isinstance(first.next_charge_scheduled_at, date)
    client.cancel_subscription(ids[0], reason="price")
    assert [s.id for s in client.subscriptions(owner)] == ids[1:]
    assert [s.id for s in client.subscriptions(owner, status="cancelled")] == ids[:1]
    assert len(client.subscriptions(owner, status=None)) == 5


def test_cancel_is_idempotent_whatever_recharge_answers_for_a_cancelled_one(url, client):
    sub_id = subscription(url, customer(url))["subscription"]["id"]
    cancelled = client.cancel_subscription(sub_id, reason="too expensive", comments="x" * 2000)
    assert cancelled.status == "cancelled" and cancelled.cancellation_reason == "too expensive"
    assert cancelled.cancelled_at is not None and cancelled.cancelled_at.tzinfo is not None
    assert client.cancel_subscription(sub_id, reason="again") == cancelled
    httpx.post(
        f"{url}/_sandbox/recharge/settings", json={"already_cancelled": "unchanged"}
    ).raise_for_status()
    assert client.cancel_subscription(sub_id, reason="again") == cancelled


def test_cancel_after_a_lost_answer_is_not_an_error(url, client):
    sub_id = subscription(url, customer(url))["subscription"]["id"]
    fault = {"operation": "cancel", "status": 503, "count": 1}
    httpx.post(f"{url}/_sandbox/recharge/write_faults", json=fault).raise_for_status()
    # The core resends after the 503; the fake answers 422 (already cancelled); the client re-reads.
    assert client.cancel_subscription(sub_id, reason="moving").status == "cancelled"


def test_skip_and_skip_again(url, client):
    created = subscription(url, customer(url), next_charge_scheduled_at="2030-02-02")
    sub_id, charge_id = created["subscription"]["id"], created["charge"]["id"]
    (queued,) = client.queued_charges(created["subscription"]["customer_id"])
    assert (queued.id, queued.subscription_ids, queued.scheduled_at) == (
        charge_id,
        [sub_id],
        date(2030, 2, 2),
    )
    skipped = client.skip_charge(charge_id, [sub_id])
    assert skipped.status == "skipped" and skipped.id == charge_id
    assert client.skip_charge(charge_id, [sub_id]) == skipped
    (next_one,) = client.queued_charges(created["subscription"]["customer_id"])
    assert next_one.scheduled_at == date(2030, 3, 2)


def test_set_next_charge_date(url, client):
    sub_id = subscription(url, customer(url))["subscription"]["id"]
    moved = client.set_next_charge_date(sub_id, date(2031, 1, 15))
    assert moved.next_charge_scheduled_at == date(2031, 1, 15)
    with pytest.raises(RemoteValidationError):
        client.set_next_charge_date(sub_id, date(2020, 1, 1))


def test_a_charge_being_processed_is_a_transient_error(url, client):
    created = subscription(url, customer(url))
    charge_id = created["charge"]["id"]
    httpx.post(f"{url}/_sandbox/recharge/charges/{charge_id}/processing", json={"processing": True})
    with pytest.raises(TransientError) as caught:
        client.skip_charge(charge_id, [created["subscription"]["id"]])
    assert caught.value.status == 409


def test_charge_for_shopify_order_finds_the_charge_that_made_it(url, client):
    done = processed(url)
    order_id = str(done["shopify_order"]["id"])
    processed(url)  # another subscription order, not this one
    found = client.charge_for_shopify_order(order_id)
    assert found is not None and found.id == done["charge"]["id"] and found.shopify_order_id == order_id
    assert client.charge_for_shopify_order(f"gid://shopify/Order/{order_id}") == found
    assert (found.status, found.total_price, found.currency) == ("success", Decimal("48.00"), "USD")
    assert found.processed_at is not None and found.processed_at.tzinfo is not None
    assert client.charge_for_shopify_order("123") is None


def test_refund_never_above_what_is_refundable(url, client):
    charge_id = processed(url)["charge"]["id"]
    part = client.refund_charge(charge_id, Decimal("10.00"))
    assert (part.status, part.total_refunds, part.refundable) == (
        "partially_refunded",
        Decimal("10.00"),
        Decimal("38"),
    )
    with pytest.raises(RemoteValidationError):
        client.refund_charge(charge_id, Decimal("38.01"))
    rest = client.refund_charge(charge_id, Decimal("0"), full_refund=True)
    assert (rest.status, rest.total_refunds) == ("refunded", Decimal("48.00"))
    assert [r["amount"] for r in refunds_recorded(url)] == ["10.00", "38.00"]


def test_refund_is_not_sent_twice_when_its_answer_is_lost_after_the_write(url, client):
    charge_id = processed(url)["charge"]["id"]
    fault = {"operation": "refund", "status": 503, "count": 1}
    httpx.post(f"{url}/_sandbox/recharge/write_faults", json=fault).raise_for_status()
    refunded = client.refund_charge(charge_id, Decimal("5.00"))
    assert refunded.total_refunds == Decimal("5.00")
    assert [r["amount"] for r in refunds_recorded(url)] == ["5.00"]


def test_refund_is_resent_when_the_lost_attempt_never_landed(url, client, monkeypatch):
    charge_id = processed(url)["charge"]["id"]
    send = client._send_refund
    attempts: list[Decimal] = []

    def lost_before_recharge(charge, amount, full):  # an ambiguous failure that changed nothing
        attempts.append(amount)
        return None if len(attempts) == 1 else send(charge, amount, full)

    monkeypatch.setattr(client, "_send_refund", lost_before_recharge)
    assert client.refund_charge(charge_id, Decimal("5.00")).total_refunds == Decimal("5.00")
    assert attempts == [Decimal("5.00"), Decimal("5.00")]
    assert [r["amount"] for r in refunds_recorded(url)] == ["5.00"]


def test_a_rerun_with_the_callers_expected_total_refunds_once(url, client):
    charge_id = processed(url)["charge"]["id"]
    first = client.refund_charge(charge_id, Decimal("7.00"), expected_total_refunds_before=Decimal("0"))
    again = client.refund_charge(charge_id, Decimal("7.00"), expected_total_refunds_before=Decimal("0"))
    assert first.total_refunds == again.total_refunds == Decimal("7.00")
    assert len(refunds_recorded(url)) == 1
    with pytest.raises(PermanentError):  # the charge moved in a way this refund cannot explain
        client.refund_charge(charge_id, Decimal("3.00"), expected_total_refunds_before=Decimal("1.00"))
    assert len(refunds_recorded(url)) == 1


def test_rate_limited_calls_wait_and_go_through(url, client):
    httpx.post(
        f"{url}/_sandbox/faults", json={"recharge": {"rate_429": 0.5, "burst_length": 2}}
    ).raise_for_status()
    owner = customer(url)
    for _ in range(3):
        subscription(url, owner)
    for _ in range(5):
        assert len(client.subscriptions(owner)) == 3


def test_iter_charges_reads_refunded_and_partially_refunded_since_a_time(url, client, monkeypatch):
    monkeypatch.setattr(recharge, "MAX_PAGE", 1)
    since = datetime.now(UTC) - timedelta(hours=1)
    full, part, untouched = (processed(url)["charge"]["id"] for _ in range(3))
    client.refund_charge(full, Decimal("0"), full_refund=True)
    client.refund_charge(part, Decimal("1.00"))
    seen = {c.id: c.status for c in client.iter_charges(updated_since=since)}
    assert seen == {full: "refunded", part: "partially_refunded"}
    assert untouched not in seen
    assert list(client.iter_charges(updated_since=datetime.now(UTC) + timedelta(hours=1))) == []


def test_subscribe_webhooks_is_idempotent(url, client):
    address = "https://receiver.example/webhooks/recharge"
    first = client.subscribe_webhooks(address)
    assert set(first) == set(recharge.WEBHOOK_TOPICS)
    assert client.subscribe_webhooks(address) == first
    assert len(client.webhooks()) == len(recharge.WEBHOOK_TOPICS)


# -- signatures -----------------------------------------------------------------------------------
SECRET = "rc-test-secret"
BODY = b'{"subscription": {"id": 1}}'
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def signed(at: datetime = NOW, body: bytes = BODY) -> dict[str, str]:
    return sign_webhook(SECRET, body, int(at.timestamp()))


def test_the_new_scheme_verifies_within_48_hours():
    headers = signed()
    assert verify_webhook(SECRET, BODY, headers, now=NOW + timedelta(hours=47))
    assert not verify_webhook(SECRET, BODY, headers, now=NOW + timedelta(hours=49))  # stale
    assert not verify_webhook(SECRET, BODY, headers, now=NOW - timedelta(hours=49))
    assert not verify_webhook(SECRET, BODY + b" ", headers, now=NOW)
    assert not verify_webhook("other-secret", BODY, headers, now=NOW)


def test_the_new_header_is_parsed_by_key_and_v2_ignored():
    stamp = int(NOW.timestamp())
    v1 = hmac.new(SECRET.encode(), f"{stamp}.".encode() + BODY, hashlib.sha256).hexdigest()
    reordered = {"X-Recharge-Webhook-Signature": f"v2=deadbeef, v1={v1}, t={stamp}"}
    assert verify_webhook(SECRET, BODY, reordered, now=NOW)
    only_v2 = {"X-Recharge-Webhook-Signature": f"t={stamp},v2={v1}"}
    assert not verify_webhook(SECRET, BODY, only_v2, now=NOW)


def test_legacy_sha256_only_when_the_new_header_is_absent():
    legacy = {"X-Recharge-Hmac-Sha256": hashlib.sha256(SECRET.encode() + BODY).hexdigest()}
    assert verify_webhook(SECRET, BODY, legacy, now=NOW)
    hmac_style = {"X-Recharge-Hmac-Sha256": hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()}
    assert not verify_webhook(SECRET, BODY, hmac_style, now=NOW)  # not an HMAC
    stale_new = {**legacy, **{k: v for k, v in signed(NOW - timedelta(days=3)).items() if "Webhook" in k}}
    assert not verify_webhook(SECRET, BODY, stale_new, now=NOW)  # the new header decides when present
    assert not verify_webhook(SECRET, BODY, {}, now=NOW)
    assert not verify_webhook("", BODY, legacy, now=NOW)
