"""The webhook receiver: HMAC verified in constant time, stored once per event id."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

from starlette.testclient import TestClient

from mienne_ops.webhooks.receiver import create_receiver_app
from mienne_ops_tests.support import new_ledger

SECRET = "test-app-secret"


def _signed(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _post(client, body: bytes, event_id: str, signature: str):
    return client.post(
        "/webhooks/shopify",
        content=body,
        headers={
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": signature,
            "X-Shopify-Event-Id": event_id,
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
            "X-Shopify-Shop-Domain": "mienne-test.myshopify.com",
            "Content-Type": "application/json",
        },
    )


def test_receiver_verifies_and_deduplicates(tmp_path, shopify_fixtures):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    examples = json.loads((shopify_fixtures / "rest_examples_2024-04" / "order.json").read_text())
    order = next(e["response"]["order"] for e in examples["examples"] if "order" in (e["response"] or {}))
    body = json.dumps(order).encode()
    client = TestClient(create_receiver_app(ledger, SECRET))

    assert _post(client, body, "evt-1", _signed(body)).json() == {"stored": True}
    assert _post(client, body, "evt-1", _signed(body)).json() == {"stored": False}
    assert _post(client, body, "evt-2", _signed(body, "wrong-secret")).status_code == 401
    tampered = body.replace(b'"id"', b'"Id"', 1)
    assert _post(client, tampered, "evt-3", _signed(body)).status_code == 401

    (event,) = ledger.events_after("shopify", 0)
    assert (event.event_id, event.topic, event.resource_id) == ("evt-1", "orders/create", str(order["id"]))
