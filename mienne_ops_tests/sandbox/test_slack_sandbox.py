"""The Slack fake is as strict as Slack's Web API, and `slack_sdk` (through our resource) talks to it
unchanged."""

from collections.abc import Iterator

import httpx
import pytest

from mienne_ops.errors import AuthError, PermanentError, TransientError
from mienne_ops.integrations.slack import SlackAlertResource
from mienne_ops.sandbox import credentials
from mienne_ops_tests.support import single_system_server

server = single_system_server("slack")
SLACK = credentials.SLACK
BEARER = {"Authorization": f"Bearer {SLACK['bot_token']}"}


@pytest.fixture
def url(server) -> Iterator[str]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server.url
    httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True})


def post(url: str, headers: dict | None = None, **body) -> dict:
    response = httpx.post(f"{url}/slack/api/chat.postMessage", json=body, headers=headers or {})
    assert response.status_code == 200  # Slack answers its errors with 200 and ok: false
    return response.json()


def test_a_posted_message_answers_slacks_shape_and_is_kept(url):
    answer = post(url, BEARER, channel=SLACK["channel"], text="hello")
    assert answer["ok"] is True and answer["channel"] == SLACK["channel_id"]
    assert answer["message"]["text"] == "hello" and answer["message"]["ts"] == answer["ts"]
    assert answer["message"]["type"] == "message" and answer["message"]["bot_id"]
    (kept,) = httpx.get(f"{url}/_sandbox/slack/messages").json()["messages"]
    assert kept["text"] == "hello" and kept["channel"] == SLACK["channel_id"]
    assert httpx.get(f"{url}/_sandbox/state").json()["slack"]["messages"] == [kept]


@pytest.mark.parametrize(
    ("headers", "body", "error"),
    [
        ({}, {"channel": SLACK["channel"], "text": "x"}, "not_authed"),
        ({"Authorization": "Bearer xoxb-wrong"}, {"channel": SLACK["channel"], "text": "x"}, "invalid_auth"),
        (BEARER, {"channel": "#elsewhere", "text": "x"}, "channel_not_found"),
        (BEARER, {"text": "x"}, "channel_not_found"),
        (BEARER, {"channel": SLACK["channel"]}, "no_text"),
        (BEARER, {"channel": SLACK["channel"], "text": ""}, "no_text"),
        (BEARER, {"channel": SLACK["channel"], "text": "x" * 40_001}, "msg_too_long"),
        (BEARER, {"channel": SLACK["channel"], "blocks": "not a list"}, "invalid_blocks"),
    ],
)
def test_what_slack_refuses_is_refused_with_slacks_error(url, headers, body, error):
    assert post(url, headers, **body) == {"ok": False, "error": error}
    assert httpx.get(f"{url}/_sandbox/slack/messages").json()["messages"] == []


def test_blocks_alone_and_a_form_body_with_its_token_are_accepted(url):
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]
    assert post(url, BEARER, channel=SLACK["channel_id"], blocks=blocks)["ok"]
    form = {"token": SLACK["bot_token"], "channel": "mienne-alerts", "text": "by form"}
    assert httpx.post(f"{url}/slack/api/chat.postMessage", data=form).json()["ok"]


def resource(
    url: str, token: str = SLACK["bot_token"], channel: str = SLACK["channel"]
) -> SlackAlertResource:
    return SlackAlertResource(token=token, channel=channel, base_url=f"{url}/slack/api/")


def test_the_alert_resource_posts_through_slack_sdk(url):
    ts = resource(url).post("an alert")
    (kept,) = httpx.get(f"{url}/_sandbox/slack/messages").json()["messages"]
    assert kept["ts"] == ts and kept["text"] == "an alert"


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        (lambda url: resource(url, token="xoxb-wrong"), AuthError),
        (lambda url: resource(url, channel="#nowhere"), PermanentError),
    ],
)
def test_the_resource_turns_slacks_refusals_into_our_errors(url, setup, error):
    with pytest.raises(error):
        setup(url).post("x")


def test_a_revoked_token_and_an_outage_are_told_apart(url):
    httpx.post(f"{url}/_sandbox/slack/token", json={"revoked": True}).raise_for_status()
    with pytest.raises(AuthError, match="token_revoked"):
        resource(url).post("x")
    httpx.post(f"{url}/_sandbox/slack/token", json={"revoked": False}).raise_for_status()
    httpx.post(f"{url}/_sandbox/faults", json={"slack": {"error_rate": 1.0}}).raise_for_status()
    with pytest.raises(TransientError):
        resource(url).post("x")
