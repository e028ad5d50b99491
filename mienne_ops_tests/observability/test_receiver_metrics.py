"""``GET /metrics`` on the receiver over real HTTP: deliveries and duplicates counted per source and
topic, and only documented names exposed."""

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime

import httpx

from mienne_ops.devtools.harness import ReceiverServer
from mienne_ops.observability.catalog import EXPOSED_SERIES
from mienne_ops.sandbox import credentials
from mienne_ops_tests.observability.scrape import names, scrape, value
from mienne_ops_tests.support import new_ledger


def _deliver(url: str, topic: str, event_id: str, body: bytes) -> httpx.Response:
    secret = credentials.SHOPIFY["api_secret"].encode()
    signature = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode()
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Shop-Domain": credentials.SHOPIFY["shop_domain"],
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
    }
    return httpx.post(url, content=body, headers=headers, timeout=30)


def test_deliveries_and_duplicates_are_counted_and_every_name_is_documented(tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    topic = f"orders/test-{uuid.uuid4().hex[:8]}"  # counts of this topic start at zero
    body = json.dumps({"id": 4242}).encode()
    with ReceiverServer(ledger) as receiver:
        base = f"http://127.0.0.1:{receiver.port}"
        assert _deliver(receiver.url, topic, "evt-1", body).json() == {"stored": True}
        assert _deliver(receiver.url, topic, "evt-1", body).json() == {"stored": False}
        assert _deliver(receiver.url, topic, "evt-2", body).json() == {"stored": True}
        samples = scrape(base)
    ledger.dispose()
    assert names(samples) <= EXPOSED_SERIES, names(samples) - EXPOSED_SERIES
    assert value(samples, "mienne_ops_webhook_deliveries_total", source="shopify", topic=topic) == 3
    assert value(samples, "mienne_ops_webhook_duplicates_total", source="shopify", topic=topic) == 1
    assert value(samples, "mienne_ops_inbox_events", source="shopify") == 2
    assert value(samples, "mienne_ops_refunds_pending", source="return") == 0
