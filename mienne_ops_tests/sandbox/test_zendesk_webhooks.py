"""The Zendesk fake's webhooks: signed as Zendesk signs them, dropped / duplicated / retried on
the FaultBook's word, and stored once by the real receiver. Nothing waits on time: each test polls
for the deliveries it expects (a deadline only guards against a hang)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import uvicorn

from mienne_ops.integrations.zendesk import verify_webhook
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.server import free_port
from mienne_ops.webhooks.receiver import create_receiver_app
from mienne_ops_tests.support import new_ledger, single_system_server

server = single_system_server("zendesk")
SECRET = credentials.ZENDESK["webhook_secret"]


class Catcher:
    """Records every delivery; answers each with the next status of ``script`` (200 after)."""

    def __init__(self, script: list[int] | None = None) -> None:
        self.script = list(script or [])
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = catcher.script.pop(0) if catcher.script else 200
                catcher.requests.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/webhooks/zendesk"

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture
def url(server) -> Iterator[str]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server.url
    httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True})


def wait_until(condition: Callable[[], bool], what: str, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def delivery_log(url: str) -> dict:
    return httpx.get(f"{url}/_sandbox/zendesk/webhooks").json()


def settled(url: str, outcomes: int) -> bool:
    log = delivery_log(url)
    return log["pending"] == 0 and len(log["deliveries"]) >= outcomes


def write_in(url: str, **extra) -> dict:
    body = {"requester_email": "ada@example.com", "subject": "Refund", "body": "Refund please", **extra}
    return httpx.post(f"{url}/_sandbox/zendesk/tickets", json=body).json()["ticket"]


def test_a_new_ticket_is_announced_by_a_signed_webhook(url):
    catcher = Catcher()
    try:
        registered = httpx.post(f"{url}/_sandbox/zendesk/webhooks", json={"url": catcher.url}).json()[
            "webhook"
        ]
        again = httpx.post(f"{url}/_sandbox/zendesk/webhooks", json={"url": catcher.url}).json()["webhook"]
        assert again["id"] == registered["id"]  # one webhook per URL
        ticket = write_in(url, tags=["refund_request"])
        wait_until(lambda: len(catcher.requests) == 1, "the delivery")
    finally:
        catcher.close()
    headers, body, _ = catcher.requests[0]
    assert verify_webhook(
        SECRET, body, headers["x-zendesk-webhook-signature"], headers["x-zendesk-webhook-signature-timestamp"]
    )
    assert not verify_webhook(
        "other-secret",
        body,
        headers["x-zendesk-webhook-signature"],
        headers["x-zendesk-webhook-signature-timestamp"],
    )
    assert headers["x-zendesk-webhook-id"] == registered["id"] and headers["x-zendesk-webhook-invocation-id"]
    assert headers["x-zendesk-webhook-signature-timestamp"].endswith("Z")
    assert json.loads(body) == {
        "ticket_id": str(ticket["id"]),
        "event": "ticket_created",
        "requester_email": "ada@example.com",
        "requester_name": "ada",
        "subject": "Refund",
        "tags": "refund_request",
    }


def test_a_failed_attempt_is_retried_under_the_same_invocation(url):
    catcher = Catcher(script=[500, 503])
    try:
        httpx.post(f"{url}/_sandbox/zendesk/webhooks", json={"url": catcher.url})
        write_in(url)
        wait_until(lambda: settled(url, 3), "two failures and a success")
    finally:
        catcher.close()
    invocations = {headers["x-zendesk-webhook-invocation-id"] for headers, _, _ in catcher.requests}
    assert len(invocations) == 1 and [status for *_, status in catcher.requests] == [500, 503, 200]
    assert [d["attempt"] for d in delivery_log(url)["deliveries"]] == [1, 2, 3]


def test_drop_and_duplicate_faults(url):
    catcher = Catcher()
    try:
        httpx.post(f"{url}/_sandbox/zendesk/webhooks", json={"url": catcher.url})
        httpx.post(f"{url}/_sandbox/faults", json={"zendesk": {"webhook_drop_rate": 1.0}})
        write_in(url)
        wait_until(lambda: settled(url, 1), "the drop")
        assert [d["outcome"] for d in delivery_log(url)["deliveries"]] == ["dropped"] and not catcher.requests
        httpx.post(f"{url}/_sandbox/faults", json={"zendesk": {"webhook_duplicate_rate": 1.0}})
        write_in(url)
        wait_until(lambda: len(catcher.requests) == 2, "both invocations")
    finally:
        catcher.close()
    (first_headers, first_body, _), (second_headers, second_body, _) = catcher.requests
    assert first_body == second_body
    assert (
        first_headers["x-zendesk-webhook-invocation-id"] != second_headers["x-zendesk-webhook-invocation-id"]
    )


@pytest.fixture
def receiver(tmp_path) -> Iterator[tuple[str, object]]:
    ledger = new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    app = create_receiver_app(ledger, credentials.SHOPIFY["api_secret"], zendesk_secret=SECRET)
    port = free_port()
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    wait_until(lambda: running.started, "the receiver")
    yield f"http://127.0.0.1:{port}/webhooks/zendesk", ledger
    running.should_exit = True
    thread.join(timeout=10)


def test_duplicated_and_retried_deliveries_reach_the_inbox_once(url, receiver):
    receiver_url, ledger = receiver
    httpx.post(f"{url}/_sandbox/zendesk/webhooks", json={"url": receiver_url})
    httpx.post(f"{url}/_sandbox/faults", json={"zendesk": {"webhook_duplicate_rate": 1.0}})
    ticket = write_in(url)
    reply = httpx.post(
        f"{url}/_sandbox/zendesk/tickets/{ticket['id']}/customer_reply", json={"body": "Any news?"}
    )
    wait_until(lambda: settled(url, 4), "four deliveries")
    deliveries = delivery_log(url)["deliveries"]
    assert [d["status"] for d in deliveries] == [200, 200, 200, 200]
    events = ledger.events_after("zendesk", 0)
    comment_id = reply.json()["comment"]["id"]
    assert [e.event_id for e in events] == [
        f"{ticket['id']}:ticket_created",
        f"{ticket['id']}:comment_added:{comment_id}",
    ]
    assert {e.resource_id for e in events} == {str(ticket["id"])}


def test_the_webhooks_api_creates_a_trigger_webhook_with_a_readable_signing_secret(url):
    catcher = Catcher()
    auth = (f"{credentials.ZENDESK['email']}/token", credentials.ZENDESK["api_token"])
    api = httpx.Client(base_url=f"{url}/zendesk/api/v2", auth=auth)
    fields = {
        "name": "mienne-ops",
        "status": "active",
        "endpoint": catcher.url,
        "http_method": "POST",
        "request_format": "json",
        "subscriptions": ["conditional_ticket_events"],
    }
    try:
        created = api.post("/webhooks", json={"webhook": fields})
        assert created.status_code == 201
        webhook = created.json()["webhook"]
        inactive = api.post("/webhooks", json={"webhook": {**fields, "status": "inactive"}}).json()["webhook"]
        assert api.post("/webhooks", json={"webhook": {**fields, "endpoint": "ftp://x"}}).status_code == 400
        mixed = {**fields, "subscriptions": ["conditional_ticket_events", "zen:event-type:user.created"]}
        assert api.post("/webhooks", json={"webhook": mixed}).status_code == 400
        secret = api.get(f"/webhooks/{webhook['id']}/signing_secret").json()["signing_secret"]
        assert secret["algorithm"] == "SHA256"
        write_in(url)
        wait_until(lambda: settled(url, 1), "the delivery")
        assert api.delete(f"/webhooks/{inactive['id']}").status_code == 204
        assert api.get(f"/webhooks/{inactive['id']}").status_code == 404
        assert [w["id"] for w in api.get("/webhooks").json()["webhooks"]] == [webhook["id"]]
    finally:
        api.close()
        catcher.close()
    ((headers, body, _),) = catcher.requests  # the inactive webhook heard nothing
    assert headers["x-zendesk-webhook-id"] == webhook["id"]
    timestamp = headers["x-zendesk-webhook-signature-timestamp"]
    assert verify_webhook(secret["secret"], body, headers["x-zendesk-webhook-signature"], timestamp)
