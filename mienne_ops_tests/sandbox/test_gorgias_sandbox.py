"""The Gorgias fake keeps gorgias.md's rules: one test per item of its fidelity checklist.

Nothing here depends on timing: the rate limit runs on a frozen clock, and background work (the
message sender, the HTTP-integration emitter) is awaited by polling with a generous deadline.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from mienne_ops.sandbox import credentials
from mienne_ops_tests.support import single_system_server

server = single_system_server("gorgias")
ACCOUNT = credentials.GORGIAS
AUTH = (ACCOUNT["email"], ACCOUNT["api_key"])
DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")


@pytest.fixture
def url(server) -> Iterator[str]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server.url
    httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True})


def api(url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"{url}/gorgias/api/{path}", auth=AUTH, **kwargs)


def write_in(url: str, email: str = "ann@example.com", **extra: Any) -> dict[str, Any]:
    body = {
        "customer_email": email,
        "customer_name": "Ann Lee",
        "subject": "Cancel",
        "body_text": "Cancel it",
    }
    answer = httpx.post(f"{url}/_sandbox/gorgias/tickets", json={**body, **extra})
    assert answer.status_code == 201, answer.text
    return answer.json()


def wait_for(check: Callable[[], Any], what: str, deadline: float = 30.0) -> Any:
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def note(text: str = "internal", **extra: Any) -> dict[str, Any]:
    return {
        "channel": "internal-note",
        "via": "api",
        "from_agent": True,
        "sender": {"id": ACCOUNT["sender_user_id"]},
        "body_text": text,
        **extra,
    }


def reply(ticket: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "channel": "email",
        "via": "api",
        "from_agent": True,
        "sender": {"id": ACCOUNT["sender_user_id"]},
        "receiver": {"id": ticket["customer"]["id"]},
        "subject": "Re: Cancel",
        "body_text": "Done.",
        "source": {
            "type": "email",
            "from": {"address": ACCOUNT["support_address"], "name": "Support"},
            "to": [{"address": ticket["customer"]["email"], "name": ""}],
        },
        **extra,
    }


# -- auth -----------------------------------------------------------------------------------------
def test_basic_auth_or_bearer_anything_else_is_401(url):
    assert api(url, "GET", "tickets").status_code == 200
    bearer = {"Authorization": f"Bearer {ACCOUNT['oauth_access_token']}"}
    assert httpx.get(f"{url}/gorgias/api/tickets", headers=bearer).status_code == 200
    for auth in [(ACCOUNT["email"], "wrong"), ("someone@else.com", ACCOUNT["api_key"])]:
        answer = httpx.get(f"{url}/gorgias/api/tickets", auth=auth)
        assert answer.status_code == 401 and "msg" in answer.json()["error"]
    assert httpx.get(f"{url}/gorgias/api/tickets").status_code == 401
    assert (
        httpx.get(f"{url}/gorgias/api/tickets", headers={"Authorization": "Bearer nope"}).status_code == 401
    )


# -- rate limit -----------------------------------------------------------------------------------
def test_leaky_bucket_40_per_20_seconds_with_the_call_limit_header(url):
    httpx.post(f"{url}/_sandbox/gorgias/limits", json={"frozen_clock": True}).raise_for_status()
    for used in range(1, 41):
        answer = api(url, "GET", "tags")
        assert answer.status_code == 200
        assert answer.headers["X-Gorgias-Account-Api-Call-Limit"] == f"{used}/40"
    refused = api(url, "GET", "tags")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-after"]) >= 1
    assert refused.headers["X-Gorgias-Account-Api-Call-Limit"] == "40/40"
    # The bucket leaks 40 calls per 20 s: after 1 s two calls fit again, not three.
    httpx.post(f"{url}/_sandbox/gorgias/limits", json={"advance_seconds": 1}).raise_for_status()
    assert [api(url, "GET", "tags").status_code for _ in range(3)] == [200, 200, 429]
    # Errors carry the header too.
    httpx.post(f"{url}/_sandbox/gorgias/limits", json={"advance_seconds": 20}).raise_for_status()
    missing = api(url, "GET", "tickets/1")
    assert missing.status_code == 404 and missing.headers["X-Gorgias-Account-Api-Call-Limit"] == "1/40"


def test_oauth_apps_get_80_and_enterprise_leaks_twice_as_fast(url):
    limits = f"{url}/_sandbox/gorgias/limits"
    httpx.post(limits, json={"frozen_clock": True}).raise_for_status()
    bearer = {"Authorization": f"Bearer {ACCOUNT['oauth_access_token']}"}
    statuses = [httpx.get(f"{url}/gorgias/api/tags", headers=bearer).status_code for _ in range(81)]
    assert statuses.count(200) == 80 and statuses[-1] == 429
    httpx.post(limits, json={"enterprise": True, "frozen_clock": True}).raise_for_status()
    assert [api(url, "GET", "tags").status_code for _ in range(41)][-1] == 429
    httpx.post(limits, json={"advance_seconds": 0.5}).raise_for_status()  # 40 per 10 s: 2 leaked
    assert [api(url, "GET", "tags").status_code for _ in range(3)] == [200, 200, 429]


# -- cursor lists ---------------------------------------------------------------------------------
def test_cursor_lists_default_30_max_100_no_offset(url):
    created = [write_in(url, f"c{i}@example.com")["id"] for i in range(35)]
    first = api(url, "GET", "tickets").json()
    assert first["object"] == "list" and first["uri"] == "/api/tickets"
    assert len(first["data"]) == 30 and first["meta"]["prev_cursor"] is None
    assert [t["id"] for t in first["data"]] == sorted(created, reverse=True)[:30]  # created_datetime:desc
    second = api(url, "GET", "tickets", params={"cursor": first["meta"]["next_cursor"]}).json()
    assert [t["id"] for t in second["data"]] == sorted(created, reverse=True)[30:]
    assert second["meta"]["next_cursor"] is None and second["meta"]["prev_cursor"]
    back = api(url, "GET", "tickets", params={"cursor": second["meta"]["prev_cursor"]}).json()
    assert back["data"] == first["data"]
    ascending = api(url, "GET", "tickets", params={"order_by": "created_datetime:asc", "limit": 100}).json()
    assert [t["id"] for t in ascending["data"]] == created
    for params in ({"limit": 101}, {"limit": 0}, {"offset": 30}, {"page": 2}, {"cursor": "garbage"}):
        answer = api(url, "GET", "tickets", params=params)
        assert answer.status_code == 400, params
        assert answer.json()["error"]["msg"]


# -- tickets --------------------------------------------------------------------------------------
def test_ticket_has_the_full_field_set_and_put_replaces_tags(url):
    ticket_id = write_in(url, tags=["refund", "vip"])["id"]
    ticket = api(url, "GET", f"tickets/{ticket_id}").json()
    fields = (
        "id uri external_id language status priority channel via from_agent subject customer "
        "assignee_user assignee_user_id assignee_team tags messages first_message last_message is_unread "
        "spam created_datetime opened_datetime last_received_message_datetime last_message_datetime "
        "updated_datetime closed_datetime snooze_datetime trashed_datetime reply_options meta"
    )
    for name in fields.split(" "):
        assert name in ticket, name
    assert DATETIME.match(ticket["created_datetime"]) and DATETIME.match(ticket["updated_datetime"])
    assert [set(tag) for tag in ticket["tags"]] == [{"id", "name", "decoration"}] * 2
    assert ticket["customer"]["email"] == "ann@example.com" and ticket["status"] == "open"
    assert ticket["first_message"]["id"] == ticket["last_message"]["id"] == ticket["messages"][0]["id"]

    updated = api(url, "PUT", f"tickets/{ticket_id}", json={"tags": [{"name": "vip"}, {"name": "cancel"}]})
    assert updated.status_code == 200
    assert [tag["name"] for tag in updated.json()["tags"]] == ["vip", "cancel"]  # refund is gone
    names = [tag["name"] for tag in api(url, "GET", "tags").json()["data"]]
    assert sorted(names) == ["cancel", "refund", "vip"]  # the unknown name was created
    closed = api(url, "PUT", f"tickets/{ticket_id}", json={"status": "closed"}).json()
    assert closed["status"] == "closed" and DATETIME.match(closed["closed_datetime"])
    assert [tag["name"] for tag in closed["tags"]] == ["vip", "cancel"]  # a subset leaves tags alone
    assert api(url, "PUT", f"tickets/{ticket_id}", json={"colour": "red"}).status_code == 400
    assert api(url, "PUT", f"tickets/{ticket_id}", json={"status": "solved"}).status_code == 400
    assert api(url, "PUT", f"tickets/{ticket_id}", json={"tags": ["vip"]}).status_code == 400
    assert api(url, "GET", "tickets/999").status_code == 404


def test_create_ticket_needs_a_message(url):
    customer = {"email": "bo@example.com"}
    assert api(url, "POST", "tickets", json={"customer": customer, "messages": []}).status_code == 400
    incoming = {
        "channel": "email",
        "via": "email",
        "from_agent": False,
        "sender": customer,
        "body_text": "Hi",
    }
    created = api(
        url, "POST", "tickets", json={"customer": customer, "subject": "Hi", "messages": [incoming]}
    )
    assert created.status_code == 201
    assert created.json()["customer"]["email"] == "bo@example.com"
    assert created.json()["messages"][0]["from_agent"] is False


# -- messages -------------------------------------------------------------------------------------
def test_internal_note_needs_no_receiver_and_is_not_public(url):
    ticket_id = write_in(url)["id"]
    created = api(url, "POST", f"tickets/{ticket_id}/messages", json=note(external_id="n-1"))
    assert created.status_code == 201
    message = created.json()
    assert message["public"] is False and message["receiver"] is None and message["external_id"] == "n-1"
    assert message["uri"] == f"/api/tickets/{ticket_id}/messages/{message['id']}/"
    assert api(url, "GET", f"tickets/{ticket_id}/messages/{message['id']}").json() == message
    stranger = api(url, "POST", f"tickets/{ticket_id}/messages", json=note(sender={"id": 4242}))
    assert stranger.status_code == 400
    assert api(url, "POST", f"tickets/{ticket_id}/messages", json=note(from_agent=False)).status_code == 400


def test_outgoing_email_needs_receiver_and_source_and_is_sent_later(url):
    ticket = write_in(url)
    path = f"tickets/{ticket['id']}/messages"
    good = reply(ticket)
    for broken in (
        {k: v for k, v in good.items() if k != "receiver"},
        {k: v for k, v in good.items() if k != "source"},
        {**good, "source": {**good["source"], "to": []}},
        {**good, "source": {**good["source"], "from": {"address": "other@shop.com"}}},
        {**good, "channel": "carrier-pigeon"},
        {k: v for k, v in good.items() if k != "body_text"},
    ):
        assert api(url, "POST", path, json=broken).status_code == 400
    created = api(url, "POST", path, json=good)
    assert created.status_code == 201
    message = created.json()
    assert message["public"] is True and message["sent_datetime"] is None  # creation is not sending
    sent = wait_for(
        lambda: api(url, "GET", f"{path}/{message['id']}").json()["sent_datetime"], "the sender to send"
    )
    assert DATETIME.match(sent)
    imported = api(url, "POST", path, json={**good, "sent_datetime": "2026-01-02T03:04:05.000000+00:00"})
    assert imported.json()["sent_datetime"] == "2026-01-02T03:04:05.000000+00:00"  # recorded, not sent


def test_sending_can_fail(url):
    ticket = write_in(url)
    httpx.post(
        f"{url}/_sandbox/gorgias/sending", json={"fail": True, "error": "mailbox full"}
    ).raise_for_status()
    message = api(url, "POST", f"tickets/{ticket['id']}/messages", json=reply(ticket)).json()

    def failed() -> dict[str, Any] | None:
        found = api(url, "GET", f"tickets/{ticket['id']}/messages/{message['id']}").json()
        return found if found["failed_datetime"] else None

    found = wait_for(failed, "the send to fail")
    assert found["sent_datetime"] is None and found["last_sending_error"] == {"message": "mailbox full"}
    events = api(url, "GET", "events", params={"types": "ticket-message-failed"}).json()["data"]
    assert [e["object_id"] for e in events] == [message["id"]]


def test_incoming_message_is_from_the_customer_and_reopens(url):
    ticket = write_in(url)
    api(url, "PUT", f"tickets/{ticket['id']}", json={"status": "closed"}).raise_for_status()
    again = httpx.post(
        f"{url}/_sandbox/gorgias/tickets/{ticket['id']}/messages", json={"body_text": "Hello?"}
    )
    assert again.status_code == 201
    assert again.json()["from_agent"] is False and again.json()["sender"]["email"] == "ann@example.com"
    reopened = api(url, "GET", f"tickets/{ticket['id']}").json()
    assert reopened["status"] == "open" and reopened["last_message"]["id"] == again.json()["id"]


def test_messages_are_a_cursor_list(url):
    ticket_id = write_in(url)["id"]
    for i in range(4):
        api(url, "POST", f"tickets/{ticket_id}/messages", json=note(f"n{i}")).raise_for_status()
    first = api(url, "GET", f"tickets/{ticket_id}/messages", params={"limit": 3}).json()
    rest = api(
        url,
        "GET",
        f"tickets/{ticket_id}/messages",
        params={"limit": 3, "cursor": first["meta"]["next_cursor"]},
    )
    texts = [m["body_text"] for m in first["data"] + rest.json()["data"]]
    assert texts == ["Cancel it", "n0", "n1", "n2", "n3"]


# -- tags -----------------------------------------------------------------------------------------
def test_tag_sub_resource_takes_ids(url):
    ticket_id = write_in(url, tags=["refund"])["id"]
    path = f"tickets/{ticket_id}/tags"
    vip = api(url, "POST", "tags", json={"name": "vip"}).json()
    assert api(url, "POST", "tags", json={"name": "VIP"}).status_code == 400
    refund_id = api(url, "GET", path).json()["data"][0]["id"]
    assert api(url, "POST", path, json={"names": ["vip"]}).status_code == 400  # ids only
    assert api(url, "POST", path, json={"ids": [999]}).status_code == 404
    assert api(url, "POST", path, json={"ids": [vip["id"]]}).status_code == 204
    assert [t["name"] for t in api(url, "GET", path).json()["data"]] == ["refund", "vip"]
    assert api(url, "DELETE", path, json={"ids": [refund_id]}).status_code == 204
    assert [t["name"] for t in api(url, "GET", path).json()["data"]] == ["vip"]
    assert api(url, "PUT", path, json={"ids": [refund_id]}).status_code == 204
    assert [t["name"] for t in api(url, "GET", path).json()["data"]] == ["refund"]
    account = api(url, "GET", "tags").json()
    assert account["object"] == "list" and {t["name"] for t in account["data"]} == {"refund", "vip"}


# -- events ---------------------------------------------------------------------------------------
def test_events_for_polling(url):
    ticket_id = write_in(url)["id"]
    api(url, "POST", f"tickets/{ticket_id}/messages", json=note()).raise_for_status()
    created = api(url, "GET", "events", params={"types": "ticket-created"}).json()
    assert [(e["type"], e["object_id"]) for e in created["data"]] == [("ticket-created", ticket_id)]
    both = api(url, "GET", "events", params={"types": "ticket-created,ticket-message-created"}).json()
    assert [e["type"] for e in both["data"]] == ["ticket-message-created", "ticket-created"]  # newest first


# -- HTTP integrations ----------------------------------------------------------------------------
class Receiver:
    """A local HTTP endpoint answering each call with the next status of ``script`` (then 200)."""

    def __init__(self, script: list[int] | None = None) -> None:
        self.script = list(script or [])
        self.calls: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.script.pop(0) if receiver.script else 200
                receiver.calls.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": json.loads(body),
                        "status": status,
                    }
                )
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(script: list[int] | None = None) -> Receiver:
        made.append(Receiver(script))
        return made[-1]

    yield make
    for each in made:
        each.httpd.shutdown()


def integrate(url: str, target: str, triggers: tuple[str, ...] = ("ticket-created",)) -> dict[str, Any]:
    body = {
        "name": "mienne-ops",
        "type": "http",
        "http": {
            "url": f"{target}?t={{{{ticket.id}}}}",
            "method": "POST",
            "headers": {"X-Mienne-Webhook-Secret": "s3cret"},
            "form": {
                "ticket_id": "{{ticket.id}}",
                "email": "{{ticket.customer.email}}",
                "x": "{{message.id}}",
            },
            "request_content_type": "application/json",
            "triggers": {trigger: True for trigger in triggers},
        },
    }
    answer = api(url, "POST", "integrations", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def health(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/_sandbox/gorgias/integrations").json()["data"][0]


def test_integrations_are_validated_and_listed(url):
    good = {
        "name": "x",
        "type": "http",
        "http": {"url": "https://ours/hook", "triggers": {"ticket-created": True}},
    }
    assert api(url, "POST", "integrations", json=good).status_code == 201
    for broken in (
        {**good, "type": "email"},
        {**good, "http": {**good["http"], "triggers": {"ticket_created": True}}},
        {**good, "http": {**good["http"], "url": "ftp://x"}},
        {**good, "http": {**good["http"], "headers": {"x": 1}}},
    ):
        assert api(url, "POST", "integrations", json=broken).status_code == 400
    listed = api(url, "GET", "integrations").json()
    assert [i["name"] for i in listed["data"]] == ["x"] and listed["data"][0]["deactivated_datetime"] is None


def test_emitter_renders_ticket_templates_sends_headers_no_signature(url, receiver):
    target = receiver()
    integrate(url, target.url, ("ticket-created", "ticket-message-created"))
    ticket = write_in(url)
    call = wait_for(lambda: target.calls and target.calls[0], "the ticket-created call")
    assert call["path"] == f"/hook?t={ticket['id']}"
    assert call["body"] == {"ticket_id": str(ticket["id"]), "email": "ann@example.com", "x": ""}
    assert call["headers"]["X-Mienne-Webhook-Secret"] == "s3cret"
    assert not [h for h in call["headers"] if "signature" in h.lower() or "hmac" in h.lower()]
    httpx.post(f"{url}/_sandbox/gorgias/tickets/{ticket['id']}/messages", json={"body_text": "More"})
    wait_for(lambda: len(target.calls) == 2, "the ticket-message-created call")
    time.sleep(0.3)  # nothing else is sent (an internal state check, not a timing assertion)
    assert len(target.calls) == 2


def test_emitter_retries_a_failed_call_and_a_success_resets_the_count(url, receiver):
    target = receiver([500, 503])
    integrate(url, target.url)
    write_in(url)
    wait_for(lambda: [c["status"] for c in target.calls] == [500, 503, 200], "two retries")
    assert health(url)["consecutive_failures"] == 0
    assert health(url)["calls_failed"] == 2 and health(url)["calls_delivered"] == 1


def test_emitter_drops_and_duplicates_by_the_fault_book(url, receiver):
    target = receiver()
    integrate(url, target.url)
    httpx.post(f"{url}/_sandbox/faults", json={"gorgias": {"webhook_duplicate_rate": 1}}).raise_for_status()
    write_in(url)
    wait_for(lambda: len(target.calls) == 2, "two copies")
    assert target.calls[0]["body"] == target.calls[1]["body"]
    httpx.post(f"{url}/_sandbox/faults", json={"gorgias": {"webhook_drop_rate": 1}}).raise_for_status()
    write_in(url, "bo@example.com")
    wait_for(lambda: health(url)["calls_dropped"] == 1, "the dropped call to be logged")
    assert len(target.calls) == 2


def test_integration_is_deactivated_after_100_consecutive_failures(url, receiver):
    unreachable = receiver()
    dead_url = unreachable.url
    unreachable.httpd.shutdown()
    unreachable.httpd.server_close()  # connection refused from now on: each call fails at once
    httpx.post(
        f"{url}/_sandbox/gorgias/delivery", json={"attempts": 150, "backoff_seconds": 0}
    ).raise_for_status()
    integration = integrate(url, dead_url)
    write_in(url)
    wait_for(lambda: health(url)["deactivated_datetime"], "the integration to be deactivated", deadline=60)
    status = health(url)
    assert status["consecutive_failures"] == 100 and status["calls_failed"] == 100  # no call after the 100th
    listed = api(url, "GET", f"integrations/{integration['id']}").json()
    assert DATETIME.match(listed["deactivated_datetime"])
    write_in(url, "bo@example.com")  # a deactivated integration is not called
    reactivated = api(url, "PUT", f"integrations/{integration['id']}", json={"deactivated_datetime": None})
    assert reactivated.json()["deactivated_datetime"] is None and health(url)["consecutive_failures"] == 0


# -- control plane --------------------------------------------------------------------------------
def test_lost_responses_apply_the_write_then_answer_5xx(url):
    ticket_id = write_in(url)["id"]
    httpx.post(f"{url}/_sandbox/gorgias/lost_responses", json={"count": 1, "status": 502}).raise_for_status()
    lost = api(url, "POST", f"tickets/{ticket_id}/messages", json=note("kept"))
    assert lost.status_code == 502 and lost.json() == {"error": {"msg": "Internal server error."}}
    texts = [m["body_text"] for m in api(url, "GET", f"tickets/{ticket_id}/messages").json()["data"]]
    assert texts == ["Cancel it", "kept"]
    assert api(url, "POST", f"tickets/{ticket_id}/messages", json=note()).status_code == 201


def test_control_plane_input_and_state(url):
    assert httpx.post(f"{url}/_sandbox/gorgias/tickets", json={"subject": "x"}).status_code == 400
    assert httpx.post(f"{url}/_sandbox/gorgias/tickets", content=b"[1]").status_code == 400
    assert (
        httpx.post(f"{url}/_sandbox/gorgias/tickets/1/messages", json={"body_text": "x"}).status_code == 404
    )
    write_in(url, tags=["refund"])
    write_in(url)  # the same customer writes a second ticket
    state = httpx.get(f"{url}/_sandbox/state").json()["gorgias"]
    assert len(state["tickets"]) == 2 and len(state["messages"]) == 2 and len(state["customers"]) == 1
    assert [t["name"] for t in state["tags"]] == ["refund"] and state["integrations"] == []
