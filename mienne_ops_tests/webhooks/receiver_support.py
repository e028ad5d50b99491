"""The receiver over real HTTP for the bad-input tests: uvicorn on a free port, as `webhooks serve`
runs it (`receiver_config`: the h11 protocol with its header deadline), and signed Shopify deliveries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn

from mienne_ops.sandbox.server import free_port
from mienne_ops.webhooks.limits import ReceiverLimits, receiver_config

SECRET = "live-app-secret"
SHOP = "mienne.myshopify.com"
ORDER = {
    "id": 5001,
    "name": "#5001",
    "email": "ada.lovelace@example.com",
    "phone": "+1-555-0100-777",
    "shipping_address": {"address1": "12 Analytical Engine Lane", "city": "London", "zip": "N1 9GU"},
}
#: Strings of `ORDER` that must never reach a log.
PII = ("ada.lovelace@example.com", "555-0100-777", "Analytical Engine Lane")


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def shopify_headers(body: bytes, event_id: str = "evt-1", **overrides: Any) -> dict[str, Any]:
    """A genuine delivery's headers; ``overrides`` change one (None drops it)."""
    headers: dict[str, Any] = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Hmac-Sha256": sign(body),
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-API-Version": "2026-04",
        "X-Shopify-Webhook-Id": f"wh-{event_id}",
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
    }
    for name, value in overrides.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return headers


def triggered(ago: timedelta) -> str:
    return (datetime.now(UTC) - ago).isoformat()


def body_of(payload: Any = ORDER) -> bytes:
    return json.dumps(payload).encode()


class RunningReceiver:
    def __init__(self, app: Any, limits: ReceiverLimits) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(receiver_config(app, "127.0.0.1", self.port, limits))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self) -> socket.socket:
        """A raw connection (for what no HTTP client sends); reads give up after 60 s, a hang guard."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        return sock


@contextmanager
def running_receiver(app: Any, limits: ReceiverLimits | None = None) -> Iterator[RunningReceiver]:
    receiver = RunningReceiver(app, limits or ReceiverLimits())
    receiver.thread.start()
    deadline = time.monotonic() + 60  # a hang guard for a busy CI box, not a timing assertion
    while not receiver.server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("receiver did not start")
        time.sleep(0.02)
    try:
        yield receiver
    finally:
        receiver.server.should_exit = True
        receiver.thread.join(timeout=30)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received
