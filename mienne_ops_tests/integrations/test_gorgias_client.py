"""The Gorgias client against the Gorgias sandbox over real HTTP."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from mienne_ops.errors import AuthError, NotFoundError
from mienne_ops.integrations import gorgias
from mienne_ops.integrations.gorgias import CallPacer, GorgiasClient, GorgiasResource, webhook_form
from mienne_ops.sandbox import credentials
from mienne_ops_tests.support import single_system_server

server = single_system_server("gorgias")
ACCOUNT = credentials.GORGIAS


@pytest.fixture
def url(server):
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server.url
    httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True})


def make_client(url: str, api_key: str = ACCOUNT["api_key"]) -> GorgiasClient:
    resource = GorgiasResource(
        base_url=f"{url}/gorgias/api",
        email=ACCOUNT["email"],
        api_key=api_key,
        sender_user_id=ACCOUNT["sender_user_id"],
        support_address=ACCOUNT["support_address"],
        retry_base_delay_seconds=0.01,
    )
    return resource.build_client()


def write_in(url: str, email: str = "ann@example.com", **extra) -> dict:
    body = {
        "customer_email": email,
        "customer_name": "Ann Lee",
        "subject": "Cancel #1001",
        "body_text": "Please",
    }
    answer = httpx.post(f"{url}/_sandbox/gorgias/tickets", json={**body, **extra})
    answer.raise_for_status()
    return answer.json()


def sandbox_messages(url: str) -> list[dict]:
    return httpx.get(f"{url}/_sandbox/state").json()["gorgias"]["messages"]


def test_wrong_key_is_an_auth_error_and_unknown_ticket_not_found(url):
    with pytest.raises(AuthError):
        make_client(url, api_key="wrong").ticket(1)
    with pytest.raises(NotFoundError):
        make_client(url).ticket(1)


def test_ticket_is_parsed_from_the_full_object(url):
    created = write_in(url, tags=["refund", "vip"])
    ticket = make_client(url).ticket(created["id"])
    assert (ticket.id, ticket.status, ticket.subject, ticket.channel, ticket.via) == (
        created["id"],
        "open",
        "Cancel #1001",
        "email",
        "email",
    )
    assert (ticket.customer_email, ticket.customer_name) == ("ann@example.com", "Ann Lee")
    assert ticket.customer_id == created["customer"]["id"] and ticket.tags == ["refund", "vip"]
    assert ticket.created_datetime.tzinfo is not None and ticket.updated_datetime is not None


def test_iter_tickets_reads_every_page_newest_first_and_stops_at_created_since(url, monkeypatch):
    monkeypatch.setattr(gorgias, "PAGE_LIMIT", 2)
    ids = [write_in(url, f"c{i}@example.com")["id"] for i in range(5)]
    client = make_client(url)
    assert [t.id for t in client.iter_tickets()] == ids[::-1]
    since = client.ticket(ids[2]).created_datetime
    assert [t.id for t in client.iter_tickets(created_since=since)] == ids[:1:-1]
    assert list(client.iter_tickets(created_since=datetime.now().astimezone().replace(year=2100))) == []


def test_messages_reads_every_page(url, monkeypatch):
    monkeypatch.setattr(gorgias, "PAGE_LIMIT", 2)
    ticket_id = write_in(url)["id"]
    client = make_client(url)
    for i in range(4):
        client.post_internal_note(ticket_id, f"note {i}", external_id=f"n-{i}")
    messages = client.messages(ticket_id)
    assert [m.body_text for m in messages] == ["Please", "note 0", "note 1", "note 2", "note 3"]
    first = messages[0]
    assert (first.from_agent, first.public, first.sender_email, first.channel) == (
        False,
        True,
        "ann@example.com",
        "email",
    )


def test_internal_note_is_posted_once_per_external_id(url):
    ticket_id = write_in(url)["id"]
    client = make_client(url)
    note = client.post_internal_note(ticket_id, "Refund R-1 created", external_id="refund:1:note")
    again = client.post_internal_note(ticket_id, "Refund R-1 created", external_id="refund:1:note")
    assert note.id == again.id and note.public is False and note.channel == "internal-note"
    assert note.external_id == "refund:1:note" and note.ticket_id == ticket_id
    assert len(sandbox_messages(url)) == 2


@pytest.mark.parametrize("post", ["post_internal_note", "post_public_reply"])
def test_a_5xx_after_the_create_does_not_post_twice(url, post):
    ticket_id = write_in(url)["id"]
    # The next write is applied, then answered 502 (the answer was lost): the client must look again.
    httpx.post(f"{url}/_sandbox/gorgias/lost_responses", json={"count": 1, "status": 502}).raise_for_status()
    message = getattr(make_client(url), post)(ticket_id, "We cancelled #1001.", external_id="cancel:1001")
    mine = [m for m in sandbox_messages(url) if m["external_id"] == "cancel:1001"]
    assert [m["id"] for m in mine] == [message.id]


def test_a_5xx_before_the_create_is_retried(url):
    ticket_id = write_in(url)["id"]
    client = make_client(url)
    sent: list[int] = []
    original = client.core.request

    def flaky(method, path, **kwargs):
        if method == "POST" and not sent:
            sent.append(1)
            return httpx.Response(503, json={"error": {"msg": "down"}})
        return original(method, path, **kwargs)

    client.core.request = flaky  # type: ignore[method-assign]
    note = client.post_internal_note(ticket_id, "retry me", external_id="retry:1")
    assert sent == [1] and [m["id"] for m in sandbox_messages(url) if m["external_id"] == "retry:1"] == [
        note.id
    ]


def test_public_reply_goes_to_the_ticket_customer_and_is_sent_asynchronously(url):
    created = write_in(url)
    client = make_client(url)
    reply = client.post_public_reply(created["id"], "Your order is cancelled.", external_id="reply:1")
    assert reply.public and reply.from_agent and reply.channel == "email" and reply.sent_datetime is None
    stored = next(m for m in sandbox_messages(url) if m["id"] == reply.id)
    assert stored["receiver"]["id"] == created["customer"]["id"]
    assert stored["source"]["from"]["address"] == ACCOUNT["support_address"]
    assert stored["source"]["to"] == [{"address": "ann@example.com", "name": "Ann Lee"}]
    assert stored["subject"] == "Re: Cancel #1001"


def test_tags_set_replaces_and_add_keeps(url):
    ticket_id = write_in(url, tags=["refund"])["id"]
    client = make_client(url)
    client.add_tags(ticket_id, ["vip", "Refund", "cancel-request"])
    assert client.ticket(ticket_id).tags == ["refund", "vip", "cancel-request"]
    client.add_tags(ticket_id, ["vip"])  # adding again changes nothing
    assert client.ticket(ticket_id).tags == ["refund", "vip", "cancel-request"]
    client.set_tags(ticket_id, ["done", "vip"])
    assert client.ticket(ticket_id).tags == ["done", "vip"]
    client.set_tags(ticket_id, [])
    assert client.ticket(ticket_id).tags == []


def test_set_status(url):
    ticket_id = write_in(url)["id"]
    client = make_client(url)
    client.set_status(ticket_id, "closed")
    assert client.ticket(ticket_id).status == "closed"
    client.set_status(ticket_id, "open")
    assert client.ticket(ticket_id).status == "open"
    with pytest.raises(ValueError):
        client.set_status(ticket_id, "solved")


def test_ensure_http_integration_is_idempotent_by_name(url):
    client = make_client(url)
    headers = {"X-Mienne-Webhook-Secret": "s"}
    first = client.ensure_http_integration(
        name="mienne-ops", url="http://a/h", headers=headers, triggers=["ticket-created"]
    )
    again = client.ensure_http_integration(
        name="mienne-ops", url="http://a/h", headers=headers, triggers=["ticket-created"]
    )
    moved = client.ensure_http_integration(
        name="mienne-ops", url="http://b/h", headers=headers, triggers=["ticket-created"]
    )
    other = client.ensure_http_integration(
        name="mienne-ops-2", url="http://b/h", headers=headers, triggers=["ticket-message-created"]
    )
    assert first == again == moved != other
    integrations = httpx.get(f"{url}/_sandbox/gorgias/integrations").json()["data"]
    assert [(i["name"], i["http"]["url"]) for i in integrations] == [
        ("mienne-ops", "http://b/h"),
        ("mienne-ops-2", "http://b/h"),
    ]
    assert integrations[0]["http"]["form"] == webhook_form(["ticket-created"])
    assert integrations[0]["http"]["headers"] == headers and integrations[0]["http"]["triggers"] == {
        "ticket-created": True
    }


def test_ensure_http_integration_reactivates_a_disabled_one(url):
    client = make_client(url)
    integration_id = client.ensure_http_integration(
        name="m", url="http://a/h", headers={}, triggers=["ticket-created"]
    )
    auth = (ACCOUNT["email"], ACCOUNT["api_key"])
    httpx.put(
        f"{url}/gorgias/api/integrations/{integration_id}",
        json={"deactivated_datetime": "2026-12-06T10:00:00.000000+00:00"},
        auth=auth,
    ).raise_for_status()
    assert (
        client.ensure_http_integration(name="m", url="http://a/h", headers={}, triggers=["ticket-created"])
        == integration_id
    )
    assert (
        httpx.get(f"{url}/gorgias/api/integrations/{integration_id}", auth=auth).json()[
            "deactivated_datetime"
        ]
        is None
    )


def test_pacer_waits_before_the_bucket_overflows(url):
    waits: list[float] = []
    pacer = CallPacer(headroom=4, sleep=waits.append)
    pacer.after_call("30/40")
    pacer.before_call()
    pacer.after_call("38/40")  # 2 calls over the headroom: 2 * 20 s / 40 = 1 s
    pacer.before_call()
    pacer.after_call("garbage")
    pacer.before_call()
    assert waits == [1.0]

    httpx.post(f"{url}/_sandbox/gorgias/limits", json={"frozen_clock": True}).raise_for_status()
    client = make_client(url)
    client.pacer = CallPacer(headroom=4, sleep=waits.append)
    for _ in range(38):
        list(client.iter_tickets())  # one call each, on a bucket that does not leak
    assert waits[1:] and waits[-1] > 0  # the client read the header and paced itself


def test_live_resource_reads_the_environment(monkeypatch):
    from mienne_ops.resources import gorgias_resource

    monkeypatch.setenv("GORGIAS_API_KEY", "live-key")
    monkeypatch.setenv("GORGIAS_DOMAIN", "mienne")
    monkeypatch.setenv("GORGIAS_EMAIL", "ops@mienne.com")
    monkeypatch.setenv("GORGIAS_SENDER_USER_ID", "77")
    monkeypatch.setenv("GORGIAS_SUPPORT_ADDRESS", "care@mienne.com")
    monkeypatch.delenv("GORGIAS_BASE_URL", raising=False)
    with gorgias_resource().process_config_and_initialize_cm() as resource:
        client = resource.client
        assert str(client.core._client.base_url) == "https://mienne.gorgias.com/api/"
        assert (client.sender_user_id, client.support_address) == (77, "care@mienne.com")
        assert resource.api_key == "live-key"
