"""The CLI with live credentials: its resources' `dg.EnvVar` fields resolved as a run resolves them.

Every system is switched to live by its variables, each pointed at the sandbox's URL with the
sandbox's public credentials, while MIENNE_SANDBOX_URL points at a closed port: only the live
variables can reach the sandbox. A command that sent the variables' *names* (a resource built but
never initialised) would be refused by every system; a wrong value is refused too.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import click
import httpx
import pytest
from click.testing import CliRunner

from mienne_ops.cli import main
from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.errors import AuthError
from mienne_ops.resources import LIVE_SWITCHES, is_live
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops.sandbox.server import free_port


def live_variables(url: str) -> dict[str, str]:
    """The variables an operator sets for the real services, aimed at the sandbox."""
    return {
        "SHOPIFY_SHOP_URL": f"{url}/shopify",
        "SHOPIFY_ACCESS_TOKEN": credentials.SHOPIFY["access_token"],
        "SHOPIFY_API_SECRET": credentials.SHOPIFY["api_secret"],
        "NETSUITE_ACCOUNT_ID": credentials.NETSUITE["account_id"],
        "NETSUITE_CONSUMER_KEY": credentials.NETSUITE["consumer_key"],
        "NETSUITE_CONSUMER_SECRET": credentials.NETSUITE["consumer_secret"],
        "NETSUITE_TOKEN_ID": credentials.NETSUITE["token_id"],
        "NETSUITE_TOKEN_SECRET": credentials.NETSUITE["token_secret"],
        "NETSUITE_BASE_URL": f"{url}/netsuite",
        "DCL_USERNAME": credentials.DCL["username"],
        "DCL_PASSWORD": credentials.DCL["password"],
        "DCL_ACCOUNT_NUMBER": credentials.DCL["account_number"],
        "DCL_FREIGHT_ACCOUNT": credentials.DCL["freight_account"],
        "DCL_BASE_URL": f"{url}/dcl",
        "STATESET_API_KEY": credentials.STATESET["api_key"],
        "STATESET_BASE_URL": f"{url}/stateset",
        "ZENDESK_EMAIL": credentials.ZENDESK["email"],
        "ZENDESK_API_TOKEN": credentials.ZENDESK["api_token"],
        "ZENDESK_BASE_URL": f"{url}/zendesk",
        "RECHARGE_ACCESS_TOKEN": credentials.RECHARGE["access_token"],
        "RECHARGE_CLIENT_SECRET": credentials.RECHARGE["client_secret"],
        "RECHARGE_BASE_URL": f"{url}/recharge",
        "GORGIAS_API_KEY": credentials.GORGIAS["api_key"],
        "GORGIAS_EMAIL": credentials.GORGIAS["email"],
        "GORGIAS_BASE_URL": f"{url}/gorgias/api",
        "GORGIAS_SENDER_USER_ID": str(credentials.GORGIAS["sender_user_id"]),
        "GORGIAS_SUPPORT_ADDRESS": credentials.GORGIAS["support_address"],
        "GORGIAS_WEBHOOK_SECRET": credentials.GORGIAS["webhook_secret"],
        "SLACK_BOT_TOKEN": credentials.SLACK["bot_token"],
        "SLACK_API_URL": f"{url}/slack/api/",
        "SMTP_HOST": "127.0.0.1",  # SMTP_PORT: the sandbox's sink, set by the fixture
        "SMTP_USERNAME": credentials.SMTP["username"],
        "SMTP_PASSWORD": credentials.SMTP["password"],
        "SMTP_STARTTLS": "false",
    }


@pytest.fixture
def live(sandbox, state_dir, monkeypatch):
    for name, value in live_variables(sandbox.url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SMTP_PORT", str(sandbox.smtp_port))
    # Nothing answers here: a resource that fell back to the sandbox would fail to connect.
    monkeypatch.setenv("MIENNE_SANDBOX_URL", f"http://127.0.0.1:{free_port()}")
    assert all(is_live(system) for system in LIVE_SWITCHES)
    return sandbox


def test_inventory_sync_with_live_variables_reaches_the_sandbox_with_their_values(live):
    sku = live.hub.catalog.skus[0].sku
    before = shopify_levels(live.url, sku)
    result = CliRunner().invoke(main, ["inventory", "sync", "--location", "FR", "--sku", sku])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "FR: 1 pushed" in result.output and "0 failed" in result.output
    after = shopify_levels(live.url, sku)
    assert after != before  # NetSuite was read and Shopify written, both with the live values


def shopify_levels(url: str, sku: str) -> list[tuple[int, int]]:
    levels = sandbox_state(url)["shopify"]["inventory"]["levels"]
    return [(level["location_id"], level["available"]) for level in levels if level["sku"] == sku]


@pytest.mark.parametrize(
    ("variable", "system"),
    [("NETSUITE_TOKEN_SECRET", "netsuite"), ("SHOPIFY_ACCESS_TOKEN", "shopify")],
)
def test_a_wrong_live_value_is_refused(live, monkeypatch, variable, system):
    monkeypatch.setenv(variable, "not-the-right-value")
    sku = live.hub.catalog.skus[0].sku
    result = CliRunner().invoke(main, ["inventory", "sync", "--location", "FR", "--sku", sku])
    assert result.exit_code != 0
    assert isinstance(result.exception, AuthError), (result.output, result.exception)
    assert result.exception.system == system


def test_orders_backfill_with_live_variables_imports_through_them(live):
    order = build_order(live.hub.catalog, random.Random(5))
    placed = httpx.post(f"{live.url}/_sandbox/shopify/orders", json=order, timeout=30)
    assert placed.status_code == 201, placed.text
    since = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    result = CliRunner().invoke(main, ["orders", "backfill", "--since", since])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "1 order(s)" in result.output and "done 1" in result.output
    state = sandbox_state(live.url)
    expected = f"shopify-order-{placed.json()['id']}"
    assert [so["externalId"] for so in state["netsuite"]["sales_orders"]] == [expected]
    assert [o["data"]["metadata"]["external_id"] for o in state["stateset"]["orders"]] == [expected]


def test_the_recharge_webhook_secret_is_never_the_sandbox_one_when_live(monkeypatch):
    from mienne_ops.cli import recharge_webhook_secret

    monkeypatch.delenv("RECHARGE_ACCESS_TOKEN", raising=False)
    assert recharge_webhook_secret() == credentials.RECHARGE["client_secret"]
    monkeypatch.setenv("RECHARGE_ACCESS_TOKEN", "live-token")
    monkeypatch.delenv("RECHARGE_CLIENT_SECRET", raising=False)
    with pytest.raises(click.ClickException, match="RECHARGE_CLIENT_SECRET"):
        recharge_webhook_secret()  # the receiver does not start
    monkeypatch.setenv("RECHARGE_CLIENT_SECRET", "live-secret")
    assert recharge_webhook_secret() == "live-secret"


def test_gorgias_connect_with_live_variables_uses_them(live):
    url = "https://ops.mienne.com/webhooks/gorgias"
    result = CliRunner().invoke(main, ["gorgias", "connect", "--url", url])
    assert result.exit_code == 0, (result.output, result.exception)
    integrations = sandbox_state(live.url)["gorgias"]["integrations"]
    assert [(i["http"]["url"], i["http"]["headers"]) for i in integrations] == [
        (url, {"X-Mienne-Webhook-Secret": credentials.GORGIAS["webhook_secret"]})
    ] * 2


def test_the_dev_stack_registers_the_recharge_webhooks_once(sandbox, monkeypatch):
    from mienne_ops.cli import subscribe_recharge_webhooks
    from mienne_ops.integrations.recharge import WEBHOOK_TOPICS

    monkeypatch.delenv("RECHARGE_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("MIENNE_SANDBOX_URL", sandbox.url)
    first = subscribe_recharge_webhooks("http://127.0.0.1:8766/webhooks/recharge")
    assert subscribe_recharge_webhooks("http://127.0.0.1:8766/webhooks/recharge") == first
    hooks = sandbox_state(sandbox.url)["recharge"]["webhooks"]
    assert sorted(h["topic"] for h in hooks) == sorted(WEBHOOK_TOPICS)
