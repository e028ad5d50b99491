"""The receiver cannot be held or frozen: slow clients are dropped, a locked ledger blocks no one else.

The probe of issue 13 kept idle connections open past 180 s (300 of them made a valid delivery fail),
and one insert waiting on a locked ledger froze the receiver for 19–39 s, ``/health`` included. The
deadlines here are short (a test server's limits) so the tests are quick; what they check is that the
server closes the connection, not how fast.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from mienne_ops.webhooks.limits import ReceiverLimits
from mienne_ops.webhooks.receiver import create_receiver_app
from mienne_ops_tests.support import new_ledger
from mienne_ops_tests.webhooks.receiver_support import (
    SECRET,
    SHOP,
    body_of,
    read_until_closed,
    running_receiver,
    shopify_headers,
)

QUICK = ReceiverLimits(header_timeout=0.5, body_timeout=0.5, keep_alive_timeout=1)


@pytest.fixture
def ledger(tmp_path):
    return new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")


@pytest.fixture
def quick(ledger) -> Iterator[Any]:
    with running_receiver(create_receiver_app(ledger, SECRET, shop_domain=SHOP), QUICK) as running:
        yield running


def test_a_connection_that_sends_nothing_is_closed(quick):
    with quick.connect() as sock:
        assert read_until_closed(sock) == b""  # closed by the server, no request was ever made


def test_headers_that_never_finish_are_cut_off(quick):
    with quick.connect() as sock:
        sock.sendall(b"POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\nX-Shopify-Topic: ord")
        assert read_until_closed(sock) == b""


def test_a_body_that_never_finishes_is_408_and_not_stored(quick, ledger):
    body = body_of()
    head = "".join(f"{k}: {v}\r\n" for k, v in shopify_headers(body, "evt-slow").items())
    with quick.connect() as sock:
        request = f"POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n\r\n"
        sock.sendall(request.encode())
        sock.sendall(body[:10])
        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")
    assert ledger.count_events("shopify") == 0


def test_a_valid_delivery_gets_through_300_idle_connections(ledger):
    """The probe's 300 idle connections, held open while a genuine delivery is made (default limits)."""
    body = body_of()
    with (
        running_receiver(create_receiver_app(ledger, SECRET, shop_domain=SHOP)) as running,
        ExitStack() as idle,
    ):
        for _ in range(300):
            idle.enter_context(running.connect())
        answer = httpx.post(
            f"{running.url}/webhooks/shopify",
            content=body,
            headers=shopify_headers(body, "evt-1"),
            timeout=60,
        )
    assert answer.json() == {"stored": True}


def test_health_answers_while_a_delivery_waits_on_a_locked_ledger(tmp_path, ledger):
    """A second connection holds SQLite's write lock; the delivery's insert waits for it in a worker
    thread, and meanwhile ``/health`` (and any other request) is answered. Released, the delivery is
    stored."""
    entered = threading.Event()
    store_event = ledger.store_event

    def observed_store_event(*args: Any, **kwargs: Any) -> bool:
        entered.set()
        return store_event(*args, **kwargs)

    ledger.store_event = observed_store_event  # type: ignore[method-assign]
    locker = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    body = body_of()
    answers: list[httpx.Response] = []
    with running_receiver(create_receiver_app(ledger, SECRET, shop_domain=SHOP)) as running:
        url = f"{running.url}/webhooks/shopify"
        delivery = threading.Thread(
            target=lambda: answers.append(
                httpx.post(url, content=body, headers=shopify_headers(body, "evt-locked"), timeout=60)
            )
        )
        delivery.start()
        assert entered.wait(timeout=60)  # the insert is under way (and blocked on the lock)
        assert httpx.get(f"{running.url}/health", timeout=60).json() == {"ok": True}
        locker.execute("ROLLBACK")
        delivery.join(timeout=60)
    locker.close()
    assert [a.json() for a in answers] == [{"stored": True}]
