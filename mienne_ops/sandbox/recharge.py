"""The Recharge fake (API 2021-11): customers, subscriptions, charges, refunds and signed webhooks.

Follows ``shared/docs/api/recharge.md`` and its fidelity checklist; mounted under ``/recharge``:

- ``X-Recharge-Access-Token`` required (401), ``X-Recharge-Version: 2021-11`` required (400
  ``{"errors": "X-Recharge-Version header required"}``; another version is refused too: the fake
  speaks 2021-11 only).
- Leaky bucket per token: 40 calls, leaking 2/s; overflow -> 429 ``{"errors": ...}`` with no usage
  header and no ``Retry-After``.
- Cursor envelopes ``{"<resources>": [...], "next_cursor", "previous_cursor"}``; ``limit`` default
  50, above 250 -> 422; with ``cursor`` only ``cursor`` and ``limit`` are read (the filters and the
  sort are locked into the cursor).
- ``GET /customers?email=`` / ``external_customer_id=``; ``GET /customers/{id}?include=a,b`` takes ONE
  comma-separated ``include`` (``includes`` or a repeated ``include`` is ignored), the included lists
  under ``customer.include``; ``GET /subscriptions`` has no email filter (an ``email`` parameter is
  ignored); statuses are lowercase and an unknown status filter is 422.
- Timestamps in US/Eastern store time without an offset, dates ``YYYY-MM-DD``, prices as strings.
- ``POST /subscriptions/{id}/cancel`` -> 422 without ``cancellation_reason`` or with comments over
  1,024 characters; sets ``status``, ``cancelled_at``, ``cancellation_reason``.
- ``POST /subscriptions/{id}/set_next_charge_date`` ``{"date"}``: a ``YYYY-MM-DD`` in the future
  (store time); moved next to another active subscription's queued charge on the same address and
  date, both merge into ONE NEW charge with a new id.
- ``POST /charges/{id}/skip`` / ``unskip`` by ``purchase_item_ids`` (the 2021-01 ``subscription_id(s)``
  body is 422); skipping part of a charge splits the skipped lines into a new skipped charge; a
  skipped subscription's next charge moves one interval on.
- ``POST /charges/{id}/refund`` ``{"amount": "5.00", "full_refund", "retry"}``: a paid charge only
  (``success`` / ``partially_refunded``; refunded -> 422), ``amount`` a string and at most
  ``total_price - total_refunds`` (422 otherwise); status becomes ``partially_refunded`` or
  ``refunded``; ``full_refund`` refunds what is left.
- 409 ``{"errors": ...}`` for any write touching a charge that is being processed.
- Errors: 422 ``{"errors": {"<field>": ["<message>"]}}``, everything else ``{"errors": "<message>"}``.
- ``POST /webhooks`` ``{"address", "topic"}`` (at most 10 per topic -> 422), ``GET /webhooks``,
  ``DELETE /webhooks/{id}``. Deliveries carry ``X-Recharge-Topic`` and BOTH signatures (legacy
  ``X-Recharge-Hmac-Sha256`` = sha256(secret + body) hex; ``X-Recharge-Webhook-Timestamp`` +
  ``X-Recharge-Webhook-Signature: t=…,v1=…``); the payload is the REST GET shape; 5 s timeout; the
  FaultBook's drop / duplicate faults for "recharge"; 20 retries spread like Recharge's 48 h but
  compressed (``webhook_retry_span_seconds``), then the webhook subscription is deleted.

Formats, error shapes and the cursor envelope live in `recharge_records`; webhook delivery in
`recharge_webhooks`.

Control plane, under ``/_sandbox/recharge``:

- ``POST /customers`` ``{"email", "first_name", "last_name", "shopify_customer_id"?, "address"?}``
- ``POST /subscriptions`` ``{"customer_id", "sku", "quantity", "price", "order_interval_unit",
  "order_interval_frequency", "next_charge_scheduled_at"?, "product_title"?}`` (+ its queued charge)
- ``POST /charges/{id}/process`` processes a queued charge: ``success``, a Shopify order in the same
  world (customer email, the subscriptions' SKUs, tag ``Subscription``), the charge's
  ``external_order_id.ecommerce`` = that order's id, and the next queued charge scheduled
- ``POST /charges/{id}/processing`` ``{"processing": true|false}`` holds a charge "being processed"
- ``POST /limits`` ``{"bucket_size", "leak_per_second", "frozen_clock", "advance_seconds"}``
- ``POST /settings`` ``{"already_cancelled": "error"|"unchanged", "webhook_retry_span_seconds"}``
- ``POST /write_faults`` ``{"operation": "refund", "status": 503, "count": 1}``: the next such
  writes are APPLIED, then answered with that error (a lost answer after the write)
- ``GET /webhooks/log`` the delivery log

Sandbox choices (not documented by Recharge): the 401/429/409 messages; cancelling a cancelled
subscription is 422 unless ``already_cancelled`` is ``unchanged``; ``full_refund`` still needs an
``amount``; a refund ``amount`` must be a string; 2 decimals at most.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.base import SystemSandbox
from mienne_ops.sandbox.catalog import Catalog, build_catalog
from mienne_ops.sandbox.control import BadInput
from mienne_ops.sandbox.limits import SlidingWindowLimiter, apply_clock_knobs
from mienne_ops.sandbox.recharge_records import (
    EASTERN,
    TIME_FILTERS,
    RechargeError,
    advance,
    charge_matches,
    check_status,
    error_response,
    ids_match,
    includes,
    invalid,
    json_object,
    money,
    page,
    parse_day,
    refund_amount,
    store_time,
    times_match,
    with_totals,
)
from mienne_ops.sandbox.recharge_webhooks import WebhookEmitter

SYSTEM = "recharge"
VERSION = "2021-11"
BUCKET_SIZE, LEAK_PER_SECOND = 40, 2.0
MAX_COMMENTS = 1024
WEBHOOKS_PER_TOPIC = 10
SUBSCRIPTION_STATUSES = ("active", "cancelled", "expired")
CHARGE_STATUSES = ("success", "queued", "error", "refunded", "partially_refunded", "skipped", "pending")
REFUNDABLE = ("success", "partially_refunded")
INTERVAL_UNITS = ("day", "week", "month")
TOPICS = (
    "subscription/created",
    "subscription/updated",
    "subscription/activated",
    "subscription/cancelled",
    "subscription/skipped",
    "subscription/unskipped",
    "charge/created",
    "charge/paid",
    "charge/refunded",
    "charge/updated",
)
WRITE_OPERATIONS = ("cancel", "activate", "set_next_charge_date", "skip", "unskip", "refund")
CHARGE_SORTS = {
    "id-asc": "id",
    "id-desc": "id",
    "updated_at-asc": "updated_at",
    "updated_at-desc": "updated_at",
    "scheduled_at-asc": "scheduled_at",
    "scheduled_at-desc": "scheduled_at",
}
# Subscriptions ship free by the standard method (a sandbox choice): the Shopify order Recharge
# creates carries it, so flow A maps its ship method like any order's.
SUBSCRIPTION_SHIPPING = {
    "code": "standard",
    "title": "Standard Shipping",
    "price": "0.00",
    "source": "recharge",
    "taxable": False,
    "tax_lines": [],
}
DEFAULT_ADDRESS = {
    "address1": "100 Congress Ave",
    "address2": None,
    "city": "Austin",
    "province": "TX",
    "zip": "78701",
    "country_code": "US",
    "phone": "+15125550100",
}


class LeakyBucket(SlidingWindowLimiter):
    """Recharge's per-token leaky bucket (``requests_per_second`` is the leak rate)."""

    def __init__(self, size: int = BUCKET_SIZE, leak_per_second: float = LEAK_PER_SECOND) -> None:
        super().__init__(leak_per_second)
        self.size = size
        self._levels: dict[str, tuple[float, float]] = {}

    def configure(self, requests_per_second: float, size: int | None = None) -> None:  # type: ignore[override]
        with self._lock:
            self._levels.clear()
            if size is not None:
                self.size = size
        super().configure(requests_per_second)

    def allow(self, key: str) -> bool:
        with self._lock:
            now = self._clock() if self._frozen_at is None else self._frozen_at
            level, at = self._levels.get(key, (0.0, now))
            level = max(0.0, level - (now - at) * self.requests_per_second)
            allowed = level + 1 <= self.size
            self._levels[key] = (level + 1 if allowed else level, now)
            return allowed


Events = list[tuple[str, dict[str, Any]]]


@dataclass
class Call:
    """One API request as a handler sees it; ``events`` are webhooks sent once it has committed."""

    path: dict[str, Any]
    params: QueryParams
    body: Any
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class Sandbox(SystemSandbox):
    name = SYSTEM

    def __init__(self, world, faults) -> None:
        super().__init__(world, faults)
        self.bucket = LeakyBucket()
        self.skus = build_catalog().by_sku()  # subscriptions name catalog SKUs (product/variant ids)
        self.already_cancelled = "error"
        self.write_faults: dict[str, list[int]] = {}  # operation -> [status, remaining]
        self.webhooks = WebhookEmitter(world, faults)

    # -- SystemSandbox --------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        api = self._endpoint
        return [
            Route("/customers", api(self.list_customers), methods=["GET"]),
            Route("/customers/{id:int}", api(self.get_customer), methods=["GET"]),
            Route("/addresses/{id:int}", api(self.get_address), methods=["GET"]),
            Route("/subscriptions", api(self.list_subscriptions), methods=["GET"]),
            Route("/subscriptions/{id:int}", api(self.get_subscription), methods=["GET"]),
            Route("/subscriptions/{id:int}/cancel", api(post=self.cancel_subscription), methods=["POST"]),
            Route("/subscriptions/{id:int}/activate", api(post=self.activate_subscription), methods=["POST"]),
            Route(
                "/subscriptions/{id:int}/set_next_charge_date",
                api(post=self.set_next_charge_date),
                methods=["POST"],
            ),
            Route("/charges", api(self.list_charges), methods=["GET"]),
            Route("/charges/{id:int}", api(self.get_charge), methods=["GET"]),
            Route("/charges/{id:int}/skip", api(post=self.skip_charge), methods=["POST"]),
            Route("/charges/{id:int}/unskip", api(post=self.unskip_charge), methods=["POST"]),
            Route("/charges/{id:int}/refund", api(post=self.refund_charge), methods=["POST"]),
            Route("/webhooks", api(self.list_webhooks, self.create_webhook), methods=["GET", "POST"]),
            Route(
                "/webhooks/{id:int}",
                api(self.get_webhook, delete=self.delete_webhook),
                methods=["GET", "DELETE"],
            ),
        ]

    def control_routes(self) -> list[BaseRoute]:
        return [
            Route("/customers", self._control(self.control_customer), methods=["POST"]),
            Route("/subscriptions", self._control(self.control_subscription), methods=["POST"]),
            Route("/charges/{id:int}/process", self._process_route, methods=["POST"]),
            Route("/charges/{id:int}/processing", self._control(self.control_processing), methods=["POST"]),
            Route("/limits", self._control(self.control_limits), methods=["POST"]),
            Route("/settings", self._control(self.control_settings), methods=["POST"]),
            Route("/write_faults", self._control(self.control_write_faults), methods=["POST"]),
            Route("/webhooks/log", self._log_route, methods=["GET"]),
        ]

    def reset(self, catalog: Catalog) -> None:
        self.world.clear_system(SYSTEM)
        self.skus = catalog.by_sku()
        self.bucket.configure(LEAK_PER_SECOND, BUCKET_SIZE)
        self.already_cancelled = "error"
        self.write_faults.clear()
        self.webhooks.reset()

    def state(self) -> dict[str, Any]:
        return {
            "customers": [self._customer_view(c) for c in self.world.list(SYSTEM, "customer")],
            "addresses": self.world.list(SYSTEM, "address"),
            "subscriptions": self.world.list(SYSTEM, "subscription"),
            "charges": [self._charge_view(c) for c in self.world.list(SYSTEM, "charge")],
            "refunds": self.world.list(SYSTEM, "refund"),
            "webhooks": self.world.list(SYSTEM, "webhook"),
            "webhook_deliveries": len(self.webhooks.log_entries()),
            "webhooks_pending": self.webhooks.pending_webhooks(),
        }

    def credentials(self) -> dict[str, Any]:
        return dict(credentials.RECHARGE)

    def fault_response(self, status: int) -> Response:
        if status == 429:  # Recharge documents no usage or Retry-After header
            return error_response(429, "Too many requests; the bucket is full")
        return error_response(status, "Internal server error")

    def start(self) -> None:
        self.webhooks.start()

    def stop(self) -> None:
        self.webhooks.stop()

    # -- request plumbing -----------------------------------------------------------------------
    def _endpoint(self, get=None, post=None, *, delete=None):
        handlers: dict[str, Callable[[Call], tuple[int, Any]] | None] = {
            "GET": get,
            "POST": post,
            "DELETE": delete,
        }

        async def endpoint(request: Request) -> Response:
            token = request.headers.get("x-recharge-access-token", "")
            if not token or not hmac.compare_digest(token, credentials.RECHARGE["access_token"]):
                return error_response(401, "A valid X-Recharge-Access-Token is required")
            if not self.bucket.allow(token):
                return error_response(429, "Too many requests; the bucket is full")
            if request.headers.get("x-recharge-version") != VERSION:
                return error_response(400, "X-Recharge-Version header required")
            handler = handlers.get(request.method)
            if handler is None:
                return error_response(405, f"{request.method} is not supported here")
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return error_response(400, "The body is not valid JSON")
            call = Call(dict(request.path_params), request.query_params, body)
            try:
                status, payload = await run_in_threadpool(self._run, handler, call)
            except RechargeError as error:
                return error_response(error.status, error.errors)
            for topic, event in call.events:
                self.webhooks.emit(topic, event)
            lost = self._lost_answer(handler)
            if lost is not None:
                return error_response(lost, "Internal server error")
            return JSONResponse(payload, status_code=status)

        return endpoint

    def _run(self, handler: Callable[[Call], tuple[int, Any]], call: Call) -> tuple[int, Any]:
        with self.world.tx():
            return handler(call)

    def _lost_answer(self, handler: Callable[..., Any]) -> int | None:
        """An armed write fault: the write has committed, its answer is replaced by an error."""
        operation = getattr(handler, "__name__", "").replace("_subscription", "").replace("_charge", "")
        armed = self.write_faults.get(operation)
        if not armed or armed[1] <= 0:
            return None
        armed[1] -= 1
        return armed[0]

    def _control(self, handler: Callable[..., tuple[int, Any]]):
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            body = json.loads(raw) if raw else {}
            if not isinstance(body, dict):
                raise BadInput("the body must be a JSON object")
            call = Call(dict(request.path_params), request.query_params, body)
            try:
                status, payload = await run_in_threadpool(self._run_control, handler, call)
            except RechargeError as error:
                return error_response(error.status, error.errors)
            for topic, event in call.events:
                self.webhooks.emit(topic, event)
            return JSONResponse(payload, status_code=status)

        return endpoint

    def _run_control(self, handler, call: Call) -> tuple[int, Any]:
        with self.world.tx():
            return handler(call.path, call.body, call.events)

    # -- storage --------------------------------------------------------------------------------
    def _new_id(self, kind: str, start: int) -> int:
        return self.world.next_id(f"{SYSTEM}:{kind}", start)

    def _now(self) -> str:
        return store_time(self.world.now())

    def _today(self) -> date:
        return self.world.now().astimezone(EASTERN).date()

    def _load(self, kind: str, record_id: Any, label: str) -> dict[str, Any]:
        record = self.world.get(SYSTEM, kind, record_id)
        if record is None:
            raise RechargeError(404, f"{label} not found")
        return record

    def _save(self, kind: str, record: dict[str, Any]) -> dict[str, Any]:
        record["updated_at"] = self._now()
        self.world.put(SYSTEM, kind, record["id"], record)
        return record

    # -- views (the REST GET shape) -------------------------------------------------------------
    def _customer_view(self, customer: dict[str, Any]) -> dict[str, Any]:
        subs = [s for s in self.world.list(SYSTEM, "subscription") if s["customer_id"] == customer["id"]]
        return {
            **customer,
            "subscriptions_active_count": sum(1 for s in subs if s["status"] == "active"),
            "subscriptions_total_count": len(subs),
        }

    @staticmethod
    def _charge_view(charge: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in charge.items() if not key.startswith("_")}

    # -- customers ------------------------------------------------------------------------------
    def list_customers(self, call: Call) -> tuple[int, Any]:
        records = [self._customer_view(c) for c in self.world.list(SYSTEM, "customer")]
        allowed = ("email", "external_customer_id", "ids", *TIME_FILTERS)

        def match(customer: dict[str, Any], f: dict[str, str]) -> bool:
            if "email" in f and customer["email"].lower() != f["email"].strip().lower():
                return False
            if (
                "external_customer_id" in f
                and (customer["external_customer_id"] or {}).get("ecommerce") != f["external_customer_id"]
            ):
                return False
            return ids_match(customer, f) and times_match(customer, f)

        return 200, page("customers", records, call.params, match, allowed)

    def get_customer(self, call: Call) -> tuple[int, Any]:
        customer = self._customer_view(self._load("customer", call.path["id"], "Customer"))
        wanted = includes(call.params)
        if wanted:
            customer["include"] = {}
            if "addresses" in wanted:
                customer["include"]["addresses"] = [
                    a for a in self.world.list(SYSTEM, "address") if a["customer_id"] == customer["id"]
                ]
            if "subscriptions" in wanted:
                customer["include"]["subscriptions"] = [
                    s for s in self.world.list(SYSTEM, "subscription") if s["customer_id"] == customer["id"]
                ]
            if "payment_methods" in wanted:
                customer["include"]["payment_methods"] = []
        return 200, {"customer": customer}

    def get_address(self, call: Call) -> tuple[int, Any]:
        return 200, {"address": self._load("address", call.path["id"], "Address")}

    # -- subscriptions --------------------------------------------------------------------------
    def list_subscriptions(self, call: Call) -> tuple[int, Any]:
        allowed = ("customer_id", "address_id", "ids", "status", "external_variant_id", *TIME_FILTERS)
        check_status(call.params.get("status"), SUBSCRIPTION_STATUSES)

        def match(sub: dict[str, Any], f: dict[str, str]) -> bool:
            for name in ("customer_id", "address_id", "status"):
                if name in f and str(sub[name]) != f[name]:
                    return False
            if (
                "external_variant_id" in f
                and sub["external_variant_id"].get("ecommerce") != f["external_variant_id"]
            ):
                return False
            return ids_match(sub, f) and times_match(sub, f)

        records = self.world.list(SYSTEM, "subscription")
        return 200, page("subscriptions", records, call.params, match, allowed)

    def get_subscription(self, call: Call) -> tuple[int, Any]:
        return 200, {"subscription": self._load("subscription", call.path["id"], "Subscription")}

    def cancel_subscription(self, call: Call) -> tuple[int, Any]:
        body = json_object(call.body)
        sub = self._load("subscription", call.path["id"], "Subscription")
        reason = body.get("cancellation_reason")
        if not isinstance(reason, str) or not reason.strip():
            raise invalid("cancellation_reason", "can't be blank")
        comments = body.get("cancellation_reason_comments")
        if comments is not None and (not isinstance(comments, str) or len(comments) > MAX_COMMENTS):
            raise invalid(
                "cancellation_reason_comments", f"is too long (maximum is {MAX_COMMENTS} characters)"
            )
        if sub["status"] == "cancelled":
            if self.already_cancelled == "unchanged":
                return 200, {"subscription": sub}
            raise invalid("subscription", "is already cancelled")
        if sub["status"] != "active":
            raise invalid("status", f"cannot cancel a subscription that is {sub['status']}")
        self._unschedule(sub)
        sub.update(
            status="cancelled",
            cancelled_at=self._now(),
            cancellation_reason=reason,
            cancellation_reason_comments=comments,
            next_charge_scheduled_at=None,
            has_queued_charges=False,
        )
        self._save("subscription", sub)
        call.events.append(("subscription/cancelled", {"subscription": sub}))
        return 200, {"subscription": sub}

    def activate_subscription(self, call: Call) -> tuple[int, Any]:
        sub = self._load("subscription", call.path["id"], "Subscription")
        if sub["status"] != "cancelled":
            raise invalid("status", f"cannot activate a subscription that is {sub['status']}")
        sub.update(
            status="active", cancelled_at=None, cancellation_reason=None, cancellation_reason_comments=None
        )
        self._schedule(
            sub, advance(self._today(), sub["order_interval_unit"], sub["order_interval_frequency"])
        )
        call.events.append(("subscription/activated", {"subscription": sub}))
        return 200, {"subscription": sub}

    def set_next_charge_date(self, call: Call) -> tuple[int, Any]:
        body = json_object(call.body)
        if "date" not in body:
            raise invalid("date", "is required")
        day = parse_day(body["date"], "date")
        if day <= self._today():
            raise invalid("date", "must be in the future")
        sub = self._load("subscription", call.path["id"], "Subscription")
        if sub["status"] != "active":
            raise invalid("status", f"cannot move the next charge of a {sub['status']} subscription")
        self._unschedule(sub)
        self._schedule(sub, day)
        call.events.append(("subscription/updated", {"subscription": sub}))
        return 200, {"subscription": sub}

    # -- scheduling: subscriptions <-> queued charges --------------------------------------------
    def _queued_for(self, sub_id: int) -> list[dict[str, Any]]:
        return [
            c
            for c in self.world.list(SYSTEM, "charge")
            if c["status"] == "queued" and any(li["purchase_item_id"] == sub_id for li in c["line_items"])
        ]

    def _guard(self, charge: dict[str, Any]) -> None:
        if charge.get("_processing"):
            raise RechargeError(409, f"Charge {charge['id']} is currently being processed")

    def _unschedule(self, sub: dict[str, Any]) -> None:
        """Take the subscription's line off its queued charges (a charge left empty is deleted)."""
        queued = self._queued_for(sub["id"])
        for charge in queued:
            self._guard(charge)
        for charge in queued:
            charge["line_items"] = [li for li in charge["line_items"] if li["purchase_item_id"] != sub["id"]]
            if charge["line_items"]:
                self._save("charge", with_totals(charge))
            else:
                self.world.delete(SYSTEM, "charge", charge["id"])

    def _schedule(self, sub: dict[str, Any], day: date) -> dict[str, Any]:
        """Queue the subscription on ``day``; another queued charge of the same address that day is
        merged with it into ONE NEW charge (a new id), as Recharge does."""
        sub["next_charge_scheduled_at"] = day.isoformat()
        sub["has_queued_charges"] = True
        self._save("subscription", sub)
        line = self._line(sub)
        same_day = [
            c
            for c in self.world.list(SYSTEM, "charge")
            if c["status"] == "queued"
            and c["address_id"] == sub["address_id"]
            and c["scheduled_at"] == day.isoformat()
        ]
        lines = [li for c in same_day for li in c["line_items"]] + [line]
        for charge in same_day:
            self._guard(charge)
            self.world.delete(SYSTEM, "charge", charge["id"])
        return self._new_charge(sub["customer_id"], sub["address_id"], day, lines, "queued")

    def _line(self, sub: dict[str, Any]) -> dict[str, Any]:
        price = Decimal(sub["price"])
        return {
            "purchase_item_id": sub["id"],
            "purchase_item_type": "subscription",
            "external_product_id": sub["external_product_id"],
            "external_variant_id": sub["external_variant_id"],
            "sku": sub["sku"],
            "title": sub["product_title"],
            "variant_title": sub.get("variant_title"),
            "quantity": sub["quantity"],
            "unit_price": money(price),
            "total_price": money(price * sub["quantity"]),
            "properties": [],
            "tax_lines": [],
            "taxable": True,
        }

    def _new_charge(
        self, customer_id: int, address_id: int, day: date, lines: list[dict[str, Any]], status: str
    ) -> dict[str, Any]:
        customer = self._load("customer", customer_id, "Customer")
        now = self._now()
        charge: dict[str, Any] = {
            "id": self._new_id("charge", 500_000_001),
            "address_id": address_id,
            "customer": {
                "id": customer["id"],
                "email": customer["email"],
                "external_customer_id": customer["external_customer_id"],
                "hash": customer["hash"],
            },
            "status": status,
            "type": "recurring",
            "scheduled_at": day.isoformat(),
            "processed_at": None,
            "currency": "USD",
            "line_items": lines,
            "shipping_lines": [dict(SUBSCRIPTION_SHIPPING)],
            "tax_lines": [],
            "discounts": [],
            "total_discounts": "0.00",
            "total_tax": "0.00",
            "total_refunds": "0.00",
            "external_order_id": {"ecommerce": None},
            "external_transaction_id": {"payment_processor": None},
            "orders_count": 0,
            "charge_attempts": 0,
            "error": None,
            "error_type": None,
            "created_at": now,
            "updated_at": now,
        }
        self._save("charge", with_totals(charge))
        return charge

    # -- charges --------------------------------------------------------------------------------
    def list_charges(self, call: Call) -> tuple[int, Any]:
        allowed = (
            "customer_id",
            "address_id",
            "status",
            "ids",
            "purchase_item_id",
            "purchase_item_ids",
            "external_order_id",
            "scheduled_at",
            "scheduled_at_min",
            "scheduled_at_max",
            "processed_at_min",
            "processed_at_max",
            *TIME_FILTERS,
        )
        check_status(call.params.get("status"), CHARGE_STATUSES)
        records = [self._charge_view(c) for c in self.world.list(SYSTEM, "charge")]
        return 200, page("charges", records, call.params, charge_matches, allowed, CHARGE_SORTS)

    def get_charge(self, call: Call) -> tuple[int, Any]:
        return 200, {"charge": self._charge_view(self._load("charge", call.path["id"], "Charge"))}

    def skip_charge(self, call: Call) -> tuple[int, Any]:
        charge, ids = self._charge_and_items(call)
        if charge["status"] != "queued":
            raise invalid("status", f"cannot skip a charge that is {charge['status']}")
        skipped = self._split(charge, ids, "skipped")
        for sub_id in ids:
            sub = self._load("subscription", sub_id, "Subscription")
            after = advance(
                date.fromisoformat(skipped["scheduled_at"]),
                sub["order_interval_unit"],
                sub["order_interval_frequency"],
            )
            self._schedule(sub, after)
            call.events.append(("subscription/skipped", {"subscription": sub}))
        return 200, {"charge": self._charge_view(skipped)}

    def unskip_charge(self, call: Call) -> tuple[int, Any]:
        charge, ids = self._charge_and_items(call)
        if charge["status"] != "skipped":
            raise invalid("status", f"cannot unskip a charge that is {charge['status']}")
        if date.fromisoformat(charge["scheduled_at"]) <= self._today():
            raise invalid("scheduled_at", "is in the past")
        for sub_id in ids:
            sub = self._load("subscription", sub_id, "Subscription")
            self._unschedule(sub)
            sub["next_charge_scheduled_at"] = charge["scheduled_at"]
            self._save("subscription", sub)
            call.events.append(("subscription/unskipped", {"subscription": sub}))
        queued = self._split(charge, ids, "queued")
        return 200, {"charge": self._charge_view(queued)}

    def _charge_and_items(self, call: Call) -> tuple[dict[str, Any], list[int]]:
        body = json_object(call.body)
        ids = body.get("purchase_item_ids")
        if ids is None and ("subscription_id" in body or "subscription_ids" in body):
            raise invalid("purchase_item_ids", "is required (2021-11 no longer takes subscription_id)")
        if (
            not isinstance(ids, list)
            or not ids
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
        ):
            raise invalid("purchase_item_ids", "must be a non-empty list of subscription ids")
        charge = self._load("charge", call.path["id"], "Charge")
        self._guard(charge)
        on_charge = {li["purchase_item_id"] for li in charge["line_items"]}
        missing = [i for i in ids if i not in on_charge]
        if missing:
            raise invalid("purchase_item_ids", f"{missing} are not on charge {charge['id']}")
        return charge, list(dict.fromkeys(ids))

    def _split(self, charge: dict[str, Any], ids: list[int], status: str) -> dict[str, Any]:
        """Give ``ids``' lines the new status: the whole charge, or a new charge for part of it."""
        if {li["purchase_item_id"] for li in charge["line_items"]} <= set(ids):
            charge["status"] = status
            return self._save("charge", charge)
        moved = [li for li in charge["line_items"] if li["purchase_item_id"] in ids]
        charge["line_items"] = [li for li in charge["line_items"] if li["purchase_item_id"] not in ids]
        self._save("charge", with_totals(charge))
        day = date.fromisoformat(charge["scheduled_at"])
        return self._new_charge(charge["customer"]["id"], charge["address_id"], day, moved, status)

    def refund_charge(self, call: Call) -> tuple[int, Any]:
        body = json_object(call.body)
        charge = self._load("charge", call.path["id"], "Charge")
        self._guard(charge)
        if charge["status"] == "refunded":
            raise invalid("status", "the charge is already refunded")
        if charge["status"] not in REFUNDABLE:
            raise invalid("status", f"cannot refund a charge that is {charge['status']}")
        amount = refund_amount(body.get("amount"))
        remaining = Decimal(charge["total_price"]) - Decimal(charge["total_refunds"])
        if amount > remaining:
            raise invalid("amount", f"exceeds the refundable amount {money(remaining)}")
        if body.get("full_refund") is True:
            amount = remaining
        total = Decimal(charge["total_refunds"]) + amount
        charge["total_refunds"] = money(total)
        charge["status"] = "refunded" if total == Decimal(charge["total_price"]) else "partially_refunded"
        self._save("charge", charge)
        refund_id = self._new_id("refund", 800_000_001)
        self.world.put(
            SYSTEM,
            "refund",
            refund_id,
            {
                "id": refund_id,
                "charge_id": charge["id"],
                "amount": money(amount),
                "full_refund": body.get("full_refund") is True,
                "created_at": self._now(),
            },
        )
        view = self._charge_view(charge)
        call.events.append(("charge/refunded", {"charge": view}))
        return 200, {"charge": view}

    # -- webhooks (the API) ---------------------------------------------------------------------
    def list_webhooks(self, call: Call) -> tuple[int, Any]:
        def match(hook: dict[str, Any], f: dict[str, str]) -> bool:
            return all(str(hook[name]) == f[name] for name in ("address", "topic") if name in f)

        records = self.world.list(SYSTEM, "webhook")
        return 200, page("webhooks", records, call.params, match, ("address", "topic"))

    def create_webhook(self, call: Call) -> tuple[int, Any]:
        body = json_object(call.body)
        address, topic = body.get("address"), body.get("topic")
        if not isinstance(address, str) or not address.startswith(("http://", "https://")):
            raise invalid("address", "must be an http(s) URL")
        if topic not in TOPICS:
            raise invalid("topic", f"is not a supported topic: {topic!r}")
        same_topic = [w for w in self.world.list(SYSTEM, "webhook") if w["topic"] == topic]
        if len(same_topic) >= WEBHOOKS_PER_TOPIC:
            raise invalid("topic", f"already has {WEBHOOKS_PER_TOPIC} webhooks")
        now = self._now()
        hook = {
            "id": self._new_id("webhook", 1001),
            "address": address,
            "topic": topic,
            "included_objects": body.get("included_objects") or [],
            "created_at": now,
            "updated_at": now,
        }
        self.world.put(SYSTEM, "webhook", hook["id"], hook)
        return 201, {"webhook": hook}

    def get_webhook(self, call: Call) -> tuple[int, Any]:
        return 200, {"webhook": self._load("webhook", call.path["id"], "Webhook")}

    def delete_webhook(self, call: Call) -> tuple[int, Any]:
        self._load("webhook", call.path["id"], "Webhook")
        self.world.delete(SYSTEM, "webhook", call.path["id"])
        return 200, {}

    # -- control plane --------------------------------------------------------------------------
    def control_customer(self, path: dict[str, Any], body: dict[str, Any], events: Events) -> tuple[int, Any]:
        email = body["email"]
        if not isinstance(email, str) or "@" not in email:
            raise BadInput("email must be an email address")
        now = self._now()
        customer_id = self._new_id("customer", 70_000_001)
        shopify_id = body.get("shopify_customer_id")
        customer: dict[str, Any] = {
            "id": customer_id,
            "email": email,
            "first_name": body.get("first_name"),
            "last_name": body.get("last_name"),
            "phone": body.get("phone"),
            "external_customer_id": {"ecommerce": None if shopify_id in (None, "") else str(shopify_id)},
            "hash": hashlib.sha1(f"{customer_id}:{email}".encode()).hexdigest()[:16],
            "status": "active",
            "has_valid_payment_method": True,
            "has_payment_method_in_dunning": False,
            "apply_credit_to_next_recurring_charge": False,
            "first_charge_processed_at": None,
            "tax_exempt": False,
            "analytics_data": {"utm_params": []},
            "created_at": now,
            "updated_at": now,
        }
        self.world.put(SYSTEM, "customer", customer_id, customer)
        given = body.get("address") or {}
        if not isinstance(given, dict):
            raise BadInput("address must be an object")
        address = {
            **DEFAULT_ADDRESS,
            **given,
            "id": self._new_id("address", 90_000_001),
            "customer_id": customer_id,
            "first_name": given.get("first_name", customer["first_name"]),
            "last_name": given.get("last_name", customer["last_name"]),
            "created_at": now,
            "updated_at": now,
        }
        self.world.put(SYSTEM, "address", address["id"], address)
        return 201, {"customer": self._customer_view(customer), "address": address}

    def control_subscription(
        self, path: dict[str, Any], body: dict[str, Any], events: Events
    ) -> tuple[int, Any]:
        customer = self.world.get(SYSTEM, "customer", int(body["customer_id"]))
        if customer is None:
            raise BadInput(f"no Recharge customer {body['customer_id']}")
        addresses = [a for a in self.world.list(SYSTEM, "address") if a["customer_id"] == customer["id"]]
        address_id = int(body.get("address_id") or addresses[0]["id"])
        unit, frequency = body["order_interval_unit"], int(body["order_interval_frequency"])
        if unit not in INTERVAL_UNITS or frequency < 1:
            raise BadInput(f"order_interval_unit must be one of {INTERVAL_UNITS}, frequency at least 1")
        quantity, price = int(body["quantity"]), Decimal(str(body["price"]))
        if quantity < 1 or price < 0:
            raise BadInput("quantity must be at least 1 and price not negative")
        sku = str(body["sku"])
        item = self._catalog_item(sku)
        first = body.get("next_charge_scheduled_at")
        try:
            day = (
                parse_day(first, "next_charge_scheduled_at")
                if first
                else advance(self._today(), unit, frequency)
            )
        except RechargeError as error:
            raise BadInput(f"next_charge_scheduled_at: {error}") from None
        now = self._now()
        sub: dict[str, Any] = {
            "id": self._new_id("subscription", 300_000_001),
            "address_id": address_id,
            "customer_id": customer["id"],
            "status": "active",
            "next_charge_scheduled_at": None,
            "order_interval_unit": unit,
            "order_interval_frequency": frequency,
            "charge_interval_frequency": frequency,
            "order_day_of_month": None,
            "order_day_of_week": None,
            "price": money(price),
            "quantity": quantity,
            "product_title": body.get("product_title") or (item["title"] if item else sku),
            "variant_title": None,
            "sku": sku,
            "sku_override": False,
            "external_product_id": {"ecommerce": str(item["product_id"]) if item else None},
            "external_variant_id": {"ecommerce": str(item["variant_id"]) if item else None},
            "properties": [],
            "presentment_currency": "USD",
            "is_prepaid": False,
            "is_skippable": True,
            "is_swappable": True,
            "max_retries_reached": False,
            "has_queued_charges": False,
            "cancellation_reason": None,
            "cancellation_reason_comments": None,
            "cancelled_at": None,
            "plan_id": None,
            "expire_after_specific_number_of_charges": None,
            "analytics_data": {"utm_params": []},
            "created_at": now,
            "updated_at": now,
        }
        charge = self._schedule(sub, day)
        events.append(("subscription/created", {"subscription": sub}))
        events.append(("charge/created", {"charge": self._charge_view(charge)}))
        return 201, {"subscription": sub, "charge": self._charge_view(charge)}

    def _catalog_item(self, sku: str) -> dict[str, Any] | None:
        item = self.skus.get(sku)
        if item is None:
            return None
        return {
            "title": item.title,
            "product_id": item.shopify_product_id,
            "variant_id": item.shopify_variant_id,
        }

    def control_processing(
        self, path: dict[str, Any], body: dict[str, Any], events: Events
    ) -> tuple[int, Any]:
        charge = self._load("charge", path["id"], "Charge")
        charge["_processing"] = bool(body.get("processing", True))
        self.world.put(SYSTEM, "charge", charge["id"], charge)
        return 200, {"charge": self._charge_view(charge), "processing": charge["_processing"]}

    async def _process_route(self, request: Request) -> Response:
        """Process a queued charge: success, a Shopify order in the same world, the next charge."""
        shopify = getattr(request.app.state, "hub", None)
        shopify = shopify.systems.get("shopify") if shopify is not None else None
        if shopify is None:
            raise BadInput("the Shopify fake is not mounted: a processed charge creates a Shopify order")
        try:
            charge, created = await run_in_threadpool(self.process_charge, request.path_params["id"], shopify)
        except RechargeError as error:
            return error_response(error.status, error.errors)
        return JSONResponse({"charge": charge, "shopify_order": created})

    def process_charge(self, charge_id: int, shopify: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Charge a queued charge and create its Shopify order through ``shopify`` (the Shopify fake's
        `inject_order`); returns (the charge, the order's ``{id, name, admin_graphql_api_id}``)."""
        order_payload = self._begin_processing(charge_id)
        created: dict[str, Any] | None = None
        events: Events = []
        try:
            created = shopify.inject_order(order_payload)
        finally:  # a failed Shopify order leaves the charge queued, never stuck "being processed"
            charge = self._finish_processing(charge_id, created, events)
        for topic, event in events:
            self.webhooks.emit(topic, event)
        assert created is not None
        return charge, created

    def create_customer(self, body: dict[str, Any]) -> dict[str, Any]:
        """The control route's customer, from Python (the traffic simulator)."""
        return self._control_call(self.control_customer, body)["customer"]

    def create_subscription(self, body: dict[str, Any]) -> dict[str, Any]:
        """The control route's subscription and queued charge, from Python."""
        return self._control_call(self.control_subscription, body)

    def _control_call(self, handler: Callable[..., tuple[int, Any]], body: dict[str, Any]) -> dict[str, Any]:
        call = Call({}, QueryParams(), body)
        _, answer = self._run_control(handler, call)
        for topic, event in call.events:
            self.webhooks.emit(topic, event)
        return answer

    def _begin_processing(self, charge_id: int) -> dict[str, Any]:
        with self.world.tx():
            charge = self._load("charge", charge_id, "Charge")
            self._guard(charge)
            if charge["status"] != "queued":
                raise invalid("status", f"cannot process a charge that is {charge['status']}")
            charge["_processing"] = True
            self.world.put(SYSTEM, "charge", charge_id, charge)
            address = self._load("address", charge["address_id"], "Address")
            return self._shopify_order(charge, address)

    def _finish_processing(
        self, charge_id: int, created: dict[str, Any] | None, events: list[tuple[str, dict[str, Any]]]
    ) -> dict[str, Any]:
        with self.world.tx():
            charge = self._load("charge", charge_id, "Charge")
            charge["_processing"] = False
            if created is None:  # the Shopify order failed: the charge stays queued
                self.world.put(SYSTEM, "charge", charge_id, charge)
                return self._charge_view(charge)
            charge.update(
                status="success",
                processed_at=self._now(),
                orders_count=1,
                charge_attempts=charge["charge_attempts"] + 1,
                external_order_id={"ecommerce": str(created["id"])},
                external_transaction_id={"payment_processor": f"ch_sandbox_{charge_id}"},
            )
            self._save("charge", charge)
            customer = self._load("customer", charge["customer"]["id"], "Customer")
            customer["first_charge_processed_at"] = (
                customer["first_charge_processed_at"] or charge["processed_at"]
            )
            self._save("customer", customer)
            for line in charge["line_items"]:
                sub = self.world.get(SYSTEM, "subscription", line["purchase_item_id"])
                if sub is None or sub["status"] != "active" or self._queued_for(sub["id"]):
                    continue
                after = advance(
                    date.fromisoformat(charge["scheduled_at"]),
                    sub["order_interval_unit"],
                    sub["order_interval_frequency"],
                )
                nxt = self._schedule(sub, max(after, self._today() + timedelta(days=1)))
                events.append(("charge/created", {"charge": self._charge_view(nxt)}))
            view = self._charge_view(charge)
            events.append(("charge/paid", {"charge": view}))
            return view

    def _shopify_order(self, charge: dict[str, Any], address: dict[str, Any]) -> dict[str, Any]:
        """The Shopify order Recharge creates for a successful charge (REST/webhook shape)."""
        customer = charge["customer"]
        stored = self._load("customer", customer["id"], "Customer")
        shipping = {
            "first_name": address.get("first_name"),
            "last_name": address.get("last_name"),
            "name": f"{address.get('first_name') or ''} {address.get('last_name') or ''}".strip(),
            "company": None,
            "address1": address["address1"],
            "address2": address.get("address2"),
            "city": address["city"],
            "province": address["province"],
            "province_code": address["province"],
            "zip": address["zip"],
            "country": "United States" if address["country_code"] == "US" else address["country_code"],
            "country_code": address["country_code"],
            "phone": address.get("phone"),
        }
        shopify_customer = (customer["external_customer_id"] or {}).get("ecommerce")
        return {
            "email": customer["email"],
            "currency": charge["currency"],
            "financial_status": "paid",
            "tags": "Subscription, Subscription Recurring Order",
            "source_name": "subscription_contract",
            "line_items": [
                {
                    "sku": li["sku"],
                    "quantity": li["quantity"],
                    "price": li["unit_price"],
                    "title": li["title"],
                }
                for li in charge["line_items"]
            ],
            "shipping_lines": [
                {**line, "discounted_price": line["price"]} for line in charge.get("shipping_lines") or []
            ],
            "shipping_address": shipping,
            "billing_address": dict(shipping),
            "customer": {
                **({"id": int(shopify_customer)} if shopify_customer and shopify_customer.isdigit() else {}),
                "email": customer["email"],
                "first_name": stored.get("first_name"),
                "last_name": stored.get("last_name"),
            },
            "total_price": charge["total_price"],
            "transactions": [
                {"kind": "sale", "status": "success", "gateway": "recharge", "amount": charge["total_price"]}
            ],
            "payment_gateway_names": ["recharge"],
            "note_attributes": [{"name": "rc_charge_id", "value": str(charge["id"])}],
        }

    def control_limits(self, path: dict[str, Any], body: dict[str, Any], events: Events) -> tuple[int, Any]:
        if "bucket_size" in body or "leak_per_second" in body:
            size = body.get("bucket_size", self.bucket.size)
            leak = body.get("leak_per_second", self.bucket.requests_per_second)
            if not all(
                isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in (size, leak)
            ):
                raise BadInput("bucket_size and leak_per_second must be numbers of at least 0")
            self.bucket.configure(float(leak), int(size))
        apply_clock_knobs(self.bucket, body)
        return 200, {
            "bucket_size": self.bucket.size,
            "leak_per_second": self.bucket.requests_per_second,
            "frozen_clock": self.bucket.frozen,
        }

    def control_settings(self, path: dict[str, Any], body: dict[str, Any], events: Events) -> tuple[int, Any]:
        if "already_cancelled" in body:
            if body["already_cancelled"] not in ("error", "unchanged"):
                raise BadInput("already_cancelled must be 'error' or 'unchanged'")
            self.already_cancelled = body["already_cancelled"]
        if "webhook_retry_span_seconds" in body:
            span = body["webhook_retry_span_seconds"]
            if isinstance(span, bool) or not isinstance(span, int | float) or span < 0:
                raise BadInput("webhook_retry_span_seconds must be a number of at least 0")
            self.webhooks.retry_span_seconds = float(span)
        return 200, {
            "already_cancelled": self.already_cancelled,
            "webhook_retry_span_seconds": self.webhooks.retry_span_seconds,
        }

    def control_write_faults(
        self, path: dict[str, Any], body: dict[str, Any], events: Events
    ) -> tuple[int, Any]:
        operation = body["operation"]
        if operation not in WRITE_OPERATIONS:
            raise BadInput(f"operation must be one of {WRITE_OPERATIONS}")
        status, count = int(body.get("status", 503)), int(body.get("count", 1))
        if not 500 <= status <= 599 or count < 0:
            raise BadInput("status must be a 5xx and count at least 0")
        self.write_faults[operation] = [status, count]
        return 200, {name: {"status": s, "remaining": n} for name, (s, n) in self.write_faults.items()}

    def _log_route(self, request: Request) -> JSONResponse:
        entries, pending = self.webhooks.log_entries(), self.webhooks.pending_webhooks()
        return JSONResponse({"deliveries": entries, "pending": pending})
