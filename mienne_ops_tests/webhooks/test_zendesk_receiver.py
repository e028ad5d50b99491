"""The receiver's Zendesk route: signature (timestamp + body) in constant time, a replay window,
one inbox event per ticket event however often it is delivered."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click
import pytest
from starlette.testclient import TestClient

from mienne_ops.integrations.zendesk import webhook_signature
from mienne_ops.webhooks.receiver import create_receiver_app
from mienne_ops_tests.support import new_ledger

SECRET = "test-zendesk-signing-secret"


@pytest.fixture
def ledger(tmp_path):
    return new_ledger(f"sqlite:///{tmp_path / 'l.db'}")


@pytest.fixture
def client(ledger):
    return TestClient(create_receiver_app(ledger, "shopify-secret", zendesk_secret=SECRET))


def _post(
    client,
    payload: dict,
    *,
    invocation: str = "8350205582",
    secret: str = SECRET,
    age=timedelta(0),
    body=None,
):
    raw = json.dumps(payload).encode()
    timestamp = (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%SZ")
    return client.post(
        "/webhooks/zendesk",
        content=raw if body is None else body,
        headers={
            "Content-Type": "application/json",
            "X-Zendesk-Webhook-Id": "01F1KRFQ6BG29CNWFR60NK5FNY",
            "X-Zendesk-Webhook-Invocation-Id": invocation,
            "X-Zendesk-Webhook-Signature": webhook_signature(secret, timestamp, raw),
            "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
        },
    )


CREATED = {"ticket_id": "1001", "event": "ticket_created", "requester_email": "ada@example.com"}


def test_a_signed_event_is_stored_once_whatever_the_invocation(client, ledger):
    assert _post(client, CREATED, invocation="1").json() == {"stored": True}
    assert _post(client, CREATED, invocation="1").json() == {"stored": False}  # a retry
    assert _post(client, CREATED, invocation="2").json() == {"stored": False}  # a duplicate invocation
    (event,) = ledger.events_after("zendesk", 0)
    assert (event.event_id, event.topic, event.resource_id) == (
        "1001:ticket_created",
        "ticket_created",
        "1001",
    )
    assert event.payload["requester_email"] == "ada@example.com"


def test_comments_are_keyed_by_comment_id_and_numeric_ids_are_accepted(client, ledger):
    reply = {"ticket_id": 1001, "event": "comment_added", "comment_id": "40000007"}
    assert _post(client, reply, invocation="1").json() == {"stored": True}
    assert _post(client, reply, invocation="2").json() == {"stored": False}
    assert _post(client, {**reply, "comment_id": "40000008"}).json() == {"stored": True}
    assert [e.event_id for e in ledger.events_after("zendesk", 0)] == [
        "1001:comment_added:40000007",
        "1001:comment_added:40000008",
    ]


def test_bad_tampered_or_stale_signatures_are_401_and_not_stored(client, ledger):
    assert _post(client, CREATED, secret="wrong").status_code == 401
    tampered = json.dumps({**CREATED, "ticket_id": "1002"}).encode()
    assert _post(client, CREATED, body=tampered).status_code == 401
    assert _post(client, CREATED, age=timedelta(minutes=6)).status_code == 401  # a replay
    assert _post(client, CREATED, age=-timedelta(minutes=6)).status_code == 401
    unsigned = client.post("/webhooks/zendesk", content=json.dumps(CREATED).encode())
    assert unsigned.status_code == 401
    garbage = {
        "X-Zendesk-Webhook-Signature": "sig\u00e9".encode("latin-1"),
        "X-Zendesk-Webhook-Signature-Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    # Refused before any route: a header that is not printable ASCII is malformed input (400).
    assert client.post("/webhooks/zendesk", content=b"{}", headers=garbage).status_code == 400
    assert ledger.events_after("zendesk", 0) == []
    assert _post(client, CREATED, age=timedelta(minutes=4)).json() == {"stored": True}


def test_a_body_without_ticket_id_is_refused(client, ledger):
    assert _post(client, {"event": "ticket_created"}).status_code == 400
    assert ledger.events_after("zendesk", 0) == []


def test_without_a_secret_the_route_is_not_served(ledger):
    bare = TestClient(create_receiver_app(ledger, "shopify-secret"))
    assert _post(bare, CREATED).status_code == 404


def test_the_cli_takes_the_live_secret_or_the_sandbox_one_never_mixing_them(monkeypatch):
    from mienne_ops.cli import zendesk_webhook_secret
    from mienne_ops.sandbox import credentials

    monkeypatch.delenv("ZENDESK_API_TOKEN", raising=False)
    monkeypatch.setenv("ZENDESK_WEBHOOK_SECRET", "live-secret")
    assert zendesk_webhook_secret() == credentials.ZENDESK["webhook_secret"]  # sandbox mode
    monkeypatch.setenv("ZENDESK_API_TOKEN", "live-token")
    assert zendesk_webhook_secret() == "live-secret"
    monkeypatch.delenv("ZENDESK_WEBHOOK_SECRET")
    with pytest.raises(click.ClickException, match="ZENDESK_WEBHOOK_SECRET"):
        zendesk_webhook_secret()  # live without its secret: the receiver does not start
