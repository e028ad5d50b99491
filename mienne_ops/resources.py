"""The one place that decides, per system, between the live service and the sandbox.

A system is live when its credentials are in the environment; its secrets then reach the resource
only as `dg.EnvVar` (resolved at launch, never shown in the UI). With nothing set, the resource
points at the sandbox (`MIENNE_SANDBOX_URL`), whose credentials are public constants — the embedded
default, like SQLite for Dagster's own storage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import dagster as dg
import httpx

from mienne_ops import settings
from mienne_ops.business_rules import BusinessRules
from mienne_ops.integrations.dcl import DclClient, DclResource
from mienne_ops.integrations.email import EmailAlertResource
from mienne_ops.integrations.gorgias import GorgiasClient, GorgiasResource
from mienne_ops.integrations.netsuite import NetSuiteClient, NetSuiteResource
from mienne_ops.integrations.recharge import RechargeClient, RechargeResource
from mienne_ops.integrations.shopify import ShopifyClient, ShopifyResource
from mienne_ops.integrations.slack import SlackAlertResource
from mienne_ops.integrations.stateset import StateSetClient, StateSetResource
from mienne_ops.integrations.zendesk import ZendeskClient, ZendeskResource
from mienne_ops.ledger.resource import LedgerResource
from mienne_ops.sandbox import credentials as sandbox

#: The environment variables that switch each system to its live service.
LIVE_SWITCHES = {
    "shopify": "SHOPIFY_ACCESS_TOKEN",
    "netsuite": "NETSUITE_TOKEN_SECRET",
    "dcl": "DCL_PASSWORD",
    "stateset": "STATESET_API_KEY",
    "zendesk": "ZENDESK_API_TOKEN",
    "recharge": "RECHARGE_ACCESS_TOKEN",
    "gorgias": "GORGIAS_API_KEY",
    "slack": "SLACK_BOT_TOKEN",
    "smtp": "SMTP_HOST",
}


def is_live(system: str) -> bool:
    return bool(os.environ.get(LIVE_SWITCHES[system]))


def shopify_resource(**client_settings: Any) -> ShopifyResource:
    if is_live("shopify"):
        return ShopifyResource(
            **client_settings,
            shop_url=dg.EnvVar("SHOPIFY_SHOP_URL"),
            access_token=dg.EnvVar("SHOPIFY_ACCESS_TOKEN"),
            api_secret=dg.EnvVar("SHOPIFY_API_SECRET"),
        )
    return ShopifyResource(
        **client_settings,
        shop_url=f"{settings.sandbox_url()}/shopify",
        access_token=sandbox.SHOPIFY["access_token"],
        api_secret=sandbox.SHOPIFY["api_secret"],
    )


def netsuite_resource(**client_settings: Any) -> NetSuiteResource:
    if is_live("netsuite"):
        return NetSuiteResource(
            **client_settings,
            # Empty: the account's own SuiteTalk host, derived from the account id.
            base_url=os.environ.get("NETSUITE_BASE_URL", ""),
            account_id=dg.EnvVar("NETSUITE_ACCOUNT_ID"),
            consumer_key=dg.EnvVar("NETSUITE_CONSUMER_KEY"),
            consumer_secret=dg.EnvVar("NETSUITE_CONSUMER_SECRET"),
            token_id=dg.EnvVar("NETSUITE_TOKEN_ID"),
            token_secret=dg.EnvVar("NETSUITE_TOKEN_SECRET"),
        )
    return NetSuiteResource(
        **client_settings,
        base_url=f"{settings.sandbox_url()}/netsuite",
        account_id=sandbox.NETSUITE["account_id"],
        consumer_key=sandbox.NETSUITE["consumer_key"],
        consumer_secret=sandbox.NETSUITE["consumer_secret"],
        token_id=sandbox.NETSUITE["token_id"],
        token_secret=sandbox.NETSUITE["token_secret"],
    )


def dcl_resource(**client_settings: Any) -> DclResource:
    if is_live("dcl"):
        return DclResource(
            **client_settings,
            base_url=os.environ.get("DCL_BASE_URL", "https://api.dclcorp.com"),
            username=dg.EnvVar("DCL_USERNAME"),
            password=dg.EnvVar("DCL_PASSWORD"),
            account_number=dg.EnvVar("DCL_ACCOUNT_NUMBER"),
            freight_account=dg.EnvVar("DCL_FREIGHT_ACCOUNT"),
        )
    return DclResource(
        **client_settings,
        base_url=f"{settings.sandbox_url()}/dcl",
        username=sandbox.DCL["username"],
        password=sandbox.DCL["password"],
        account_number=sandbox.DCL["account_number"],
        freight_account=sandbox.DCL["freight_account"],
    )


def stateset_resource(**client_settings: Any) -> StateSetResource:
    if is_live("stateset"):
        return StateSetResource(
            **client_settings,
            base_url=os.environ.get(
                "STATESET_BASE_URL", "https://stateset-proxy-server.stateset.cloud.stateset.app/api"
            ),
            api_key=dg.EnvVar("STATESET_API_KEY"),
        )
    return StateSetResource(
        **client_settings, base_url=f"{settings.sandbox_url()}/stateset", api_key=sandbox.STATESET["api_key"]
    )


def zendesk_resource(**client_settings: Any) -> ZendeskResource:
    if is_live("zendesk"):
        subdomain = os.environ.get("ZENDESK_SUBDOMAIN")
        base_url = os.environ.get("ZENDESK_BASE_URL") or (subdomain and f"https://{subdomain}.zendesk.com")
        if not base_url:
            raise ValueError("ZENDESK_API_TOKEN is set: set ZENDESK_SUBDOMAIN (or ZENDESK_BASE_URL) too")
        author = os.environ.get("ZENDESK_AUTHOR_ID")
        return ZendeskResource(
            **client_settings,
            base_url=base_url,
            email=dg.EnvVar("ZENDESK_EMAIL"),
            api_token=dg.EnvVar("ZENDESK_API_TOKEN"),
            author_id=int(author) if author else None,
        )
    return ZendeskResource(
        **client_settings,
        base_url=f"{settings.sandbox_url()}/zendesk",
        email=sandbox.ZENDESK["email"],
        api_token=sandbox.ZENDESK["api_token"],
    )


def recharge_resource(**client_settings: Any) -> RechargeResource:
    if is_live("recharge"):
        return RechargeResource(
            **client_settings,
            base_url=os.environ.get("RECHARGE_BASE_URL", "https://api.rechargeapps.com"),
            access_token=dg.EnvVar("RECHARGE_ACCESS_TOKEN"),
            client_secret=dg.EnvVar("RECHARGE_CLIENT_SECRET"),
        )
    return RechargeResource(
        **client_settings,
        base_url=f"{settings.sandbox_url()}/recharge",
        access_token=sandbox.RECHARGE["access_token"],
        client_secret=sandbox.RECHARGE["client_secret"],
    )


def gorgias_resource(**client_settings: Any) -> GorgiasResource:
    if is_live("gorgias"):
        domain = os.environ.get("GORGIAS_DOMAIN", "")
        return GorgiasResource(
            **client_settings,
            # GORGIAS_BASE_URL (the API root, ending in /api) wins over the account's GORGIAS_DOMAIN.
            base_url=os.environ.get("GORGIAS_BASE_URL") or f"https://{domain}.gorgias.com/api",
            email=dg.EnvVar("GORGIAS_EMAIL"),
            api_key=dg.EnvVar("GORGIAS_API_KEY"),
            sender_user_id=dg.EnvVar.int("GORGIAS_SENDER_USER_ID"),
            support_address=dg.EnvVar("GORGIAS_SUPPORT_ADDRESS"),
        )
    return GorgiasResource(
        **client_settings,
        base_url=f"{settings.sandbox_url()}/gorgias/api",
        email=sandbox.GORGIAS["email"],
        api_key=sandbox.GORGIAS["api_key"],
        sender_user_id=sandbox.GORGIAS["sender_user_id"],
        support_address=sandbox.GORGIAS["support_address"],
    )


def slack_resource() -> SlackAlertResource:
    """Alerts' Slack: the workspace's bot token and channel when set, else the sandbox's fake."""
    if is_live("slack"):
        return SlackAlertResource(
            token=dg.EnvVar("SLACK_BOT_TOKEN"),
            channel=os.environ.get("SLACK_ALERT_CHANNEL", "#mienne-alerts"),
            base_url=os.environ.get("SLACK_API_URL", "https://slack.com/api/"),
        )
    return SlackAlertResource(
        token=sandbox.SLACK["bot_token"],
        channel=sandbox.SLACK["channel"],
        base_url=f"{settings.sandbox_url()}/slack/api/",
    )


def email_resource() -> EmailAlertResource:
    """Alerts' email: the company's SMTP relay when ``SMTP_HOST`` is set, else the sandbox's sink."""
    if is_live("smtp"):
        return EmailAlertResource(
            host=os.environ["SMTP_HOST"],
            port=int(os.environ.get("SMTP_PORT", "587")),
            username=os.environ.get("SMTP_USERNAME", ""),
            password=dg.EnvVar("SMTP_PASSWORD") if os.environ.get("SMTP_PASSWORD") else "",
            starttls=os.environ.get("SMTP_STARTTLS", "true").lower() != "false",
            sender=os.environ.get("ALERT_EMAIL_FROM", "mienne-ops@localhost"),
            recipients=[a.strip() for a in os.environ.get("ALERT_EMAIL_TO", "").split(",") if a.strip()],
        )
    return EmailAlertResource(
        host=httpx.URL(settings.sandbox_url()).host,
        port=settings.sandbox_smtp_port(),
        username=sandbox.SMTP["username"],
        password=sandbox.SMTP["password"],
        sender=sandbox.SMTP["sender"],
        recipients=list(sandbox.SMTP["recipients"]),
    )


def ledger_resource() -> LedgerResource:
    if os.environ.get("MIENNE_LEDGER_URL"):
        return LedgerResource(url=dg.EnvVar("MIENNE_LEDGER_URL"))
    return LedgerResource(url=settings.ledger_url())


def business_rules() -> BusinessRules:
    """The rules (defaults in `business_rules.py`); ``MIENNE_EDIT_WINDOW_MINUTES`` shortens the edit
    window before dispatch for a demo or a drill (`make dev` uses 1 minute), never in production;
    ``MIENNE_RECONCILE_EVERY_SECONDS`` makes flow A's reconciliation poll (which finds orders whose
    webhooks were lost) run more often than every 5 minutes (the soak, `bench/soak.py`)."""
    window = os.environ.get("MIENNE_EDIT_WINDOW_MINUTES")
    reconcile = os.environ.get("MIENNE_RECONCILE_EVERY_SECONDS")
    repair_grace = os.environ.get("MIENNE_REPAIR_GRACE_MINUTES")  # the repair sweep's (drills, the soak)
    ui_url = os.environ.get("MIENNE_DAGSTER_UI_URL")  # the alerts' links to runs
    defaults = BusinessRules()
    return BusinessRules(
        hold_edit_window_minutes=int(window) if window else defaults.hold_edit_window_minutes,
        reconcile_every_seconds=int(reconcile) if reconcile else defaults.reconcile_every_seconds,
        repair_grace_minutes=int(repair_grace) if repair_grace else defaults.repair_grace_minutes,
        alert_dagster_ui_url=ui_url or defaults.alert_dagster_ui_url,
    )


@dataclass(frozen=True)
class ApiClients:
    """Every system's typed client (the CLI's, or a run's through `SupportSystems.clients`)."""

    shopify: ShopifyClient
    netsuite: NetSuiteClient
    dcl: DclClient
    stateset: StateSetClient
    recharge: RechargeClient
    gorgias: GorgiasClient
    zendesk: ZendeskClient


class SupportSystems(dg.ConfigurableResource):
    """Every system flow F (cancellations, refunds, returns) works in, as one resource: its ops take
    this and the rules instead of eight resources each. The same per-system resources as the other
    flows' (built by `build_resources`), nested."""

    shopify: ShopifyResource
    netsuite: NetSuiteResource
    dcl: DclResource
    stateset: StateSetResource
    recharge: RechargeResource
    gorgias: GorgiasResource
    zendesk: ZendeskResource
    ledger: LedgerResource

    def clients(self) -> ApiClients:
        return ApiClients(
            shopify=self.shopify.client,
            netsuite=self.netsuite.client,
            dcl=self.dcl.client,
            stateset=self.stateset.client,
            recharge=self.recharge.client,
            gorgias=self.gorgias.client,
            zendesk=self.zendesk.client,
        )


def build_resources(**client_settings: Any) -> dict[str, Any]:
    """All resources; ``client_settings`` (e.g. ``retry_base_delay_seconds``) go to every API client."""
    systems = {
        "shopify": shopify_resource(**client_settings),
        "netsuite": netsuite_resource(**client_settings),
        "dcl": dcl_resource(**client_settings),
        "stateset": stateset_resource(**client_settings),
        "zendesk": zendesk_resource(**client_settings),
        "recharge": recharge_resource(**client_settings),
        "gorgias": gorgias_resource(**client_settings),
        "ledger": ledger_resource(),
    }
    alerts = {"slack": slack_resource(), "email": email_resource()}
    return {**systems, "support": SupportSystems(**systems), "rules": business_rules(), **alerts}
