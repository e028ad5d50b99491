"""POST /webhooks/recharge: signatures checked, stored once per (topic, body), from the real emitter too."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
from starlette.testclient import TestClient

from mienne_ops.devtools.harness import ReceiverServer
from mienne_ops.integrations.recharge import sign_webhook
from mienne_ops.sandbox import credentials
from mienne_ops.webhooks.receiver import create_receiver_app
from mienne_ops_tests.support import new_ledger

SECRET = "rc-receiver-secret"
BODY = json.dumps(
    {"subscription": {"id": 300000001, "status": "cancelled", "updated_at": "2026-12-06T07:00:00"}}
)


def post(client: TestClient, body: bytes, headers: dict[str, str], topic: str = "subscription/cancelled"):
    return client.post(
        "/webhooks/recharge",
        content=body,
        headers={**headers, "X-Recharge-Topic": topic, "Content-Type": "application/json"},
    )


def test_signed_events_are_stored_once_and_bad_ones_refused(tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    client = TestClient(create_receiver_app(ledger, "shopify-secret", recharge_secret=SECRET))
    body = BODY.encode()
    now = int(time.time())
    assert post(client, body, sign_webhook(SECRET, body, now)).json() == {"stored": True}
    # A redelivery: same topic and body, a later timestamp -> the same event, stored once.
    assert post(client, body, sign_webhook(SECRET, body, now + 60)).json() == {"stored": False}
    assert post(client, body, sign_webhook("wrong-secret", body, now)).status_code == 401
    stale = sign_webhook(SECRET, body, int((datetime.now(UTC) - timedelta(hours=49)).timestamp()))
    assert post(client, body, stale).status_code == 401
    tampered = body.replace(b"cancelled", b"active")
    assert post(client, tampered, sign_webhook(SECRET, body, now)).status_code == 401
    assert post(client, body, {}).status_code == 401

    (event,) = ledger.events_after("recharge", 0)
    assert event.event_id == hashlib.sha256(b"subscription/cancelled" + body).hexdigest()
    assert (event.topic, event.resource_id) == ("subscription/cancelled", "300000001")
    assert event.triggered_at == "2026-12-06T12:00:00+00:00"  # updated_at, Eastern -> UTC


def test_the_same_body_under_another_topic_is_another_event(tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    client = TestClient(create_receiver_app(ledger, "shopify-secret", recharge_secret=SECRET))
    body = BODY.encode()
    headers = sign_webhook(SECRET, body, int(time.time()))
    assert post(client, body, headers).json() == {"stored": True}
    assert post(client, body, headers, topic="subscription/updated").json() == {"stored": True}
    assert ledger.count_events("recharge") == 2


def test_without_a_secret_there_is_no_recharge_route(tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    client = TestClient(create_receiver_app(ledger, "shopify-secret"))
    body = BODY.encode()
    assert post(client, body, sign_webhook(SECRET, body, int(time.time()))).status_code == 404


def test_the_sandbox_emitter_reaches_the_receiver_once_despite_duplicates(sandbox, tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    url = sandbox.url
    headers = {
        "X-Recharge-Access-Token": credentials.RECHARGE["access_token"],
        "X-Recharge-Version": "2021-11",
    }
    with ReceiverServer(ledger) as receiver:
        hook = {"address": receiver.recharge_url, "topic": "subscription/cancelled"}
        httpx.post(f"{url}/recharge/webhooks", json=hook, headers=headers).raise_for_status()
        owner = httpx.post(f"{url}/_sandbox/recharge/customers", json={"email": "kai@example.com"}).json()
        sub = httpx.post(
            f"{url}/_sandbox/recharge/subscriptions",
            json={
                "customer_id": owner["customer"]["id"],
                "sku": "MN-SERUM-001",
                "quantity": 1,
                "price": "24.00",
                "order_interval_unit": "week",
                "order_interval_frequency": 4,
            },
        ).json()["subscription"]
        httpx.post(
            f"{url}/_sandbox/faults", json={"recharge": {"webhook_duplicate_rate": 1}}
        ).raise_for_status()
        cancel = {"cancellation_reason": "moving"}
        httpx.post(
            f"{url}/recharge/subscriptions/{sub['id']}/cancel", json=cancel, headers=headers
        ).raise_for_status()
        deadline = time.monotonic() + 30
        while True:
            log = httpx.get(f"{url}/_sandbox/recharge/webhooks/log").json()["deliveries"]
            if len([e for e in log if e["outcome"] == "delivered"]) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert [e["outcome"] for e in log] == ["delivered", "delivered"]
    (event,) = ledger.events_after("recharge", 0)
    assert (event.topic, event.resource_id) == ("subscription/cancelled", str(sub["id"]))
    assert event.payload["subscription"]["status"] == "cancelled"
