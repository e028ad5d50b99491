"""The StateSet fake: orders and returns as the stateset-node SDK sees them, for the sandbox.

Follows ``shared/docs/api/stateset.md`` §5–6 and the SDK's ``src/lib/resources/Order.ts`` /
``Return.ts``: Bearer auth, ``X-Request-ID`` echoed, the envelope ``{id, object, status, created_at,
updated_at, data}`` with uppercase ``OrderStatus`` values, ``PUT orders/{id}`` for updates (PATCH ->
405), state changes only through action sub-resources, errors as ``{"error": {"code", "message"}}``.

Vendor facts (the SDK's types and request shapes):

- ``Orders.list`` and ``Orders.search`` answer ``{orders, total}``; ``search`` sends
  ``GET orders/search?query=<text>`` (+ ``status``, ``customer_id``, ``limit``, ``offset``).
  ``Returns.list`` answers ``{returns, total_count, limit, offset}``.
- Amounts are numbers (``OrderItem.unit_price``/``total_amount``, ``OrderTotals``,
  ``PaymentDetails.amount_paid``, ``ShippingDetails.shipping_cost``): a string amount is refused.
- ``ship`` posts ``ShippingDetails`` flat: ``carrier``, ``method`` and numeric ``shipping_cost``
  required, ``tracking_number``/``tracking_url``/``label_url``/``estimated_delivery_date`` optional.
  ``cancel`` posts ``{reason}``; ``return`` ``{rma_number, reason, condition}``; ``refund``
  ``{amount, reason}``; a ``FulfillmentEvent`` is ``{timestamp, status, description, ...}``.
- The response carries the status-specific extras of ``OrderResponse``: SHIPPED ``shipping_details``,
  DELIVERED ``delivered``, CANCELLED ``cancelled``/``cancellation_reason``/``cancelled_at``, RETURNED
  ``returned``/``return_details``, REFUNDED ``refunded``/``refund_details``.

Sandbox choices (not documented by StateSet):

- Search is full-text: ``query`` matches, case-insensitively as a substring, the id, order number,
  customer id and any metadata value — so ``shopify-order-1`` also finds ``shopify-order-10``; a
  client must keep only an exact ``metadata.external_id`` match.
- New orders are ``PENDING`` (or ``DRAFT`` if asked); ``items`` must be a non-empty list with positive
  integer quantities.
- Transitions follow the enum's order: confirm (DRAFT/PENDING), process (PENDING/CONFIRMED), ship
  (PENDING..PACKING only: an order is shipped once), deliver (SHIPPED/IN_TRANSIT/OUT_FOR_DELIVERY),
  cancel (before SHIPPED), return (SHIPPED..DELIVERED); anything else is 409. ``refund`` takes at
  most what ``payment_details.amount_paid`` less earlier refunds leaves (else 400): a partial refund
  keeps the status (``payment_details.status`` ``partially_refunded``), the last one sets REFUNDED
  (``refunded``) — not from an order still to ship (409: cancel it first). ``amount_refunded`` and
  ``data.refunds`` (each refund's ``{amount, reason, processed_at, transaction_id}``) keep the history.
- Returns: ``RET-…`` ids and generated ``rma_number``; approve / receive / inspect / refund / reject /
  cancel move through ``ReturnStatus`` (refund ends in COMPLETED).
- Rate limit off by default; ``POST /_sandbox/stateset/limits {"requests_per_second": N,
  "retry_after_seconds": S}`` turns it on (429 with ``Retry-After``); ``{"frozen_clock": true}`` stops
  the one-second window's clock and ``{"advance_seconds": S}`` moves it (tests: no wall-clock races).
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.base import SystemSandbox
from mienne_ops.sandbox.catalog import Catalog
from mienne_ops.sandbox.limits import SlidingWindowLimiter, apply_clock_knobs

SYSTEM = "stateset"
ORDER_STATUSES = (
    "DRAFT",
    "PENDING",
    "CONFIRMED",
    "PROCESSING",
    "PICKING",
    "PACKING",
    "SHIPPED",
    "IN_TRANSIT",
    "OUT_FOR_DELIVERY",
    "DELIVERED",
    "CANCELLED",
    "RETURNED",
    "REFUNDED",
)
BEFORE_SHIPPING = ("PENDING", "CONFIRMED", "PROCESSING", "PICKING", "PACKING")
IN_CARRIER_HANDS = ("SHIPPED", "IN_TRANSIT", "OUT_FOR_DELIVERY")
ORDER_ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "confirm": (("DRAFT", "PENDING"), "CONFIRMED"),
    "process": (("PENDING", "CONFIRMED"), "PROCESSING"),
    "ship": (BEFORE_SHIPPING, "SHIPPED"),
    "deliver": (IN_CARRIER_HANDS, "DELIVERED"),
    "cancel": (("DRAFT", *BEFORE_SHIPPING), "CANCELLED"),
    "return": ((*IN_CARRIER_HANDS, "DELIVERED"), "RETURNED"),
    # A partial refund keeps the status; the one that refunds everything paid moves it to REFUNDED,
    # which an order open before shipping cannot reach (cancel it first): see `_refund`.
    "refund": (("CANCELLED", *BEFORE_SHIPPING, *IN_CARRIER_HANDS, "DELIVERED", "RETURNED"), "REFUNDED"),
}
#: Statuses a full refund may end (an order still to ship is cancelled first).
FULLY_REFUNDABLE = ("CANCELLED", *IN_CARRIER_HANDS, "DELIVERED", "RETURNED")
ITEM_AMOUNTS = ("unit_price", "discount_amount", "tax_amount", "total_amount")
TOTALS_AMOUNTS = ("subtotal", "shipping_total", "tax_total", "discount_total", "grand_total")
SHIPPING_DETAIL_FIELDS = (
    "carrier",
    "method",
    "tracking_number",
    "estimated_delivery_date",
    "shipping_cost",
    "tracking_url",
    "label_url",
    "package_details",
)
# The SDK's body per action (``cancel(id, {reason})``, ``processReturn``, ``processRefund``).
ACTION_FIELDS = {
    "cancel": ("reason",),
    "return": ("rma_number", "reason", "condition"),
    "refund": ("amount", "reason"),
}
RETURN_ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "approve": (("REQUESTED", "PENDING_APPROVAL"), "APPROVED"),
    "receive": (("APPROVED", "AWAITING_RECEIPT"), "RECEIVED"),
    "inspect": (("RECEIVED",), "INSPECTING"),
    "refund": (("RECEIVED", "INSPECTING", "PROCESSING_REFUND"), "COMPLETED"),
    "reject": (("REQUESTED", "PENDING_APPROVAL", "INSPECTING"), "REJECTED"),
    "cancel": (("REQUESTED", "PENDING_APPROVAL", "APPROVED", "AWAITING_RECEIPT"), "CANCELLED"),
}


class StateSetError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Throttle(SlidingWindowLimiter):
    """Optional per-key sliding one-second window, answered with a ``Retry-After``."""

    def __init__(self) -> None:
        super().__init__(0.0)
        self.retry_after_seconds = 1.0

    def configure(self, requests_per_second: float, retry_after_seconds: float = 1.0) -> None:  # type: ignore[override]
        self.retry_after_seconds = retry_after_seconds
        super().configure(requests_per_second)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


class Sandbox(SystemSandbox):
    name = SYSTEM

    def __init__(self, world, faults) -> None:
        super().__init__(world, faults)
        self.throttle = Throttle()

    # -- SystemSandbox --------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        api = self._endpoint
        return [
            Route("/orders", api(self.list_orders, self.create_order), methods=["GET", "POST"]),
            Route("/orders/search", api(self.search_orders), methods=["GET"]),
            Route(
                "/orders/{id}",
                api(self.get_order, put=self.update_order, delete=self.delete_order),
                methods=["GET", "PUT", "PATCH", "DELETE"],
            ),
            Route("/orders/{id}/fulfillment-events", api(post=self.add_fulfillment_event), methods=["POST"]),
            Route("/orders/{id}/fulfillment-history", api(self.fulfillment_history), methods=["GET"]),
            Route("/orders/{id}/tracking", api(self.tracking), methods=["GET"]),
            Route("/orders/{id}/notes", api(self.list_notes, self.add_note), methods=["GET", "POST"]),
            Route(
                "/orders/{id}/shipping-address",
                api(put=self.put_address("shipping_address")),
                methods=["PUT"],
            ),
            Route(
                "/orders/{id}/billing-address", api(put=self.put_address("billing_address")), methods=["PUT"]
            ),
            Route("/orders/{id}/{action}", api(post=self.order_action), methods=["POST"]),
            Route("/returns", api(self.list_returns, self.create_return), methods=["GET", "POST"]),
            Route(
                "/returns/{id}", api(self.get_return, put=self.update_return), methods=["GET", "PUT", "PATCH"]
            ),
            Route("/returns/{id}/{action}", api(post=self.return_action), methods=["POST"]),
        ]

    def control_routes(self) -> list[BaseRoute]:
        return [Route("/limits", self._control_limits, methods=["POST"])]

    def reset(self, catalog: Catalog) -> None:
        self.throttle.configure(0, 1.0)
        self.world.clear_system(SYSTEM)

    def state(self) -> dict[str, Any]:
        return {"orders": self.world.list(SYSTEM, "order"), "returns": self.world.list(SYSTEM, "return")}

    def credentials(self) -> dict[str, Any]:
        return dict(credentials.STATESET)

    def fault_response(self, status: int) -> Response:
        if status == 429:
            retry = f"{self.throttle.retry_after_seconds:g}"
            return error_response(429, "rate_limited", "Too many requests", {"Retry-After": retry})
        return error_response(status, "server_error", "Service temporarily unavailable")

    # -- request plumbing -----------------------------------------------------------------------
    def _endpoint(self, get=None, post=None, *, put=None, delete=None):
        handlers: dict[str, Callable[..., tuple[int, Any]] | None] = {
            "GET": get,
            "POST": post,
            "PUT": put,
            "DELETE": delete,
        }

        async def endpoint(request: Request) -> Response:
            request_id = request.headers.get("x-request-id") or f"req_{uuid.uuid4().hex[:16]}"
            response = await self._serve(request, handlers)
            response.headers["X-Request-ID"] = request_id
            return response

        return endpoint

    async def _serve(self, request: Request, handlers) -> Response:
        token = self._bearer(request)
        if token is None:
            return error_response(401, "unauthorized", "Invalid or missing API key")
        if not self.throttle.allow(token):
            retry = f"{self.throttle.retry_after_seconds:g}"
            return error_response(429, "rate_limited", "Too many requests", {"Retry-After": retry})
        handler = handlers.get(request.method)
        if handler is None:
            return error_response(405, "method_not_allowed", f"{request.method} is not supported here")
        try:
            payload = await _json_payload(request)
            status, body = await run_in_threadpool(
                handler, dict(request.path_params), request.query_params, payload
            )
        except StateSetError as error:
            return error_response(error.status, error.code, error.message)
        return JSONResponse(body, status_code=status)

    def _bearer(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip(), credentials.STATESET["api_key"]
        ):
            return None
        return token.strip()

    def _load(self, kind: str, record_id: str) -> dict[str, Any]:
        record = self.world.get(SYSTEM, kind, record_id)
        if record is None:
            raise StateSetError(404, "not_found", f"{kind} {record_id} not found")
        return record

    def _save(self, kind: str, record: dict[str, Any]) -> dict[str, Any]:
        record["updated_at"] = self.world.now().isoformat()
        self.world.put(SYSTEM, kind, record["id"], record)
        return record

    # -- orders ---------------------------------------------------------------------------------
    def create_order(self, path, params, body: Any) -> tuple[int, dict[str, Any]]:
        data = _require_object(body)
        items = data.get("items")
        if not isinstance(items, list) or not items:
            raise StateSetError(400, "validation_error", "items must be a non-empty list")
        for item in items:
            quantity = item.get("quantity") if isinstance(item, dict) else None
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
                raise StateSetError(400, "validation_error", "each item needs a positive integer quantity")
            _require_amounts(item, ITEM_AMOUNTS, "items[]")
        _require_amounts(data.get("totals"), TOTALS_AMOUNTS, "totals")
        _require_amounts(data.get("payment_details"), ("amount_paid",), "payment_details")
        status = str(data.pop("status", "PENDING")).upper()
        if status not in ("DRAFT", "PENDING"):
            raise StateSetError(400, "validation_error", "new orders are DRAFT or PENDING")
        now = self.world.now().isoformat()
        with self.world.tx():
            number = self.world.next_id("stateset:order", 100_001)
            order: dict[str, Any] = {
                "id": f"ord_{uuid.uuid4().hex[:20]}",
                "object": "order",
                "order_number": f"SS-{number}",
                "status": status,
                "created_at": now,
                "updated_at": now,
                "data": {**data, "shipments": [], "fulfillment_events": [], "notes": []},
            }
            self.world.put(SYSTEM, "order", order["id"], order)
        return 201, order

    def list_orders(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        """``Orders.list``: ``{orders, total}``."""
        orders = _filtered(self.world.list(SYSTEM, "order"), params)
        return 200, {"orders": _window(orders, params), "total": len(orders)}

    def search_orders(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        """``Orders.search``: ``?query=`` full-text (a substring, case-insensitive), ``{orders, total}``."""
        query = (params.get("query") or "").strip().lower()
        if not query:
            raise StateSetError(400, "validation_error", "query is required")
        orders = [o for o in _filtered(self.world.list(SYSTEM, "order"), params) if query in _search_text(o)]
        return 200, {"orders": _window(orders, params), "total": len(orders)}

    def get_order(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        return 200, self._load("order", path["id"])

    def update_order(self, path, params, body: Any) -> tuple[int, dict[str, Any]]:
        changes = _require_object(body)
        if "status" in changes:
            raise StateSetError(400, "validation_error", "status changes go through the action endpoints")
        with self.world.tx():
            order = self._load("order", path["id"])
            order["data"].update(changes)
            return 200, self._save("order", order)

    def delete_order(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        with self.world.tx():
            order = self._load("order", path["id"])
            if order["status"] not in ("DRAFT", "PENDING", "CANCELLED"):
                raise StateSetError(409, "invalid_state", f"cannot delete an order in {order['status']}")
            self.world.delete(SYSTEM, "order", order["id"])
        return 200, {"id": order["id"], "object": "order", "deleted": True}

    def put_address(self, field: str):
        def handler(path, params, body: Any) -> tuple[int, dict[str, Any]]:
            address = _require_object(body)
            with self.world.tx():
                order = self._load("order", path["id"])
                order["data"][field] = address
                return 200, self._save("order", order)

        return handler

    def order_action(self, path, params, body: Any) -> tuple[int, dict[str, Any]]:
        action = path["action"]
        if action not in ORDER_ACTIONS:
            raise StateSetError(404, "not_found", f"unknown order action {action}")
        payload = body if isinstance(body, dict) else {}
        with self.world.tx():
            order = self._load("order", path["id"])
            allowed, target = ORDER_ACTIONS[action]
            if order["status"] not in allowed:
                raise StateSetError(
                    409, "invalid_transition", f"cannot {action} an order in {order['status']}"
                )
            if action == "ship":
                self._ship(order, payload)
            else:
                self._record_action(order, action, payload)
            if action != "refund" or order["data"]["payment_details"]["status"] == "refunded":
                order["status"] = target
            return 200, self._save("order", order)

    def _ship(self, order: dict[str, Any], details: dict[str, Any]) -> None:
        """``ship`` takes the SDK's ``ShippingDetails`` flat: carrier, method, numeric shipping_cost."""
        for field in ("carrier", "method"):
            if not isinstance(details.get(field), str) or not details[field].strip():
                raise StateSetError(400, "validation_error", f"shipping_details.{field} is required")
        if "shipping_cost" not in details:
            raise StateSetError(400, "validation_error", "shipping_details.shipping_cost is required")
        _require_amounts(details, ("shipping_cost",), "shipping_details")
        shipping = {key: details[key] for key in SHIPPING_DETAIL_FIELDS if key in details}
        data = order["data"]
        data["shipping_details"] = shipping
        data["shipments"].append({**shipping, "shipped_at": self.world.now().isoformat()})
        order["shipping_details"] = shipping
        data["fulfillment_events"].append(
            self._event(
                "shipped",
                {"tracking_number": shipping.get("tracking_number"), "carrier": shipping["carrier"]},
            )
        )

    def _record_action(self, order: dict[str, Any], action: str, payload: dict[str, Any]) -> None:
        """The SDK's request body per action, and the status-specific extras of ``OrderResponse``."""
        for field in ACTION_FIELDS.get(action, ()):
            if field not in payload or payload[field] in (None, ""):
                raise StateSetError(400, "validation_error", f"{action} requires {field}")
        now = self.world.now().isoformat()
        if action == "cancel":
            order.update(cancelled=True, cancellation_reason=payload["reason"], cancelled_at=now)
        elif action == "deliver":
            order.update(delivered=True, delivery_confirmation={"timestamp": now, **payload})
        elif action == "return":
            order.update(returned=True, return_details={**payload, "received_at": now})
        elif action == "refund":
            self._refund(order, payload, now)
        order["data"]["fulfillment_events"].append(self._event(action, payload))

    def _refund(self, order: dict[str, Any], payload: dict[str, Any], now: str) -> None:
        """Money back, at most what was paid less earlier refunds: ``payment_details.status`` becomes
        ``partially_refunded`` or ``refunded`` (the SDK's `PaymentStatus`), ``amount_refunded`` and the
        ``refunds`` history grow (sandbox choice: StateSet documents neither)."""
        _require_amounts(payload, ("amount",), "refund")
        amount = Decimal(str(payload["amount"]))
        payment = order["data"].setdefault("payment_details", {})
        paid = Decimal(str(payment.get("amount_paid", 0)))
        refunded = Decimal(str(payment.get("amount_refunded", 0)))
        if amount <= 0 or amount > paid - refunded:
            raise StateSetError(
                400,
                "validation_error",
                f"refund amount {amount} exceeds the {paid - refunded} paid and not yet refunded",
            )
        refunded += amount
        full = refunded == paid
        if full and order["status"] not in FULLY_REFUNDABLE:
            raise StateSetError(
                409, "invalid_transition", f"cannot refund everything of an order in {order['status']}"
            )
        payment["amount_refunded"] = float(refunded)
        payment["status"] = "refunded" if full else "partially_refunded"
        details = {**payload, "processed_at": now, "transaction_id": f"txn_{uuid.uuid4().hex[:12]}"}
        order["data"].setdefault("refunds", []).append(details)
        order.update(refunded=full, refund_details=details)

    def _event(self, event_type: str, details: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"evt_{uuid.uuid4().hex[:16]}",
            "type": event_type,
            "details": details,
            "created_at": self.world.now().isoformat(),
        }

    def add_fulfillment_event(self, path, params, body: Any) -> tuple[int, dict[str, Any]]:
        event = _require_object(body)
        for field in ("timestamp", "status", "description"):
            if not event.get(field):
                raise StateSetError(400, "validation_error", f"a fulfillment event requires {field}")
        if event["status"] not in ORDER_STATUSES:
            raise StateSetError(400, "validation_error", f"status must be one of {', '.join(ORDER_STATUSES)}")
        with self.world.tx():
            order = self._load("order", path["id"])
            record = {**self._event(str(event["status"]).lower(), {}), **event}
            order["data"]["fulfillment_events"].append(record)
            self._save("order", order)
        return 201, record

    def fulfillment_history(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        events = self._load("order", path["id"])["data"]["fulfillment_events"]
        return 200, {"data": events, "total": len(events), "limit": len(events), "offset": 0}

    def tracking(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        order = self._load("order", path["id"])
        details = order["data"].get("shipping_details") or {}
        return 200, {
            "order_id": order["id"],
            "status": order["status"],
            "carrier": details.get("carrier"),
            "tracking_number": details.get("tracking_number"),
            "tracking_url": details.get("tracking_url"),
            "shipments": order["data"]["shipments"],
            "events": order["data"]["fulfillment_events"],
        }

    def list_notes(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        notes = self._load("order", path["id"])["data"]["notes"]
        return 200, {"data": notes, "total": len(notes), "limit": len(notes), "offset": 0}

    def add_note(self, path, params, body: Any) -> tuple[int, dict[str, Any]]:
        note = _require_object(body)
        with self.world.tx():
            order = self._load("order", path["id"])
            record = {
                "id": f"note_{uuid.uuid4().hex[:12]}",
                "created_at": self.world.now().isoformat(),
                **note,
            }
            order["data"]["notes"].append(record)
            self._save("order", order)
        return 201, record

    # -- returns --------------------------------------------------------------------------------
    def create_return(self, path, params, body: Any) -> tuple[int, dict[str, Any]]:
        data = _require_object(body)
        order_id = data.get("order_id")
        if not order_id or self.world.get(SYSTEM, "order", order_id) is None:
            raise StateSetError(400, "validation_error", "order_id must name an existing order")
        if not isinstance(data.get("items"), list) or not data["items"]:
            raise StateSetError(400, "validation_error", "items must be a non-empty list")
        now = self.world.now().isoformat()
        with self.world.tx():
            number = self.world.next_id("stateset:return", 5001)
            record: dict[str, Any] = {
                "id": f"RET-{uuid.uuid4().hex[:12].upper()}",
                "object": "return",
                "rma_number": f"RMA-{number}",
                "status": "REQUESTED",
                "created_at": now,
                "updated_at": now,
                "data": data,
            }
            self.world.put(SYSTEM, "return", record["id"], record)
        return 201, record

    def list_returns(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        """``Returns.list``: ``{returns, total_count, limit, offset}``."""
        records = _filtered(self.world.list(SYSTEM, "return"), params)
        limit, offset = _limit_offset(params)
        return 200, {
            "returns": _window(records, params),
            "total_count": len(records),
            "limit": limit,
            "offset": offset,
        }

    def get_return(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        return 200, self._load("return", path["id"])

    def update_return(self, path, params, body: Any) -> tuple[int, dict[str, Any]]:
        changes = _require_object(body)
        if "status" in changes:
            raise StateSetError(400, "validation_error", "status changes go through the action endpoints")
        with self.world.tx():
            record = self._load("return", path["id"])
            record["data"].update(changes)
            return 200, self._save("return", record)

    def return_action(self, path, params, body: Any) -> tuple[int, dict[str, Any]]:
        action = path["action"]
        if action not in RETURN_ACTIONS:
            raise StateSetError(404, "not_found", f"unknown return action {action}")
        with self.world.tx():
            record = self._load("return", path["id"])
            allowed, target = RETURN_ACTIONS[action]
            if record["status"] not in allowed:
                raise StateSetError(
                    409, "invalid_transition", f"cannot {action} a return in {record['status']}"
                )
            if isinstance(body, dict) and body:
                record["data"].setdefault("history", []).append({"action": action, **body})
            record["status"] = target
            return 200, self._save("return", record)

    # -- control --------------------------------------------------------------------------------
    async def _control_limits(self, request: Request) -> Response:
        try:
            body = await _json_payload(request)
        except StateSetError as error:
            return error_response(400, error.code, f"bad input: {error.message}")
        body = {} if body is None else body
        if not isinstance(body, dict):
            return error_response(400, "bad_input", "the body must be a JSON object")
        if "requests_per_second" in body or "retry_after_seconds" in body:
            rate, retry = (body.get("requests_per_second") or 0, body.get("retry_after_seconds", 1.0))
            if not all(_non_negative_number(v) for v in (rate, retry)):
                return error_response(
                    400,
                    "bad_input",
                    "requests_per_second and retry_after_seconds must be numbers of at least 0",
                )
            self.throttle.configure(float(rate), float(retry))
        try:
            apply_clock_knobs(self.throttle, body)
        except ValueError as error:
            return error_response(400, "bad_input", str(error))
        return JSONResponse(
            {
                "requests_per_second": self.throttle.requests_per_second,
                "retry_after_seconds": self.throttle.retry_after_seconds,
                "frozen_clock": self.throttle.frozen,
            }
        )


def _non_negative_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value >= 0


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise StateSetError(400, "validation_error", "a JSON object body is required")
    return dict(body)


def _page(records: list[dict[str, Any]], params) -> dict[str, Any]:
    limit, offset = _limit_offset(params)
    return {"data": records[offset : offset + limit], "total": len(records), "limit": limit, "offset": offset}


def _limit_offset(params) -> tuple[int, int]:
    try:
        limit = min(int(params.get("limit", 20)), 100)
        offset = int(params.get("offset", 0))
    except ValueError as error:
        raise StateSetError(400, "validation_error", "limit and offset must be integers") from error
    if limit < 1 or offset < 0:
        raise StateSetError(400, "validation_error", "limit must be positive and offset not negative")
    return limit, offset


def _window(records: list[dict[str, Any]], params) -> list[dict[str, Any]]:
    limit, offset = _limit_offset(params)
    return records[offset : offset + limit]


def _filtered(records: list[dict[str, Any]], params) -> list[dict[str, Any]]:
    """The SDK's list/search filters ``status`` and ``customer_id``."""
    if params.get("status"):
        records = [r for r in records if r["status"] == params["status"].upper()]
    if params.get("customer_id"):
        records = [r for r in records if str(r["data"].get("customer_id")) == params["customer_id"]]
    return records


def _search_text(order: dict[str, Any]) -> str:
    data = order["data"]
    metadata = data.get("metadata") or {}
    parts = [order["id"], order.get("order_number"), data.get("customer_id"), *metadata.values()]
    return " ".join(str(part) for part in parts if part is not None).lower()


def _require_amounts(record: Any, fields: tuple[str, ...], where: str) -> None:
    """The SDK types every amount as a number: a string (or a bool) is refused."""
    if not isinstance(record, dict):
        return
    for field in fields:
        value = record.get(field)
        if field in record and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise StateSetError(400, "validation_error", f"{where}.{field} must be a number")


async def _json_payload(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as error:
        raise StateSetError(400, "invalid_json", "the body is not valid JSON") from error
