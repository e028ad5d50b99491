"""`POST /webhooks/gorgias`: the secret header checked in constant time, calls stored once per ticket
and message; and the whole path from the Gorgias fake's HTTP integration to the ledger inbox."""

from __future__ import annotations

import time
from collections.abc import Iterator

import click
import httpx
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from mienne_ops import cli
from mienne_ops.devtools.harness import ReceiverServer
from mienne_ops.integrations.gorgias import WEBHOOK_SECRET_HEADER, GorgiasResource, webhook_form
from mienne_ops.sandbox import credentials
from mienne_ops.webhooks.receiver import create_receiver_app
from mienne_ops_tests.support import new_ledger, single_system_server

server = single_system_server("gorgias")
SECRET = "test-gorgias-secret"
ACCOUNT = credentials.GORGIAS


@pytest.fixture
def ledger(tmp_path):
    return new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")


@pytest.fixture
def receiver(ledger) -> TestClient:
    return TestClient(create_receiver_app(ledger, "shopify-secret", gorgias_secret=SECRET))


def call(client: TestClient, body, secret: str | None = SECRET):
    headers = {WEBHOOK_SECRET_HEADER: secret} if secret is not None else {}
    if isinstance(body, bytes):
        return client.post("/webhooks/gorgias", content=body, headers=headers)
    return client.post("/webhooks/gorgias", json=body, headers=headers)


def form(ticket_id: str = "86538200", message_id: str = "208822100", event: str = "ticket-created") -> dict:
    return {
        "ticket_id": ticket_id,
        "message_id": message_id,
        "updated_datetime": "2026-12-06T10:00:00+00:00",
        "event": event,
    }


def test_a_wrong_or_missing_secret_is_401_and_not_stored(receiver, ledger):
    assert call(receiver, form(), secret="wrong").status_code == 401
    assert call(receiver, form(), secret=None).status_code == 401
    assert ledger.events_after("gorgias", 0) == []


def test_without_a_configured_secret_the_route_is_not_served(ledger):
    client = TestClient(create_receiver_app(ledger, "shopify-secret"))
    assert call(client, form(), secret="").status_code == 404
    assert ledger.events_after("gorgias", 0) == []


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", {"message_id": "1"}, {"ticket_id": ""}, {"ticket_id": "abc"}, {"ticket_id": -3}],
)
def test_a_malformed_body_is_400(receiver, ledger, body):
    assert call(receiver, body).status_code == 400
    assert ledger.events_after("gorgias", 0) == []


def test_a_call_is_stored_once_per_ticket_and_message(receiver, ledger):
    assert call(receiver, form()).json() == {"stored": True}
    assert call(receiver, form()).json() == {"stored": False}  # a duplicate delivery
    # Both triggers for the same first message are one event.
    assert call(receiver, form(event="ticket-message-created")).json() == {"stored": False}
    assert call(receiver, form(message_id="208822105", event="ticket-message-created")).json() == {
        "stored": True
    }
    events = ledger.events_after("gorgias", 0)
    assert [(e.event_id, e.topic, e.resource_id) for e in events] == [
        ("86538200:208822100", "ticket-created", "86538200"),
        ("86538200:208822105", "ticket-message-created", "86538200"),
    ]
    assert events[0].payload == form()


def test_without_a_message_id_the_update_time_tells_calls_apart(receiver, ledger):
    body = {**form(message_id=""), "updated_datetime": "2026-12-06T10:00:00+00:00"}
    assert call(receiver, body).json() == {"stored": True}
    assert call(receiver, body).json() == {"stored": False}
    assert call(receiver, {**body, "updated_datetime": "2026-12-06T10:05:00+00:00"}).json() == {
        "stored": True
    }
    assert [e.event_id for e in ledger.events_after("gorgias", 0)] == [
        "86538200:2026-12-06T10:00:00+00:00",
        "86538200:2026-12-06T10:05:00+00:00",
    ]


# -- end to end: the fake's HTTP integration calls the receiver over HTTP ---------------------------
@pytest.fixture
def live_receiver(server, ledger) -> Iterator[ReceiverServer]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    with ReceiverServer(ledger) as running:
        yield running
    httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True})


def gorgias_client(url: str):
    return GorgiasResource(
        base_url=f"{url}/gorgias/api",
        email=ACCOUNT["email"],
        api_key=ACCOUNT["api_key"],
        sender_user_id=ACCOUNT["sender_user_id"],
        support_address=ACCOUNT["support_address"],
    ).build_client()


def connect(url: str, target: str) -> None:
    client = gorgias_client(url)
    for trigger in cli.GORGIAS_TRIGGERS:
        client.ensure_http_integration(
            name=f"mienne-ops {trigger}",
            url=target,
            headers={WEBHOOK_SECRET_HEADER: ACCOUNT["webhook_secret"]},
            triggers=[trigger],
        )


def wait_for_events(ledger, count: int, deadline: float = 30.0) -> list:
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        events = ledger.events_after("gorgias", 0)
        if len(events) >= count:
            return events
        time.sleep(0.05)
    raise AssertionError(f"expected {count} Gorgias events, got {len(ledger.events_after('gorgias', 0))}")


def deliveries(url: str) -> list[dict]:
    return httpx.get(f"{url}/_sandbox/gorgias/deliveries").json()["deliveries"]


def test_tickets_reach_the_inbox_once_even_when_delivered_twice(server, live_receiver, ledger):
    connect(server.url, live_receiver.gorgias_url)
    faults = {"gorgias": {"webhook_duplicate_rate": 1}}
    httpx.post(f"{server.url}/_sandbox/faults", json=faults).raise_for_status()
    # Also fire ticket-message-created on creation: the first message must still be one event.
    httpx.post(f"{server.url}/_sandbox/gorgias/delivery", json={"creation_fires_message_created": True})
    body = {"customer_email": "ann@example.com", "subject": "Cancel #1001", "body_text": "Please cancel"}
    ticket = httpx.post(f"{server.url}/_sandbox/gorgias/tickets", json=body).json()
    until = time.monotonic() + 30
    while sum(d["outcome"] == "delivered" for d in deliveries(server.url)) < 4 and time.monotonic() < until:
        time.sleep(0.05)
    assert sum(d["outcome"] == "delivered" for d in deliveries(server.url)) == 4  # 2 triggers x 2 copies
    (event,) = wait_for_events(ledger, 1)
    first_message = ticket["messages"][0]["id"]
    assert event.event_id == f"{ticket['id']}:{first_message}" and event.resource_id == str(ticket["id"])
    assert event.payload["ticket_id"] == str(ticket["id"])

    again = httpx.post(
        f"{server.url}/_sandbox/gorgias/tickets/{ticket['id']}/messages", json={"body_text": "?"}
    )
    events = wait_for_events(ledger, 2)
    assert events[1].event_id == f"{ticket['id']}:{again.json()['id']}"
    assert events[1].topic == "ticket-message-created"


def test_a_dropped_call_never_reaches_the_inbox(server, live_receiver, ledger):
    connect(server.url, live_receiver.gorgias_url)
    httpx.post(f"{server.url}/_sandbox/faults", json={"gorgias": {"webhook_drop_rate": 1}}).raise_for_status()
    body = {"customer_email": "ann@example.com", "subject": "Refund", "body_text": "Refund please"}
    ticket = httpx.post(f"{server.url}/_sandbox/gorgias/tickets", json=body).json()
    until = time.monotonic() + 30
    while not [d for d in deliveries(server.url) if d["outcome"] == "dropped"] and time.monotonic() < until:
        time.sleep(0.05)
    assert [d["outcome"] for d in deliveries(server.url)] == ["dropped"]
    assert ledger.events_after("gorgias", 0) == []
    # The reconciliation poll still finds the ticket through the API.
    assert [t.id for t in gorgias_client(server.url).iter_tickets()] == [ticket["id"]]


def test_connect_command_registers_one_integration_per_trigger(server, monkeypatch):
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    monkeypatch.setenv("MIENNE_SANDBOX_URL", server.url)
    monkeypatch.delenv("GORGIAS_API_KEY", raising=False)
    runner = CliRunner()
    for _ in range(2):  # idempotent
        result = runner.invoke(
            cli.main, ["gorgias", "connect", "--url", "https://ops.mienne.com/webhooks/gorgias"]
        )
        assert result.exit_code == 0, result.output
    integrations = httpx.get(f"{server.url}/_sandbox/gorgias/integrations").json()["data"]
    assert [(i["name"], i["http"]["triggers"]) for i in integrations] == [
        ("mienne-ops ticket-created", {"ticket-created": True}),
        ("mienne-ops ticket-message-created", {"ticket-message-created": True}),
    ]
    assert integrations[0]["http"]["headers"] == {WEBHOOK_SECRET_HEADER: ACCOUNT["webhook_secret"]}
    assert integrations[1]["http"]["form"] == webhook_form(["ticket-message-created"])


def test_connect_refuses_a_live_account_without_its_secret(monkeypatch):
    monkeypatch.setenv("GORGIAS_API_KEY", "live-key")
    monkeypatch.delenv("GORGIAS_WEBHOOK_SECRET", raising=False)
    result = CliRunner().invoke(
        cli.main, ["gorgias", "connect", "--url", "https://ops.mienne.com/webhooks/gorgias"]
    )
    assert result.exit_code != 0 and "GORGIAS_WEBHOOK_SECRET" in result.output
    with pytest.raises(click.ClickException):  # never the public sandbox secret
        cli.gorgias_webhook_secret()
    monkeypatch.setenv("GORGIAS_WEBHOOK_SECRET", "live-secret")
    assert cli.gorgias_webhook_secret() == "live-secret"
