"""The webhook receiver: verify, store durably, answer fast; sensors do the work later.

`POST /webhooks/shopify` checks ``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256 of the raw body with
the app secret, compared in constant time), then stores the event in the ledger inbox keyed by
``X-Shopify-Event-Id`` (the same across duplicate deliveries, so a duplicate is stored once) and
answers 200 well inside Shopify's 5-second budget. A bad signature is answered 401 and never stored.
Processing is the `shopify_orders_sensor`'s job; the reconciliation poll covers dropped deliveries.
"""

from __future__ import annotations

import json
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mienne_ops.integrations.shopify import verify_webhook
from mienne_ops.ledger import Ledger

log = logging.getLogger("mienne_ops.webhooks")


def create_receiver_app(ledger: Ledger, shopify_secret: str) -> Starlette:
    async def shopify_webhook(request: Request) -> JSONResponse:
        raw = await request.body()
        signature = request.headers.get("X-Shopify-Hmac-Sha256")
        if not shopify_secret or not signature or not verify_webhook(shopify_secret, raw, signature):
            log.warning("rejected a Shopify webhook with an invalid signature")
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        topic = request.headers.get("X-Shopify-Topic", "unknown")
        event_id = request.headers.get("X-Shopify-Event-Id") or request.headers.get("X-Shopify-Webhook-Id")
        if not event_id:
            return JSONResponse({"error": "missing X-Shopify-Event-Id"}, status_code=400)
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        resource_id = payload.get("id") if isinstance(payload, dict) else None
        stored = ledger.store_event(
            "shopify",
            event_id,
            topic,
            payload,
            resource_id=str(resource_id) if resource_id is not None else None,
            triggered_at=request.headers.get("X-Shopify-Triggered-At"),
        )
        return JSONResponse({"stored": stored})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/webhooks/shopify", shopify_webhook, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
