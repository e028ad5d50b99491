"""The Shopify fake removes an Admin-API webhook subscription after 8 CONSECUTIVE failed deliveries.

shopify.md §7.4: failures are retried 8 times; "after 8 consecutive failed deliveries, subscriptions
created through the Admin API are deleted". Every failed attempt counts (retries included) and any
success resets the count. The receiver here answers from a script, so nothing depends on timing: the
test waits for the deliveries it expects to have happened (a deadline only guards against a hang).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from mienne_ops.sandbox import credentials
from mienne_ops_tests.support import single_system_server

server = single_system_server("shopify")
HEADERS = {"X-Shopify-Access-Token": credentials.SHOPIFY["access_token"]}


class ScriptedReceiver:
    """Answers each delivery with the next status of ``script`` (200 once it runs out)."""

    def __init__(self, script: list[int]) -> None:
        self.script = list(script)
        self.seen: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.script.pop(0) if receiver.script else 200
                receiver.seen.append(status)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"


@pytest.fixture
def sandbox(server) -> Iterator:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server
    httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True})


@pytest.fixture
def receiver_factory() -> Iterator:
    made: list[ScriptedReceiver] = []

    def make(script: list[int]) -> ScriptedReceiver:
        made.append(ScriptedReceiver(script))
        return made[-1]

    yield make
    for receiver in made:
        receiver.httpd.shutdown()


def subscribe(sandbox, uri: str) -> None:
    mutation = f"""mutation {{ webhookSubscriptionCreate(topic: ORDERS_CREATE,
      webhookSubscription: {{uri: "{uri}", format: JSON}}) {{ userErrors {{ message }} }} }}"""
    url = f"{sandbox.url}/shopify/admin/api/2026-04/graphql.json"
    answer = httpx.post(url, json={"query": mutation}, headers=HEADERS).json()
    assert answer["data"]["webhookSubscriptionCreate"]["userErrors"] == []


def place_order(sandbox) -> None:
    order = {"email": "ava@example.com", "line_items": [{"sku": "MN-SERUM-001", "quantity": 1}]}
    assert httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=order).status_code == 201


def settled_log(sandbox, outcomes: int) -> list[dict]:
    """The delivery log once ``outcomes`` entries are in it and nothing is pending."""
    deadline = time.monotonic() + 60  # a guard against a hang, not a timing assertion
    while time.monotonic() < deadline:
        log = httpx.get(f"{sandbox.url}/_sandbox/shopify/webhooks/log").json()
        if len(log["deliveries"]) >= outcomes and log["pending"] == 0:
            return log["deliveries"]
        time.sleep(0.05)
    raise AssertionError(f"the deliveries did not settle: {log}")


def subscriptions(sandbox) -> list[dict]:
    return httpx.get(f"{sandbox.url}/_sandbox/state").json()["shopify"]["webhook_subscriptions"]


def test_eight_consecutive_failures_of_one_event_remove_the_subscription(sandbox, receiver_factory):
    receiver = receiver_factory([500] * 20)
    subscribe(sandbox, receiver.uri)
    place_order(sandbox)
    log = settled_log(sandbox, 8)
    assert [e["outcome"] for e in log] == ["failed"] * 8  # the 8 tries of ONE event
    assert subscriptions(sandbox) == []
    place_order(sandbox)  # nothing is delivered to a removed subscription
    assert len(settled_log(sandbox, 8)) == 8 and len(receiver.seen) == 8


def test_a_success_resets_the_count(sandbox, receiver_factory):
    # Two events, each failing 5 times before it goes through: 10 failures, never 8 in a row.
    receiver = receiver_factory([500] * 5 + [200] + [500] * 5 + [200])
    subscribe(sandbox, receiver.uri)
    place_order(sandbox)
    settled_log(sandbox, 6)
    place_order(sandbox)
    log = settled_log(sandbox, 12)
    assert [e["outcome"] for e in log].count("failed") == 10
    assert [e["outcome"] for e in log].count("delivered") == 2
    assert len(subscriptions(sandbox)) == 1
