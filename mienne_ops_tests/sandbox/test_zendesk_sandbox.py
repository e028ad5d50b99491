"""The Zendesk fake's rules, one test per item of zendesk.md's fidelity checklist (plus the control
plane). Limits are tested on a frozen clock, so nothing depends on how fast the box is."""

from __future__ import annotations

import httpx
import pytest

from mienne_ops.sandbox import credentials
from mienne_ops_tests.support import single_system_server

server = single_system_server("zendesk")
AUTH = (f"{credentials.ZENDESK['email']}/token", credentials.ZENDESK["api_token"])
AGENT = credentials.ZENDESK_AGENT_ID


@pytest.fixture
def url(server):
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server.url
    httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True})


def api(url: str) -> httpx.Client:
    return httpx.Client(base_url=f"{url}/zendesk/api/v2", auth=AUTH, timeout=30)


def new_ticket(url: str, **extra) -> dict:
    body = {
        "requester_email": "ada@example.com",
        "requester_name": "Ada",
        "subject": "Cancel my order #1001",
        "body": "Please cancel it.",
        **extra,
    }
    answer = httpx.post(f"{url}/_sandbox/zendesk/tickets", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["ticket"]


def put_comment(client: httpx.Client, ticket_id: int, **ticket) -> httpx.Response:
    return client.put(f"/tickets/{ticket_id}.json", json={"ticket": ticket})


def test_auth_is_email_slash_token_basic_or_bearer_and_nothing_else(url):
    ticket = new_ticket(url)
    path = f"{url}/zendesk/api/v2/tickets/{ticket['id']}.json"
    assert httpx.get(path, auth=AUTH).status_code == 200
    bearer = {"Authorization": f"Bearer {credentials.ZENDESK['oauth_token']}"}
    assert httpx.get(path, headers=bearer).status_code == 200
    for bad in (
        (credentials.ZENDESK["email"], credentials.ZENDESK["api_token"]),  # no "/token"
        (f"{credentials.ZENDESK['email']}/token", "wrong"),
        ("someone@else.com/token", credentials.ZENDESK["api_token"]),
    ):
        refused = httpx.get(path, auth=bad)
        assert refused.status_code == 401
        assert set(refused.json()) >= {"error", "description"}
    assert httpx.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(path).status_code == 401
    assert httpx.get(path, auth=("agent\u00e9/token", "t\u00e9")).status_code == 401


def test_update_appends_the_comment_public_by_default_and_applies_fields(url):
    ticket = new_ticket(url, tags=["refund", "vip"])
    with api(url) as client:
        answer = put_comment(
            client,
            ticket["id"],
            comment={"body": "Refunded 12.00 EUR."},
            status="pending",
            priority="high",
            assignee_id=AGENT,
            group_id=42,
            custom_fields=[{"id": 360001, "value": "refund"}],
            tags=["handled"],
        )
        assert answer.status_code == 200
        body = answer.json()
        assert set(body) == {"ticket", "audit"}
        updated = body["ticket"]
        assert (updated["status"], updated["priority"], updated["assignee_id"], updated["group_id"]) == (
            "pending",
            "high",
            AGENT,
            42,
        )
        assert updated["custom_fields"] == [{"id": 360001, "value": "refund"}]
        assert updated["tags"] == ["handled"]  # replaced, not added
        events = body["audit"]["events"]
        (comment_event,) = [e for e in events if e["type"] == "Comment"]
        assert comment_event["public"] is True and comment_event["author_id"] == AGENT
        changed = {e["field_name"] for e in events if e["type"] == "Change"}
        assert changed == {"status", "priority", "assignee_id", "group_id", "custom_fields", "tags"}

        note = put_comment(
            client, ticket["id"], comment={"html_body": "<p>Refund id <b>R-1</b></p>", "public": False}
        )
        assert note.status_code == 200
        comments = client.get(f"/tickets/{ticket['id']}/comments.json").json()["comments"]
    assert [c["public"] for c in comments] == [True, True, False]
    assert comments[0]["author_id"] != AGENT  # the requester's first comment
    assert comments[2]["body"] == "Refund id R-1"


def test_update_validates_its_input(url):
    ticket = new_ticket(url)
    with api(url) as client:
        assert put_comment(client, ticket["id"], comment={"body": "  "}).status_code == 422
        assert put_comment(client, ticket["id"], comment={"body": "x", "public": "no"}).status_code == 422
        assert put_comment(client, ticket["id"], comment={"body": "x", "author_id": 1}).status_code == 422
        assert put_comment(client, ticket["id"], status="done").status_code == 422
        assert client.put(f"/tickets/{ticket['id']}.json", json={"comment": {"body": "x"}}).status_code == 400
        closed = httpx.post(
            f"{url}/_sandbox/zendesk/tickets/{ticket['id']}/agent_update", json={"status": "closed"}
        )
        assert closed.status_code == 200
        refused = put_comment(client, ticket["id"], comment={"body": "too late"})
    assert refused.status_code == 422 and refused.json()["error"] == "RecordInvalid"


def test_tags_route_adds_sets_and_removes(url):
    ticket = new_ticket(url, tags=["refund"])
    path = f"/tickets/{ticket['id']}/tags.json"
    with api(url) as client:
        assert client.put(path, json={"tags": ["cancel", "refund"]}).json() == {"tags": ["refund", "cancel"]}
        assert client.put(path, json={"tags": ["Handled By Bot"]}).json()["tags"] == [
            "refund",
            "cancel",
            "handled",
            "by",
            "bot",
        ]
        assert client.request("DELETE", path, json={"tags": ["by", "bot"]}).json()["tags"] == [
            "refund",
            "cancel",
            "handled",
        ]
        assert client.post(path, json={"tags": ["only"]}).json() == {"tags": ["only"]}
        assert client.get(f"/tickets/{ticket['id']}.json").json()["ticket"]["tags"] == ["only"]


def test_safe_update_with_a_stale_stamp_is_a_409(url):
    ticket = new_ticket(url)
    with api(url) as client:
        stamp = client.get(f"/tickets/{ticket['id']}.json").json()["ticket"]["updated_at"]
        httpx.post(f"{url}/_sandbox/zendesk/tickets/{ticket['id']}/agent_update", json={"body": "I'm on it"})
        stale = put_comment(
            client, ticket["id"], comment={"body": "x"}, safe_update=True, updated_stamp=stamp
        )
        assert stale.status_code == 409 and stale.json()["error"] == "UpdateConflict"
        fresh = client.get(f"/tickets/{ticket['id']}.json").json()["ticket"]["updated_at"]
        assert fresh > stamp
        ok = put_comment(client, ticket["id"], comment={"body": "x"}, safe_update=True, updated_stamp=fresh)
        assert ok.status_code == 200
        # Our own write moved the stamp too: resending the same request is a conflict, not a 2nd post.
        again = put_comment(
            client, ticket["id"], comment={"body": "x"}, safe_update=True, updated_stamp=fresh
        )
        assert again.status_code == 409
        assert put_comment(client, ticket["id"], comment={"body": "x"}, safe_update=True).status_code == 422


def test_the_5001st_comment_is_refused(url):
    ticket = new_ticket(url)  # the first comment is #1
    filled = httpx.post(
        f"{url}/_sandbox/zendesk/tickets/{ticket['id']}/fill", json={"count": 4998}, timeout=120
    )
    assert filled.json() == {"comment_count": 4999}
    with api(url) as client:
        assert put_comment(client, ticket["id"], comment={"body": "the 5,000th"}).status_code == 200
        refused = put_comment(client, ticket["id"], comment={"body": "the 5,001st"})
    assert refused.status_code == 422
    assert set(refused.json()) >= {"error", "description"}


def test_comments_list_pages_by_cursor_and_by_offset(url):
    ticket = new_ticket(url)
    httpx.post(f"{url}/_sandbox/zendesk/tickets/{ticket['id']}/fill", json={"count": 149})
    path = f"/tickets/{ticket['id']}/comments.json"
    with api(url) as client:
        first = client.get(path, params={"page[size]": 100}).json()
        assert len(first["comments"]) == 100 and first["meta"]["has_more"] is True
        second = client.get(
            path, params={"page[size]": 100, "page[after]": first["meta"]["after_cursor"]}
        ).json()
        assert len(second["comments"]) == 50 and second["meta"]["has_more"] is False
        ids = [c["id"] for c in first["comments"] + second["comments"]]
        assert ids == sorted(set(ids))
        assert all(c["public"] is False for c in second["comments"])  # the filler internal notes
        offset = client.get(path).json()
        assert offset["count"] == 150 and len(offset["comments"]) == 100 and offset["next_page"]
        assert client.get(path, params={"page[size]": 101}).status_code == 400


def test_every_answer_carries_the_rate_limit_headers(url):
    ticket = new_ticket(url)
    with api(url) as client:
        answers = [
            client.get(f"/tickets/{ticket['id']}.json"),
            client.get("/tickets/999999.json"),
            put_comment(client, ticket["id"], comment={"body": "x"}),
            httpx.get(f"{url}/zendesk/api/v2/tickets/{ticket['id']}.json"),  # 401
        ]
    assert [a.status_code for a in answers] == [200, 404, 200, 401]
    for answer in answers:
        assert answer.headers["X-Rate-Limit"] == "700"
        assert int(answer.headers["X-Rate-Limit-Remaining"]) < 700


def test_the_account_limit_answers_429_with_retry_after(url):
    ticket = new_ticket(url)
    httpx.post(f"{url}/_sandbox/zendesk/limits", json={"account_per_minute": 3, "frozen_clock": True})
    with api(url) as client:
        statuses = [client.get(f"/tickets/{ticket['id']}.json") for _ in range(4)]
        assert [a.status_code for a in statuses] == [200, 200, 200, 429]
        assert statuses[2].headers["X-Rate-Limit-Remaining"] == "0"
        assert statuses[3].headers["Retry-After"] == "60"
        assert statuses[3].json()["error"] == "TooManyRequests"
        httpx.post(f"{url}/_sandbox/zendesk/limits", json={"advance_seconds": 60})
        assert client.get(f"/tickets/{ticket['id']}.json").status_code == 200


def test_the_update_ticket_limit_is_its_own_100_per_minute(url):
    tickets = [new_ticket(url, requester_email=f"c{i}@example.com") for i in range(4)]
    httpx.post(f"{url}/_sandbox/zendesk/limits", json={"frozen_clock": True})
    with api(url) as client:
        for index in range(100):
            answer = put_comment(client, tickets[index % 4]["id"], comment={"body": f"note {index}"})
            assert answer.status_code == 200, (index, answer.text)
        refused = put_comment(client, tickets[0]["id"], comment={"body": "one too many"})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        # Reads still go: only the Update Ticket endpoint is spent.
        assert client.get(f"/tickets/{tickets[0]['id']}.json").status_code == 200
        httpx.post(f"{url}/_sandbox/zendesk/limits", json={"advance_seconds": 60})
        assert put_comment(client, tickets[0]["id"], comment={"body": "later"}).status_code == 200


def test_one_ticket_takes_30_updates_per_user_per_10_minutes(url):
    busy, other = new_ticket(url), new_ticket(url, requester_email="bo@example.com")
    httpx.post(f"{url}/_sandbox/zendesk/limits", json={"frozen_clock": True})
    with api(url) as client:
        for index in range(30):
            assert put_comment(client, busy["id"], comment={"body": f"n{index}"}).status_code == 200
        refused = put_comment(client, busy["id"], comment={"body": "31st"})
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "600"
        assert put_comment(client, other["id"], comment={"body": "other ticket"}).status_code == 200
        httpx.post(f"{url}/_sandbox/zendesk/limits", json={"advance_seconds": 600})
        assert put_comment(client, busy["id"], comment={"body": "after 10 min"}).status_code == 200


def test_unknown_ticket_or_user_is_a_404_in_zendesk_error_shape(url):
    with api(url) as client:
        for path in ("/tickets/424242.json", "/tickets/424242/comments.json", "/users/1.json"):
            answer = client.get(path)
            assert answer.status_code == 404
            assert answer.json() == {"error": "RecordNotFound", "description": "Not found"}
        assert put_comment(client, 424242, comment={"body": "x"}).status_code == 404
        assert client.put("/tickets/424242/tags.json", json={"tags": ["x"]}).status_code == 404


def test_ticket_sideloads_the_requester_and_users_are_readable(url):
    ticket = new_ticket(url)
    with api(url) as client:
        shown = client.get(f"/tickets/{ticket['id']}.json", params={"include": "users"}).json()
        (user,) = shown["users"]
        assert user["id"] == shown["ticket"]["requester_id"] and user["email"] == "ada@example.com"
        assert "users" not in client.get(f"/tickets/{ticket['id']}.json").json()
        assert client.get(f"/users/{user['id']}.json").json()["user"]["email"] == "ada@example.com"


def test_a_customer_writing_in_makes_a_new_ticket_shown_in_state(url):
    ticket = new_ticket(url, tags=["Refund"])
    again = new_ticket(url, subject="Where is my refund?")
    assert ticket["status"] == "new" and ticket["tags"] == ["refund"]
    assert again["requester_id"] == ticket["requester_id"]  # the same customer, one user
    state = httpx.get(f"{url}/_sandbox/state").json()["zendesk"]
    shown = {t["id"]: t for t in state["tickets"]}
    (first,) = shown[ticket["id"]]["comments"]
    assert first["public"] is True and first["body"] == "Please cancel it."
    assert "_comment_count" not in shown[ticket["id"]]
    assert {u["email"] for u in state["users"]} == {"ada@example.com", credentials.ZENDESK["email"]}
    bad = httpx.post(
        f"{url}/_sandbox/zendesk/tickets", json={"requester_email": "nobody", "subject": "x", "body": "y"}
    )
    assert bad.status_code == 400


def test_injected_faults_use_the_zendesk_error_shape(url):
    ticket = new_ticket(url)
    httpx.post(f"{url}/_sandbox/faults", json={"zendesk": {"rate_429": 1.0, "burst_length": 1}})
    with api(url) as client:
        answer = client.get(f"/tickets/{ticket['id']}.json")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"
    assert set(answer.json()) == {"error", "description"} and "X-Rate-Limit-Remaining" in answer.headers
