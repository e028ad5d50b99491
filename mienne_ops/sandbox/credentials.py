"""The credentials the sandbox accepts (not secrets: they only open the local fake).

Returned by `GET /_sandbox/credentials` and used by `definitions.py` when no real credentials are
configured for a system. Anything else is rejected the way the real system rejects it.
"""

from typing import Any

SHOPIFY = {
    "shop_domain": "mienne-sandbox.myshopify.com",
    "access_token": "shpat_sandbox_0000000000000000000000000000",
    # The app's client secret: signs webhooks (X-Shopify-Hmac-Sha256).
    "api_secret": "shpss_sandbox_webhook_secret",
    "api_version": "2026-04",
}

NETSUITE = {
    "account_id": "1234567_SB1",
    "consumer_key": "sandbox-consumer-key-0001",
    "consumer_secret": "sandbox-consumer-secret-0001",
    "token_id": "sandbox-token-id-0001",
    "token_secret": "sandbox-token-secret-0001",
}

DCL = {
    "username": "mienne-api",
    "password": "sandbox-dcl-password",
    "account_number": "10501",
    "freight_account": "00500",
}

STATESET = {"api_key": "sk_sandbox_stateset_0001"}

ZENDESK = {
    "subdomain": "mienne-sandbox",
    # API token auth: HTTP Basic with username "{email}/token" and the token as password.
    "email": "ops@mienne-sandbox.example",
    "api_token": "zd_sandbox_api_token_0001",
    # OAuth access token (Authorization: Bearer), acting as the same agent.
    "oauth_token": "zd_sandbox_oauth_token_0001",
    # The signing secret of the sandbox's webhooks (X-Zendesk-Webhook-Signature).
    "webhook_secret": "zd_sandbox_webhook_signing_secret",
}

#: The sandbox agent behind the Zendesk credentials (comments' default author).
ZENDESK_AGENT_ID = 900001

RECHARGE = {
    "access_token": "sk_sandbox_recharge_0001",
    # The API client secret: signs webhooks (both the legacy and the timestamped scheme).
    "client_secret": "rc_sandbox_client_secret_0001",
    "api_version": "2021-11",
}

GORGIAS: dict[str, Any] = {
    "domain": "mienne-sandbox",
    "email": "ops@mienne-sandbox.com",
    "api_key": "gorgias_sandbox_api_key_0001",
    "sender_user_id": 1001,
    # The secret header our HTTP integration sends (X-Mienne-Webhook-Secret): Gorgias signs nothing.
    "webhook_secret": "gorgias-sandbox-webhook-secret",
    # Not needed by mienne-ops; the fake also accepts this OAuth2 token (80 requests / 20 s).
    "oauth_access_token": "gorgias_sandbox_oauth_token_0001",
    # The address of the account's email integration: outgoing email must come from it.
    "support_address": "support@mienne-sandbox.com",
}

SLACK = {
    # A bot token (chat:write) and the channel it was invited to; any other channel is not found.
    "bot_token": "xoxb-sandbox-0000000000-mienne-alerts",
    "channel": "#mienne-alerts",
    "channel_id": "C0MIENNE01",
}

SMTP: dict[str, Any] = {
    # The SMTP sink requires AUTH (PLAIN or LOGIN) with these; it stores mail, never relays it.
    "username": "mienne-alerts",
    "password": "sandbox-smtp-password",
    "sender": "mienne-ops@alerts.sandbox.invalid",
    "recipients": ["ops@mienne.sandbox.invalid"],
}
