"""What held in issue 13's probe stays held, on SQLite and on PostgreSQL: signatures compared in
constant time, a duplicate stored once under concurrency, a failing ledger answered 5xx (Shopify
retries it) — and now without the payload's personal data in any log."""

from __future__ import annotations

import hmac
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from mienne_ops.webhooks.receiver import create_receiver_app
from mienne_ops_tests.support import new_ledger
from mienne_ops_tests.webhooks.receiver_support import (
    ORDER,
    PII,
    SECRET,
    SHOP,
    body_of,
    running_receiver,
    shopify_headers,
    sign,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("database_url")


def test_signatures_are_compared_in_constant_time(tmp_path, monkeypatch):
    compared: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    ledger = new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    client = TestClient(create_receiver_app(ledger, SECRET, shop_domain=SHOP))
    body = body_of()
    forged = shopify_headers(body, "evt-1", X_Shopify_Hmac_Sha256=sign(body, "guess"))
    assert client.post("/webhooks/shopify", content=body, headers=forged).status_code == 401
    assert compared == [(sign(body).encode(), sign(body, "guess").encode())]
    assert ledger.count_events("shopify") == 0


def test_concurrent_deliveries_and_duplicates_are_each_stored_once(ledger_url):
    """100 distinct deliveries and 20 copies of one more, all at once over HTTP: 101 rows, no 5xx."""
    ledger = new_ledger(ledger_url)
    body = body_of()
    requests = [shopify_headers(body, f"evt-{n}") for n in range(100)]
    requests += [shopify_headers(body, "evt-dup")] * 20
    with running_receiver(create_receiver_app(ledger, SECRET, shop_domain=SHOP)) as running:
        url = f"{running.url}/webhooks/shopify"
        with httpx.Client(timeout=120) as client, ThreadPoolExecutor(max_workers=32) as pool:
            answers = list(pool.map(lambda h: client.post(url, content=body, headers=h), requests))
    assert {a.status_code for a in answers} == {200}
    assert [a.json()["stored"] for a in answers[100:]].count(True) == 1
    assert all(a.json() == {"stored": True} for a in answers[:100])
    assert ledger.count_events("shopify") == 101
    ledger.dispose()


def _make_inserts_fail(ledger_url: str, ledger: Any) -> None:
    """The ledger refuses writes: a trigger on SQLite, a read-only database on PostgreSQL."""
    engine = sa.create_engine(ledger_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON inbox_events "
                    "BEGIN SELECT RAISE(ABORT, 'the ledger refuses writes'); END"
                )
            )
        else:
            name = engine.url.database
            conn.execute(sa.text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    engine.dispose()
    ledger.engine.dispose()  # new connections see the change


def test_a_failing_ledger_is_503_and_no_log_holds_the_payload(ledger_url, caplog, capfd):
    ledger = new_ledger(ledger_url)
    _make_inserts_fail(ledger_url, ledger)
    body = body_of()
    with running_receiver(create_receiver_app(ledger, SECRET, shop_domain=SHOP)) as running:
        answer = httpx.post(
            f"{running.url}/webhooks/shopify",
            content=body,
            headers=shopify_headers(body, "evt-1"),
            timeout=60,
        )
    assert answer.status_code == 503  # a 5xx: Shopify retries the delivery later
    assert "could not store shopify event evt-1" in caplog.text
    with pytest.raises(sa.exc.SQLAlchemyError) as raised:  # SQLAlchemy's own error text, as logged
        ledger.store_event("shopify", "evt-2", "orders/create", ORDER)
    logged = caplog.text + "".join(capfd.readouterr()) + str(raised.value) + answer.text
    assert [secret for secret in PII if secret in logged] == []
    ledger.dispose()
