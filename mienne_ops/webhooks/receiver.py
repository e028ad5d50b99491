"""The webhook receiver: verify, store durably, answer fast; sensors do the work later.

Every request passes `webhooks.limits` first (printable-ASCII headers, a bounded body read within a
bounded time: 400/413/408), every body `webhooks.inputs.parse_json` (400 for anything a parser or
the database would choke on), and every store `webhooks.inbox.store` (off the event loop; 503 when the
ledger fails, so the sender retries). Every refusal is logged and counted by `Refusals`.

`POST /webhooks/shopify` checks ``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256 of the raw body with
the app secret, compared in constant time), then ``X-Shopify-Shop-Domain`` (our shop's, else 403)
and ``X-Shopify-Triggered-At`` (inside the replay window, `webhooks.replay`, else 422) and that the
topic fits the body (an ``orders/cancelled`` must carry a cancelled order, else 422), then stores
the event in the ledger inbox keyed by ``X-Shopify-Event-Id`` (the same across duplicate deliveries,
so a duplicate is stored once and answered 200) and answers 200 well inside Shopify's 5-second
budget. A bad signature is answered 401 and never stored.
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

import logging
from typing import Any
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mienne_ops.integrations import recharge, zendesk
from mienne_ops.integrations.gorgias import WEBHOOK_SECRET_HEADER, GorgiasWebhook, verify_webhook_secret
from mienne_ops.integrations.shopify import verify_webhook
from mienne_ops.ledger import Ledger
from mienne_ops.observability.exposition import metrics_endpoint
from mienne_ops.webhooks import inbox
from mienne_ops.webhooks.inbox import InboxEntry
from mienne_ops.webhooks.inputs import BadInput, Refusals, parse_json, required_header
from mienne_ops.webhooks.limits import BoundedRequests, ReceiverLimits
from mienne_ops.webhooks.replay import ReplayWindow

log = logging.getLogger("mienne_ops.webhooks")

Handler = Any  # async (Request) -> Response


def create_receiver_app(
    ledger: Ledger,
    shopify_secret: str,
    *,
    zendesk_secret: str | None = None,
    recharge_secret: str | None = None,
    gorgias_secret: str | None = None,
    shop_domain: str | None = None,
    limits: ReceiverLimits = ReceiverLimits(),
    replay_window: ReplayWindow = ReplayWindow(),
) -> BoundedRequests:
    """The receiver as an ASGI app. ``shop_domain`` None skips the shop check (tests of other parts);
    the CLI always gives it. Routes of systems without a secret are not served (404)."""
    refusals = Refusals()
    shopify = shopify_route(ledger, shopify_secret, shop_domain, replay_window)
    routes = [
        Route("/webhooks/shopify", refused_as(refusals, "shopify", shopify), methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics_endpoint(ledger), methods=["GET"]),
    ]
    optional = {
        "zendesk": (zendesk_secret, zendesk_route),
        "recharge": (recharge_secret, recharge_route),
        "gorgias": (gorgias_secret, gorgias_route),
    }
    for source, (secret, make_route) in optional.items():
        if secret:
            handler = refused_as(refusals, source, make_route(ledger, secret))
            routes.append(Route(f"/webhooks/{source}", handler, methods=["POST"]))
    return BoundedRequests(Starlette(routes=routes), limits, refusals)


async def health(request: Request) -> JSONResponse:
    """Never touches the ledger: it answers while the ledger is locked or down."""
    return JSONResponse({"ok": True})


def refused_as(refusals: Refusals, source: str, handler: Handler) -> Handler:
    """``handler`` with every `BadInput` it raises answered (and counted) as a refusal."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except BadInput as bad:
            return refusals.answer(source, bad)

    return guarded


def shopify_route(ledger: Ledger, secret: str, shop_domain: str | None, window: ReplayWindow) -> Handler:
    async def shopify_webhook(request: Request) -> Response:
        raw = await request.body()
        signature = request.headers.get("X-Shopify-Hmac-Sha256") or ""
        if not verify_webhook(secret, raw, signature):
            raise BadInput(401, "invalid_signature", "invalid signature")
        entry = shopify_entry(request.headers, parse_json(raw), shop_domain, window)
        return await inbox.store(ledger, entry)

    return shopify_webhook


def shopify_entry(
    headers: Headers, payload: Any, shop_domain: str | None, window: ReplayWindow
) -> InboxEntry:
    """The inbox entry of a signed Shopify delivery, or `BadInput` (wrong shop, outside the window)."""
    domain = required_header(headers, "X-Shopify-Shop-Domain")
    if shop_domain is not None and domain.lower() != shop_domain.lower():
        raise BadInput(403, "wrong_shop", "X-Shopify-Shop-Domain is not our shop")
    triggered_at = required_header(headers, "X-Shopify-Triggered-At")
    window.check(triggered_at)
    topic = required_header(headers, "X-Shopify-Topic")
    topic_fits_body(topic, payload)
    resource_id = payload.get("id") if isinstance(payload, dict) else None
    return InboxEntry(
        "shopify",
        required_header(headers, "X-Shopify-Event-Id", "X-Shopify-Webhook-Id"),
        topic,
        payload,
        resource_id=str(resource_id) if resource_id is not None else None,
        triggered_at=triggered_at,
    )


def topic_fits_body(topic: str, payload: Any) -> None:
    """`BadInput` (422) when the topic says what the signed body contradicts.

    The HMAC covers the body, not the ``X-Shopify-Topic`` header, so a captured ``orders/create``
    can be replayed as ``orders/cancelled``. Shopify sends ``orders/cancelled`` with the cancelled
    order, ``cancelled_at`` set; a body without it is a relabelled delivery. (The cancel path
    re-reads the order from Shopify anyway; this refuses the replay at the door.)
    """
    if topic == "orders/cancelled" and not (isinstance(payload, dict) and payload.get("cancelled_at")):
        raise BadInput(422, "topic_mismatch", "orders/cancelled with an order that is not cancelled")


def gorgias_route(ledger: Ledger, secret: str) -> Handler:
    async def gorgias_webhook(request: Request) -> Response:
        if not verify_webhook_secret(secret, request.headers.get(WEBHOOK_SECRET_HEADER)):
            raise BadInput(401, "invalid_signature", "invalid secret")
        payload = parse_json(await request.body())
        try:
            call = GorgiasWebhook.parse(payload)
        except ValueError as error:
            raise BadInput(400, "bad_payload", f"not our Gorgias form: {error}") from error
        entry = InboxEntry("gorgias", call.event_id, call.event, payload, resource_id=str(call.ticket_id))
        return await inbox.store(ledger, entry)

    return gorgias_webhook


def zendesk_route(ledger: Ledger, secret: str) -> Handler:
    async def zendesk_webhook(request: Request) -> Response:
        raw = await request.body()
        signature = request.headers.get("X-Zendesk-Webhook-Signature")
        timestamp = request.headers.get("X-Zendesk-Webhook-Signature-Timestamp")
        if not zendesk.verify_webhook(secret, raw, signature, timestamp):
            raise BadInput(401, "invalid_signature", "invalid signature")
        payload = parse_json(raw)
        ticket_id = str(payload.get("ticket_id") or "").strip() if isinstance(payload, dict) else ""
        if not ticket_id:
            raise BadInput(400, "bad_payload", "body has no ticket_id")
        event = str(payload.get("event") or "ticket_event")
        invocation = request.headers.get("X-Zendesk-Webhook-Invocation-Id") or ""
        event_id = zendesk_event_id(ticket_id, event, payload.get("comment_id"), invocation)
        if event_id is None:
            raise BadInput(400, "missing_header", "missing X-Zendesk-Webhook-Invocation-Id")
        entry = InboxEntry("zendesk", event_id, event, payload, resource_id=ticket_id, triggered_at=timestamp)
        return await inbox.store(ledger, entry)

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


def recharge_route(ledger: Ledger, secret: str) -> Handler:
    async def recharge_webhook(request: Request) -> Response:
        raw = await request.body()
        if not recharge.verify_webhook(secret, raw, request.headers):
            raise BadInput(401, "invalid_signature", "invalid signature")
        topic = request.headers.get("X-Recharge-Topic", "unknown")
        payload = parse_json(raw)
        # The payload is the REST GET shape, {"subscription": {...}} or {"charge": {...}}.
        objects = [v for v in payload.values() if isinstance(v, dict)] if isinstance(payload, dict) else []
        record = objects[0] if len(objects) == 1 else {}
        entry = InboxEntry(
            "recharge",
            recharge.webhook_event_id(topic, raw),
            topic,
            payload,
            resource_id=str(record["id"]) if record.get("id") is not None else None,
            triggered_at=_recharge_updated_at(record),
        )
        return await inbox.store(ledger, entry)

    return recharge_webhook


def _recharge_updated_at(record: dict) -> str | None:
    """The object's ``updated_at`` (store time) as UTC ISO: the same on every redelivery."""
    try:
        moment = recharge.parse_store_time(record.get("updated_at"), ZoneInfo(recharge.STORE_TIMEZONE))
    except (TypeError, ValueError):
        return None
    return moment.isoformat() if moment else None
