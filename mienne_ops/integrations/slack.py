"""Slack for alerts: `dagster-slack`'s resource, pointed at a channel and at a Web API base URL.

`dagster_slack.SlackResource` holds the token (a `dg.EnvVar` in production) and builds the
`slack_sdk.WebClient`; this subclass adds the channel and the API's base URL, so the same code posts
to Slack or to the sandbox's Slack fake (``<sandbox>/slack/api/``). Slack answers HTTP 200 with
``{"ok": false, "error": …}`` for most failures; they become our error hierarchy here, so the alert
sender can tell "retry later" (rate limit, outage) from "fix the configuration" (token, channel).
"""

from __future__ import annotations

from dagster_slack import SlackResource
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.client import WebClient

from mienne_ops.errors import AuthError, PermanentError, TransientError

SYSTEM = "slack"
AUTH_ERRORS = frozenset({"not_authed", "invalid_auth", "token_revoked", "account_inactive", "token_expired"})
TRANSIENT_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable"})


class SlackAlertResource(SlackResource):
    """Where alerts are posted: ``channel`` (``#name`` or id) through the Web API at ``base_url``."""

    channel: str
    base_url: str = "https://slack.com/api/"
    timeout_seconds: int = 10

    def get_client(self) -> WebClient:
        return WebClient(
            token=self.token, base_url=self.base_url.rstrip("/") + "/", timeout=self.timeout_seconds
        )

    def post(self, text: str) -> str:
        """Post ``text`` to the channel; the message's ``ts``."""
        try:
            response = self.get_client().chat_postMessage(channel=self.channel, text=text)
        except SlackApiError as error:
            raise slack_error(error) from error
        except (SlackClientError, OSError) as error:
            raise TransientError(str(error), system=SYSTEM, operation="chat.postMessage") from error
        return str(response["ts"])


def slack_error(error: SlackApiError) -> Exception:
    code = str(error.response.get("error", "")) if error.response is not None else ""
    status = error.response.status_code if error.response is not None else None
    operation = "chat.postMessage"
    if code in AUTH_ERRORS:
        return AuthError(
            "Slack refused the token", system=SYSTEM, operation=operation, status=status, code=code
        )
    if code in TRANSIENT_ERRORS or (status is not None and (status == 429 or status >= 500)):
        return TransientError(
            "Slack is not taking messages right now",
            system=SYSTEM,
            operation=operation,
            status=status,
            code=code,
        )
    return PermanentError(
        f"Slack refused the message ({code})", system=SYSTEM, operation=operation, status=status, code=code
    )
