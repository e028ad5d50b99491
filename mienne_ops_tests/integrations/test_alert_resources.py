"""Alerts' destinations are picked like every system: the sandbox with nothing set, the real Slack and
SMTP relay when their variables are, with the secrets as `dg.EnvVar`."""

import dagster as dg

from mienne_ops.resources import build_resources, email_resource, slack_resource
from mienne_ops.sandbox import credentials


def test_with_nothing_set_alerts_go_to_the_sandbox(monkeypatch):
    for name in ("SLACK_BOT_TOKEN", "SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MIENNE_SANDBOX_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("MIENNE_SANDBOX_SMTP_PORT", "2525")
    slack, email = slack_resource(), email_resource()
    assert (slack.base_url, slack.channel) == (
        "http://127.0.0.1:9999/slack/api/",
        credentials.SLACK["channel"],
    )
    assert (email.host, email.port, email.username) == ("127.0.0.1", 2525, credentials.SMTP["username"])
    assert {"slack", "email"} <= set(build_resources())


def test_real_destinations_come_from_the_environment_with_secrets_as_env_vars(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-real")
    monkeypatch.setenv("SLACK_ALERT_CHANNEL", "#ops")
    monkeypatch.setenv("SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("SMTP_USERNAME", "alerts")
    monkeypatch.setenv("SMTP_PASSWORD", "secret")
    monkeypatch.setenv("ALERT_EMAIL_TO", "ops@example.com, oncall@example.com")
    slack, email = slack_resource(), email_resource()
    assert slack.token == dg.EnvVar("SLACK_BOT_TOKEN") and slack.channel == "#ops"
    assert slack.base_url == "https://slack.com/api/"
    assert email.password == dg.EnvVar("SMTP_PASSWORD")
    assert (email.host, email.port, email.starttls) == ("smtp.example.com", 587, True)
    assert email.recipients == ["ops@example.com", "oncall@example.com"]
