"""The webhook receiver: verify, store durably, answer fast; sensors do the work later.

`POST /webhooks/shopify` checks ``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256 of the raw body with
the app secret, compared in constant time), then stores the event in the ledger inbox keyed by
``X-Shopify-Event-Id`` (the same across duplicate deliveries, so a duplicate is stored once) and
answers 200 well inside Shopify's 5-second budget. A bad signature is answered 401 and never stored.
Processing is the `shopify_orders_sensor`'s job; the reconciliation poll covers dropped deliveries.

`POST /webhooks/zendesk` (when a Zendesk signing secret is given) checks
``X-Zendesk-Webhook-Signature`` (base64 HMAC-SHA256 of signature timestamp + raw body, constant time)
and refuses a ``X-Zendesk-Webhook-Signature-Timestamp`` more than 5 minutes away (a replay); the body
is our trigger's JSON (see `sandbox/zendesk.py` `ticket_event_payload`). It is stored once per
ticket event: ``<ticket>:ticket_created``, ``<ticket>:<event>:<comment_id>``, else per invocation.

`POST /webhooks/recharge` (when a Recharge client secret is given) checks the timestamped
``X-Recharge-Webhook-Signature`` (or, without it, the legacy ``X-Recharge-Hmac-Sha256``) with
`integrations.recharge.verify_webhook`, and stores the event under source ``recharge``. Recharge
sends no delivery id, so the event id is sha256(topic + raw body): a redelivery is stored once.

`POST /webhooks/gorgias` (when a Gorgias secret is given) takes the calls of our Gorgias HTTP
integration. Gorgias signs nothing, so the integration sends a secret header
(``X-Mienne-Webhook-Secret``, compared in constant time; 401 and nothing stored otherwise). The body
is the form `integrations.gorgias.webhook_form` registers; it is stored under source ``gorgias`` with
the event id ``<ticket id>:<message id>`` (a duplicate call is stored once), the trigger as topic and
the ticket id as resource id. A body that is not that form is answered 400.
"""

from __future__ import annotations

import json
import logging
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mienne_ops.integrations import recharge, zendesk
from mienne_ops.integrations.gorgias import WEBHOOK_SECRET_HEADER, GorgiasWebhook, verify_webhook_secret
from mienne_ops.integrations.shopify import verify_webhook
from mienne_ops.ledger import Ledger

log = logging.getLogger("mienne_ops.webhooks")


def create_receiver_app(
    ledger: Ledger,
    shopify_secret: str,
    *,
    zendesk_secret: str | None = None,
    recharge_secret: str | None = None,
    gorgias_secret: str | None = None,
) -> Starlette:
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

    async def gorgias_webhook(request: Request) -> JSONResponse:
        if not verify_webhook_secret(gorgias_secret or "", request.headers.get(WEBHOOK_SECRET_HEADER)):
            log.warning("rejected a Gorgias call without the right secret header")
            return JSONResponse({"error": "invalid secret"}, status_code=401)
        try:
            payload = json.loads(await request.body())
            call = GorgiasWebhook.parse(payload)
        except ValueError as error:  # JSONDecodeError included
            return JSONResponse({"error": f"not our Gorgias form: {error}"}, status_code=400)
        stored = ledger.store_event(
            "gorgias", call.event_id, call.event, payload, resource_id=str(call.ticket_id)
        )
        return JSONResponse({"stored": stored})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes = [
        Route("/webhooks/shopify", shopify_webhook, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
    if zendesk_secret:
        routes.append(
            Route("/webhooks/zendesk", zendesk_webhook_route(ledger, zendesk_secret), methods=["POST"])
        )
    if recharge_secret:
        routes.append(
            Route("/webhooks/recharge", recharge_webhook_route(ledger, recharge_secret), methods=["POST"])
        )
    if gorgias_secret:
        routes.append(Route("/webhooks/gorgias", gorgias_webhook, methods=["POST"]))
    return Starlette(routes=routes)


def zendesk_webhook_route(ledger: Ledger, secret: str):
    async def zendesk_webhook(request: Request) -> JSONResponse:
        raw = await request.body()
        signature = request.headers.get("X-Zendesk-Webhook-Signature")
        timestamp = request.headers.get("X-Zendesk-Webhook-Signature-Timestamp")
        if not zendesk.verify_webhook(secret, raw, signature, timestamp):
            log.warning("rejected a Zendesk webhook with an invalid or stale signature")
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        ticket_id = str(payload.get("ticket_id") or "").strip() if isinstance(payload, dict) else ""
        if not ticket_id:
            return JSONResponse({"error": "body has no ticket_id"}, status_code=400)
        event = str(payload.get("event") or "ticket_event")
        invocation = request.headers.get("X-Zendesk-Webhook-Invocation-Id") or ""
        event_id = zendesk_event_id(ticket_id, event, payload.get("comment_id"), invocation)
        if event_id is None:
            return JSONResponse({"error": "missing X-Zendesk-Webhook-Invocation-Id"}, status_code=400)
        stored = ledger.store_event(
            "zendesk", event_id, event, payload, resource_id=ticket_id, triggered_at=timestamp
        )
        return JSONResponse({"stored": stored})

    return zendesk_webhook


def zendesk_event_id(ticket_id: str, event: str, comment_id: object, invocation_id: str) -> str | None:
    """One inbox key per ticket event, the same for a duplicate invocation and for a retry.

    A ticket is created once; a comment has its own id; anything else falls back to the invocation
    id (the same across the retries of one invocation, new for a duplicate invocation).
    """
    if event == "ticket_created":
        return f"{ticket_id}:ticket_created"
    if comment_id not in (None, ""):
        return f"{ticket_id}:{event}:{comment_id}"
    return f"{ticket_id}:{event}:{invocation_id}" if invocation_id else None


def recharge_webhook_route(ledger: Ledger, secret: str):
    async def recharge_webhook(request: Request) -> JSONResponse:
        raw = await request.body()
        if not recharge.verify_webhook(secret, raw, request.headers):
            log.warning("rejected a Recharge webhook with an invalid signature")
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        topic = request.headers.get("X-Recharge-Topic", "unknown")
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        # The payload is the REST GET shape, {"subscription": {...}} or {"charge": {...}}.
        objects = [v for v in payload.values() if isinstance(v, dict)] if isinstance(payload, dict) else []
        record = objects[0] if len(objects) == 1 else {}
        stored = ledger.store_event(
            "recharge",
            recharge.webhook_event_id(topic, raw),
            topic,
            payload,
            resource_id=str(record["id"]) if record.get("id") is not None else None,
            triggered_at=_recharge_updated_at(record),
        )
        return JSONResponse({"stored": stored})

    return recharge_webhook


def _recharge_updated_at(record: dict) -> str | None:
    """The object's ``updated_at`` (store time) as UTC ISO: the same on every redelivery."""
    try:
        moment = recharge.parse_store_time(record.get("updated_at"), ZoneInfo(recharge.STORE_TIMEZONE))
    except (TypeError, ValueError):
        return None
    return moment.isoformat() if moment else None
