"""The receiver never starts in live mode without the live secret (issue 13, the critical probe).

With ``SHOPIFY_ACCESS_TOKEN`` set and ``SHOPIFY_API_SECRET`` unset, `webhooks serve` used to fall back
to the public sandbox secret, and a delivery signed with it was stored. Now each live system without
its webhook secret stops the start with a one-line message and a non-zero exit, before the ledger is
even opened.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mienne_ops import cli
from mienne_ops.resources import LIVE_SWITCHES
from mienne_ops.sandbox import credentials

SECRETS = {
    "shopify": "SHOPIFY_API_SECRET",
    "zendesk": "ZENDESK_WEBHOOK_SECRET",
    "recharge": "RECHARGE_CLIENT_SECRET",
    "gorgias": "GORGIAS_WEBHOOK_SECRET",
}


@pytest.fixture(autouse=True)
def sandbox_everywhere(monkeypatch, tmp_path):
    for variable in [*LIVE_SWITCHES.values(), *SECRETS.values(), "SHOPIFY_SHOP_URL"]:
        monkeypatch.delenv(variable, raising=False)
    # A ledger URL that cannot be opened: the refusal must come before the ledger is touched.
    monkeypatch.setenv("MIENNE_LEDGER_URL", f"sqlite:///{tmp_path / 'missing' / 'ledger.db'}")


@pytest.mark.parametrize("system", sorted(SECRETS))
def test_a_live_system_without_its_webhook_secret_stops_the_receiver(monkeypatch, system):
    monkeypatch.setenv(LIVE_SWITCHES[system], "live-token")
    monkeypatch.setenv("SHOPIFY_SHOP_URL", "https://mienne.myshopify.com")
    result = CliRunner().invoke(cli.main, ["webhooks", "serve", "--port", "1"])
    assert result.exit_code != 0
    assert f"{LIVE_SWITCHES[system]} is set but {SECRETS[system]} is not" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no traceback


def test_live_shopify_takes_its_own_secret_and_shop_never_the_sandboxes(monkeypatch):
    assert cli.shopify_webhook_secret() == credentials.SHOPIFY["api_secret"]  # sandbox mode
    assert cli.shopify_shop_domain() == credentials.SHOPIFY["shop_domain"]
    monkeypatch.setenv("SHOPIFY_ACCESS_TOKEN", "shpat_live")
    monkeypatch.setenv("SHOPIFY_API_SECRET", "live-secret")
    monkeypatch.setenv("SHOPIFY_SHOP_URL", "https://mienne.myshopify.com/")
    assert cli.shopify_webhook_secret() == "live-secret"
    assert cli.shopify_shop_domain() == "mienne.myshopify.com"
    monkeypatch.delenv("SHOPIFY_SHOP_URL")
    result = CliRunner().invoke(cli.main, ["webhooks", "serve", "--port", "1"])
    assert result.exit_code != 0 and "SHOPIFY_SHOP_URL" in result.output
