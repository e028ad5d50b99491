"""The receiver against forged, malformed and replayed input, over real HTTP (issue 13).

Each case is one request to the real receiver served by uvicorn as `webhooks serve` serves it. Every
one must be answered 4xx (a known duplicate 2xx) — never 5xx, which would make Shopify retry a request
that can never succeed — and nothing but the one genuine delivery may reach the inbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from mienne_ops.sandbox import credentials
from mienne_ops.webhooks.receiver import create_receiver_app
from mienne_ops_tests.support import new_ledger
from mienne_ops_tests.webhooks.receiver_support import (
    ORDER,
    SECRET,
    SHOP,
    body_of,
    read_until_closed,
    running_receiver,
    shopify_headers,
    sign,
    triggered,
)

GORGIAS, ZENDESK, RECHARGE = "gorgias-secret", "zendesk-secret", "recharge-secret"


@dataclass(frozen=True)
class Case:
    """A request as (path, body, headers); ``expect`` is its status (or a 4xx check when None)."""

    name: str
    body: bytes
    headers: dict[str, Any]
    expect: int | None
    path: str = "/webhooks/shopify"


def _case(name: str, expect: int | None, body: bytes, **overrides: Any) -> Case:
    return Case(name, body, shopify_headers(body, f"evt-{name}", **overrides), expect)


def _nested(depth: int) -> bytes:
    return b'{"id": 1, "x": ' + b"[" * depth + b"]" * depth + b"}"


GOOD = body_of()
CASES = [
    # Forged: the signature.
    _case("unsigned", 401, GOOD, X_Shopify_Hmac_Sha256=None),
    _case("empty-signature", 401, GOOD, X_Shopify_Hmac_Sha256=""),
    _case("wrong-secret", 401, GOOD, X_Shopify_Hmac_Sha256=sign(GOOD, "wrong")),
    _case(
        "public-sandbox-secret",
        401,
        GOOD,
        X_Shopify_Hmac_Sha256=sign(GOOD, credentials.SHOPIFY["api_secret"]),
    ),
    _case("tampered-body", 401, GOOD.replace(b"5001", b"5002"), X_Shopify_Hmac_Sha256=sign(GOOD)),
    _case("signature-not-base64", 401, GOOD, X_Shopify_Hmac_Sha256="not*base64*at*all"),
    _case("hex-signature", 401, GOOD, X_Shopify_Hmac_Sha256="ab" * 32),
    _case("non-ascii-signature", 400, GOOD, X_Shopify_Hmac_Sha256="sig\u00e9".encode("latin-1")),
    _case("non-ascii-topic", 400, GOOD, X_Shopify_Topic="orders/cr\u00e9ate".encode("latin-1")),
    # Malformed bodies, correctly signed.
    _case("invalid-utf8", 400, b'{"id": 1, "name": "\xff\xfe"}'),
    _case("not-json", 400, b"id=1&name=x"),
    _case("empty-body", 400, b""),
    _case("nan", 400, b'{"id": 1, "total": NaN}'),
    _case("infinity", 400, b'{"id": 1, "total": -Infinity}'),
    _case("overflowing-number", 400, b'{"id": 1, "total": 1e999}'),
    _case("huge-integer", 400, b'{"id": ' + b"9" * 5000 + b"}"),
    _case("nested-100", 400, _nested(100)),
    _case("nested-100000", 400, _nested(100_000)),
    _case("lone-surrogate", 400, b'{"id": 1, "name": "\\ud800"}'),
    _case("utf8-bom", 400, b"\xef\xbb\xbf" + GOOD),
    # Headers: missing, too long for the inbox's columns, wrong shop.
    _case("missing-event-id", 400, GOOD, X_Shopify_Event_Id=None, X_Shopify_Webhook_Id=None),
    _case("missing-topic", 400, GOOD, X_Shopify_Topic=None),
    _case("missing-shop-domain", 400, GOOD, X_Shopify_Shop_Domain=None),
    _case("wrong-shop", 403, GOOD, X_Shopify_Shop_Domain="evil.myshopify.com"),
    _case("event-id-129", 400, GOOD, X_Shopify_Event_Id="e" * 129),
    _case("topic-65", 400, GOOD, X_Shopify_Topic="t" * 65),
    _case("resource-id-65", 400, body_of({**ORDER, "id": int("7" * 65)})),
    _case("triggered-at-41", 400, GOOD, X_Shopify_Triggered_At="2026-12-06T10:00:00.000000000000000+00:00"),
    # Replays: outside the window, unreadable or missing stamp.
    _case("triggered-49h-ago", 422, GOOD, X_Shopify_Triggered_At=triggered(timedelta(hours=49))),
    _case("triggered-in-an-hour", 422, GOOD, X_Shopify_Triggered_At=triggered(-timedelta(hours=1))),
    _case("triggered-at-garbage", 400, GOOD, X_Shopify_Triggered_At="yesterday"),
    _case("missing-triggered-at", 400, GOOD, X_Shopify_Triggered_At=None),
    # A captured order relabelled: signed (the HMAC covers the body only), but not a cancelled order.
    _case("create-replayed-as-cancelled", 422, GOOD, X_Shopify_Topic="orders/cancelled"),
    _case(
        "cancelled-at-null", 422, body_of({**ORDER, "cancelled_at": None}), X_Shopify_Topic="orders/cancelled"
    ),
    _case("cancelled-not-an-object", 422, b"[1, 2]", X_Shopify_Topic="orders/cancelled"),
    # The other sources.
    Case("gorgias-no-secret", b'{"ticket_id": 1}', {}, 401, "/webhooks/gorgias"),
    Case("gorgias-not-json", b"{", {"X-Mienne-Webhook-Secret": GORGIAS}, 400, "/webhooks/gorgias"),
    Case(
        "gorgias-nan", b'{"ticket_id": NaN}', {"X-Mienne-Webhook-Secret": GORGIAS}, 400, "/webhooks/gorgias"
    ),
    Case("zendesk-unsigned", b'{"ticket_id": 1}', {}, 401, "/webhooks/zendesk"),
    Case("recharge-unsigned", b'{"charge": {"id": 1}}', {}, 401, "/webhooks/recharge"),
    Case(
        "recharge-non-ascii-legacy-signature",
        b"{}",
        {"X-Recharge-Hmac-Sha256": "\u00e9".encode("latin-1")},
        400,
        "/webhooks/recharge",
    ),
]


@pytest.fixture(scope="module")
def receiver(tmp_path_factory) -> Iterator[tuple[Any, Any]]:
    ledger = new_ledger(f"sqlite:///{tmp_path_factory.mktemp('corpus') / 'ledger.db'}")
    app = create_receiver_app(
        ledger,
        SECRET,
        shop_domain=SHOP,
        gorgias_secret=GORGIAS,
        zendesk_secret=ZENDESK,
        recharge_secret=RECHARGE,
    )
    with running_receiver(app) as running:
        yield running, ledger


def _send(url: str, case: Case) -> httpx.Response:
    return httpx.post(f"{url}{case.path}", content=case.body, headers=case.headers, timeout=60)


def test_the_corpus_has_enough_cases():
    assert len(CASES) >= 25 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_bad_input_is_refused_with_4xx_and_not_stored(receiver, case):
    running, ledger = receiver
    before = {source: ledger.count_events(source) for source in ("shopify", "gorgias", "zendesk", "recharge")}
    answer = _send(running.url, case)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    if case.expect is not None:
        assert answer.status_code == case.expect, answer.text
    after = {source: ledger.count_events(source) for source in before}
    assert after == before


def test_a_genuine_delivery_is_stored_once_and_its_replay_is_a_2xx_duplicate(receiver):
    running, ledger = receiver
    headers = shopify_headers(GOOD, "evt-genuine")
    first = httpx.post(f"{running.url}/webhooks/shopify", content=GOOD, headers=headers, timeout=60)
    again = httpx.post(f"{running.url}/webhooks/shopify", content=GOOD, headers=headers, timeout=60)
    assert (first.status_code, first.json()) == (200, {"stored": True})
    assert (again.status_code, again.json()) == (200, {"stored": False})
    stored = [e for e in ledger.events_after("shopify", 0) if e.event_id == "evt-genuine"]
    assert [(e.topic, e.resource_id) for e in stored] == [("orders/create", "5001")]


def test_a_delivery_stamped_inside_the_window_is_accepted(receiver):
    """Shopify retries for 4 h and a delivery can be a day late: a 30-hour-old stamp is legitimate."""
    running, _ = receiver
    headers = shopify_headers(GOOD, "evt-late", X_Shopify_Triggered_At=triggered(timedelta(hours=30)))
    answer = httpx.post(f"{running.url}/webhooks/shopify", content=GOOD, headers=headers, timeout=60)
    assert answer.json() == {"stored": True}


def test_a_genuine_cancellation_is_stored(receiver):
    running, _ = receiver
    body = body_of({**ORDER, "cancelled_at": "2026-12-06T10:00:00-05:00", "cancel_reason": "customer"})
    headers = shopify_headers(body, "evt-cancelled", X_Shopify_Topic="orders/cancelled")
    answer = httpx.post(f"{running.url}/webhooks/shopify", content=body, headers=headers, timeout=60)
    assert answer.json() == {"stored": True}


def test_a_declared_oversized_body_is_413_before_it_is_sent(receiver):
    """50 MB declared, 10 bytes sent: the answer comes without waiting for (or reading) the rest."""
    running, _ = receiver
    with running.connect() as sock:
        sock.sendall(
            b"POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 52428800\r\n\r\n" + b"0123456789"
        )
        assert read_until_closed(sock).startswith(b"HTTP/1.1 413 ")


def test_a_chunked_body_is_cut_off_at_the_limit(receiver):
    running, _ = receiver

    def chunks() -> Iterator[bytes]:
        for _ in range(64):  # 64 MiB offered, in 1 MiB chunks; the limit is 4 MiB
            yield b" " * (1024 * 1024)

    try:
        answer = httpx.post(f"{running.url}/webhooks/shopify", content=chunks(), timeout=60)
    except httpx.HTTPError:  # the server may close while the client is still sending
        return
    assert answer.status_code == 413


def test_an_oversized_header_block_is_refused(receiver):
    running, ledger = receiver
    headers = shopify_headers(GOOD, "evt-big-header", X_Padding="p" * 20_000)
    answer = httpx.post(f"{running.url}/webhooks/shopify", content=GOOD, headers=headers, timeout=60)
    assert answer.status_code == 431
    with running.connect() as sock:  # the same block trickling in: h11 stops buffering it
        try:
            sock.sendall(b"POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\n")
            for _ in range(20):
                sock.sendall(b"X-Padding: " + b"p" * 1000 + b"\r\n")
            reply = read_until_closed(sock)
        except ConnectionError:  # closed while we were still sending: refused all the same
            reply = b"reset"
        assert reply.startswith(b"HTTP/1.1 400 ") or reply == b"reset"
    assert "evt-big-header" not in {e.event_id for e in ledger.events_after("shopify", 0)}


def test_a_non_numeric_content_length_is_400(receiver):
    running, _ = receiver
    with running.connect() as sock:
        sock.sendall(b"POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n{}")
        assert read_until_closed(sock).startswith(b"HTTP/1.1 400 ")


def test_the_wrong_method_and_an_unknown_path_are_4xx(receiver):
    running, _ = receiver
    assert httpx.get(f"{running.url}/webhooks/shopify", timeout=60).status_code == 405
    assert httpx.post(f"{running.url}/webhooks/stripe", content=b"{}", timeout=60).status_code == 404


def test_refusals_are_counted_by_source_and_reason(tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    app = create_receiver_app(ledger, SECRET, shop_domain=SHOP)
    with running_receiver(app) as running:
        for case in CASES[:3] + [c for c in CASES if c.name in ("nan", "wrong-shop")]:
            _send(running.url, case)
    assert app.refusals.counts == {
        ("shopify", "invalid_signature"): 3,
        ("shopify", "bad_json"): 1,
        ("shopify", "wrong_shop"): 1,
    }
