"""The Zendesk client against the Zendesk sandbox over real HTTP.

Lost answers and concurrent updates are injected by a transport between the client and the sandbox
at exactly the request they concern, so the tests are deterministic.
"""

from __future__ import annotations

import httpx
import pytest

from mienne_ops.errors import AuthError, NotFoundError
from mienne_ops.integrations.http import HttpCore, RetryPolicy
from mienne_ops.integrations.zendesk import (
    ZendeskClient,
    ZendeskResource,
    carries_reference,
    describe_error,
)
from mienne_ops.sandbox import credentials
from mienne_ops_tests.support import single_system_server

server = single_system_server("zendesk")


@pytest.fixture
def url(server):
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server.url
    httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True})


class Scripted(httpx.BaseTransport):
    """Passes requests to the sandbox; the n-th ticket update gets the n-th scripted twist:
    ``"conflict"`` (another agent updates the ticket just before it), ``"lose"`` (it lands, the
    answer is lost: read timeout), ``"502"`` (it lands, a proxy answers 502), None (untouched)."""

    def __init__(self, url: str, script: list[str | None]) -> None:
        self.url = url
        self.script = list(script)
        self.inner = httpx.HTTPTransport()
        self.updates = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        is_update = request.method == "PUT" and path.endswith(".json") and "/tags" not in path
        twist = self.script.pop(0) if is_update and self.script else None
        self.updates += is_update
        if twist == "conflict":
            ticket_id = path.rsplit("/", 1)[1].removesuffix(".json")
            httpx.post(
                f"{self.url}/_sandbox/zendesk/tickets/{ticket_id}/agent_update", json={"body": "On it"}
            )
        response = self.inner.handle_request(request)
        if twist == "lose":
            response.read()
            response.close()
            raise httpx.ReadTimeout("answer lost", request=request)
        if twist == "502":
            response.read()
            response.close()
            return httpx.Response(
                502, json={"error": "BadGateway", "description": "upstream"}, request=request
            )
        return response


def make_client(url: str, transport: httpx.BaseTransport | None = None, **overrides) -> ZendeskClient:
    settings = {
        "email": credentials.ZENDESK["email"],
        "api_token": credentials.ZENDESK["api_token"],
        **overrides,
    }
    core = HttpCore(
        system="zendesk",
        base_url=f"{url}/zendesk",
        auth=httpx.BasicAuth(f"{settings['email']}/token", settings["api_token"]),
        retry=RetryPolicy(max_attempts=4, base_delay=0.01),
        transport=transport,
        describe_error=describe_error,
        sleep=lambda seconds: None,
    )
    return ZendeskClient(core, author_id=settings.get("author_id"))


def new_ticket(url: str, **extra) -> int:
    body = {"requester_email": "ada@example.com", "subject": "Refund please", "body": "Hi", **extra}
    return httpx.post(f"{url}/_sandbox/zendesk/tickets", json=body).json()["ticket"]["id"]


def ticket_comments(url: str, ticket_id: int) -> list[dict]:
    tickets = httpx.get(f"{url}/_sandbox/state").json()["zendesk"]["tickets"]
    return next(t for t in tickets if t["id"] == ticket_id)["comments"]


def test_ticket_reads_the_requester_email_and_tags(url):
    ticket_id = new_ticket(url, tags=["refund_request"])
    ticket = make_client(url).ticket(ticket_id)
    assert (ticket.id, ticket.status, ticket.subject) == (ticket_id, "new", "Refund please")
    assert ticket.requester_email == "ada@example.com" and ticket.requester_id
    assert ticket.tags == ["refund_request"] and ticket.created_at.tzinfo is not None


def test_wrong_token_is_an_auth_error_and_unknown_ticket_not_found(url):
    with pytest.raises(AuthError):
        make_client(url, api_token="wrong").ticket(new_ticket(url))
    with pytest.raises(NotFoundError):
        make_client(url).ticket(999_999)


def test_comments_reads_every_page(url):
    ticket_id = new_ticket(url)
    httpx.post(f"{url}/_sandbox/zendesk/tickets/{ticket_id}/fill", json={"count": 230})
    comments = make_client(url).comments(ticket_id)
    assert len(comments) == 231 and comments[0].body == "Hi" and comments[0].public
    assert len({c.id for c in comments}) == 231


def test_add_comment_posts_once_per_dedupe_key(url):
    ticket_id = new_ticket(url)
    client = make_client(url, author_id=credentials.ZENDESK_AGENT_ID)
    first = client.add_comment(ticket_id, "Refund id R-1", public=False, dedupe_key="refund:R-1:note")
    again = client.add_comment(ticket_id, "Refund id R-1", public=False, dedupe_key="refund:R-1:note")
    reply = client.add_comment(
        ticket_id, "Your refund is on its way.", public=True, dedupe_key="refund:R-1:reply", status="solved"
    )
    assert first is not None and again is not None and reply is not None
    assert again.id == first.id and reply.id != first.id
    assert first.public is False and reply.public is True and first.author_id == credentials.ZENDESK_AGENT_ID
    assert carries_reference(first.body, "refund:R-1:note")
    comments = ticket_comments(url, ticket_id)
    assert len(comments) == 3
    assert comments[1]["body"] == "Refund id R-1\n\nref: refund:R-1:note"
    assert client.ticket(ticket_id).status == "solved"


def test_a_lost_answer_is_settled_by_reading_not_by_posting_again(url):
    ticket_id = new_ticket(url)
    transport = Scripted(url, ["lose"])
    client = make_client(url, transport)
    posted = client.add_comment(ticket_id, "Cancelled.", public=True, dedupe_key="cancel:1001")
    assert posted is not None and transport.updates == 1  # found by reading, never resent
    # The whole run retried (a new process, a Dagster retry): still one comment.
    again = make_client(url).add_comment(ticket_id, "Cancelled.", public=True, dedupe_key="cancel:1001")
    assert again is not None and again.id == posted.id
    assert [c["body"] for c in ticket_comments(url, ticket_id)].count("Cancelled.\n\nref: cancel:1001") == 1


def test_a_5xx_after_the_write_landed_does_not_post_twice(url):
    ticket_id = new_ticket(url)
    transport = Scripted(url, ["502"])
    posted = make_client(url, transport).add_comment(ticket_id, "Refunded.", public=True, dedupe_key="r:2")
    assert posted is not None and transport.updates == 1
    assert len(ticket_comments(url, ticket_id)) == 2


def test_a_concurrent_update_is_a_409_the_client_rereads_and_retries(url):
    ticket_id = new_ticket(url)
    transport = Scripted(url, ["conflict", "conflict"])
    posted = make_client(url, transport).add_comment(ticket_id, "Done.", public=False, dedupe_key="r:3")
    assert posted is not None and transport.updates == 3  # two conflicts, then the write
    bodies = [c["body"] for c in ticket_comments(url, ticket_id)]
    assert bodies == ["Hi", "On it", "On it", "Done.\n\nref: r:3"]


def test_a_closed_ticket_gets_no_comment(url):
    ticket_id = new_ticket(url)
    httpx.post(f"{url}/_sandbox/zendesk/tickets/{ticket_id}/agent_update", json={"status": "closed"})
    assert make_client(url).add_comment(ticket_id, "Too late", public=True, dedupe_key="r:4") is None
    assert len(ticket_comments(url, ticket_id)) == 1


def test_add_tags_adds_and_never_replaces(url):
    ticket_id = new_ticket(url, tags=["refund_request", "vip"])
    client = make_client(url)
    client.add_tags(ticket_id, ["mienne_handled"])
    client.add_tags(ticket_id, ["mienne_handled"])
    assert client.ticket(ticket_id).tags == ["refund_request", "vip", "mienne_handled"]


def test_429_is_waited_out_and_the_remaining_budget_is_read(url):
    ticket_id = new_ticket(url)
    limits = f"{url}/_sandbox/zendesk/limits"
    httpx.post(limits, json={"account_per_minute": 2, "frozen_clock": True}).raise_for_status()
    waited: list[float] = []

    def wait(seconds: float) -> None:  # the client's sleep moves the sandbox's frozen clock
        waited.append(seconds)
        httpx.post(limits, json={"advance_seconds": seconds}).raise_for_status()

    client = make_client(url)
    client.core.sleep = wait
    client.ticket(ticket_id)
    assert (client.rate_limit, client.rate_limit_remaining) == (2, 1)
    client.ticket(ticket_id)
    assert client.rate_limit_remaining == 0 and not waited
    assert client.ticket(ticket_id).id == ticket_id  # 429, Retry-After: 60, waited, then served
    assert len(waited) == 1 and waited[0] >= 60


def test_the_resource_builds_a_client_that_talks_to_the_sandbox(url):
    resource = ZendeskResource(
        base_url=f"{url}/zendesk",
        email=credentials.ZENDESK["email"],
        api_token=credentials.ZENDESK["api_token"],
        author_id=credentials.ZENDESK_AGENT_ID,
    )
    client = resource.build_client()
    try:
        assert client.author_id == credentials.ZENDESK_AGENT_ID
        assert client.ticket(new_ticket(url)).status == "new"
    finally:
        client.close()


def test_a_dedupe_key_is_one_line(url):
    ticket_id = new_ticket(url)
    for bad in ("", "a\nb"):
        with pytest.raises(ValueError):
            make_client(url).add_comment(ticket_id, "x", public=False, dedupe_key=bad)
