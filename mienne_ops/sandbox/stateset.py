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
- Returns (the SDK's ``Return.ts``; vendor facts first): ``GET returns`` takes ``status``,
  ``customer_id``, ``order_id``, ``limit``, ``offset``; one return comes back wrapped as
  ``{"return": {id, object: "return", rma_number, status, created_at, updated_at, data, …}}`` (the SDK
  reads ``response.return``) with the per-status flag of its ``…ReturnResponse`` (``approved: true``,
  ``received_at``/``received_by``, ``refund_details``, ``cancellation_reason``, ``closed_reason``…);
  ``GET returns/{id}/history`` answers ``{history: [{action, from_status, to_status, …}]}``. Bodies:
  ``ReturnData`` (``order_id``, ``customer_id``, ``items[{product_id, quantity, reason, condition?,
  refund_amount}]``, ``shipping_label?``, ``metadata?``), ``approve {shipping_label?, notes?}``,
  ``receive {received_by, condition_notes?}``, ``refund`` = ``RefundDetails {method, amount}``,
  ``reject|cancel|reopen {reason}``, ``close {reason?}``; reasons, conditions and refund methods are
  the SDK's enums; amounts are numbers.
- Returns, sandbox choices: ``RET-…`` ids and ``rma_number`` generated; ``customer_id`` must be the
  order's and each item a product of the order, no more than ordered; ``receive`` may list what came
  back in ``items[{product_id, quantity, condition?}]`` (at most what the return holds; none = all) —
  one receipt per return (``RECEIVED`` is one state in the SDK: a second ``receive`` is a 409);
  transitions (else 409): approve from REQUESTED / PENDING_APPROVAL / REOPENED, receive from APPROVED
  / AWAITING_RECEIPT, inspect from RECEIVED, refund from RECEIVED / INSPECTING / PROCESSING_REFUND
  (→ COMPLETED, never before the goods are received), reject before approval or while inspecting,
  cancel before receipt, close from RECEIVED / INSPECTING / COMPLETED / REJECTED / CANCELLED, reopen
  from CLOSED / REJECTED. A refund is at most the items' ``refund_amount`` total (else 400).
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
RETURN_STATUSES = (
    "REQUESTED",
    "PENDING_APPROVAL",
    "APPROVED",
    "AWAITING_RECEIPT",
    "RECEIVED",
    "INSPECTING",
    "PROCESSING_REFUND",
    "COMPLETED",
    "REJECTED",
    "CANCELLED",
    "CLOSED",
    "REOPENED",
)
RETURN_REASONS = (
    "wrong_item",
    "defective",
    "not_as_described",
    "damaged_in_shipping",
    "size_fit_issue",
    "quality_issue",
    "arrived_late",
    "changed_mind",
    "other",
)
RETURN_CONDITIONS = ("new", "like_new", "used", "damaged", "unsalvageable")
REFUND_METHODS = ("original_payment", "store_credit", "bank_transfer", "gift_card")
BEFORE_RECEIPT = ("REQUESTED", "PENDING_APPROVAL", "APPROVED", "AWAITING_RECEIPT", "REOPENED")
RETURN_ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "approve": (("REQUESTED", "PENDING_APPROVAL", "REOPENED"), "APPROVED"),
    "receive": (("APPROVED", "AWAITING_RECEIPT"), "RECEIVED"),
    "inspect": (("RECEIVED",), "INSPECTING"),
    "refund": (("RECEIVED", "INSPECTING", "PROCESSING_REFUND"), "COMPLETED"),
    "reject": (("REQUESTED", "PENDING_APPROVAL", "INSPECTING", "REOPENED"), "REJECTED"),
    "cancel": (BEFORE_RECEIPT, "CANCELLED"),
    "close": (("RECEIVED", "INSPECTING", "COMPLETED", "REJECTED", "CANCELLED"), "CLOSED"),
    "reopen": (("CLOSED", "REJECTED"), "REOPENED"),
}
#: Required string fields of each action's SDK body.
RETURN_ACTION_FIELDS = {
    "receive": ("received_by",),
    "reject": ("reason",),
    "cancel": ("reason",),
    "reopen": ("reason",),
}
#: The boolean the SDK's `…ReturnResponse` carries per status (``approved: true``, …).
STATUS_FLAGS = {
    "REQUESTED": "requested",
    "PENDING_APPROVAL": "pendingApproval",
    "APPROVED": "approved",
    "AWAITING_RECEIPT": "awaitingReceipt",
    "RECEIVED": "received",
    "INSPECTING": "inspecting",
    "PROCESSING_REFUND": "processingRefund",
    "COMPLETED": "completed",
    "REJECTED": "rejected",
    "CANCELLED": "cancelled",
    "CLOSED": "closed",
    "REOPENED": "reopened",
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
            Route("/returns/{id}/history", api(self.return_history), methods=["GET"]),
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
    # The SDK's `Returns` reads every single-return answer as ``response.return``: the fake wraps
    # the record in ``{"return": …}`` (lists are ``{returns, total_count, limit, offset}``).

    def create_return(self, path, params, body: Any) -> tuple[int, dict[str, Any]]:
        data = _require_object(body)
        order = self.world.get(SYSTEM, "order", str(data.get("order_id") or ""))
        if order is None:
            raise StateSetError(400, "validation_error", "order_id must name an existing order")
        customer = data.get("customer_id")
        if not isinstance(customer, str) or not customer:
            raise StateSetError(400, "validation_error", "customer_id is required")
        if customer != str(order["data"].get("customer_id")):
            raise StateSetError(400, "validation_error", "customer_id is not the order's customer")
        data["items"] = _return_items(data.get("items"), order)
        if "shipping_label" in data:
            _require_label(data["shipping_label"])
        if data.get("metadata") is not None and not isinstance(data["metadata"], dict):
            raise StateSetError(400, "validation_error", "metadata must be an object")
        now = self.world.now().isoformat()
        with self.world.tx():
            number = self.world.next_id("stateset:return", 5001)
            record: dict[str, Any] = {
                "id": f"RET-{uuid.uuid4().hex[:12].upper()}",
                "object": "return",
                "rma_number": f"RMA-{number}",
                "status": "REQUESTED",
                "requested": True,
                "created_at": now,
                "updated_at": now,
                "data": data,
                "history": [],
            }
            self._history(record, "create", None, "REQUESTED")
            self.world.put(SYSTEM, "return", record["id"], record)
        return 201, {"return": record}

    def list_returns(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        """``Returns.list``: ``{returns, total_count, limit, offset}``; filters ``status``,
        ``customer_id`` and ``order_id`` (the SDK's `ReturnListParams`)."""
        records = _filtered(self.world.list(SYSTEM, "return"), params)
        if params.get("order_id"):
            records = [r for r in records if str(r["data"].get("order_id")) == params["order_id"]]
        limit, offset = _limit_offset(params)
        return 200, {
            "returns": _window(records, params),
            "total_count": len(records),
            "limit": limit,
            "offset": offset,
        }

    def get_return(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        return 200, {"return": self._load("return", path["id"])}

    def return_history(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        """``Returns.getHistory``: ``{history: [{id, return_id, action, from_status, to_status, …}]}``."""
        return 200, {"history": self._load("return", path["id"]).get("history", [])}

    def update_return(self, path, params, body: Any) -> tuple[int, dict[str, Any]]:
        changes = _require_object(body)
        if "status" in changes:
            raise StateSetError(400, "validation_error", "status changes go through the action endpoints")
        with self.world.tx():
            record = self._load("return", path["id"])
            if "items" in changes:
                order = self._load("order", str(record["data"].get("order_id")))
                changes["items"] = _return_items(changes["items"], order)
            record["data"].update(changes)
            return 200, {"return": self._save("return", record)}

    def return_action(self, path, params, body: Any) -> tuple[int, dict[str, Any]]:
        action = path["action"]
        if action not in RETURN_ACTIONS:
            raise StateSetError(404, "not_found", f"unknown return action {action}")
        payload = {} if body is None else _require_object(body)
        with self.world.tx():
            record = self._load("return", path["id"])
            allowed, target = RETURN_ACTIONS[action]
            if record["status"] not in allowed:
                raise StateSetError(
                    409, "invalid_transition", f"cannot {action} a return in {record['status']}"
                )
            self._apply_return_action(record, action, payload)
            for flag in STATUS_FLAGS.values():
                record.pop(flag, None)
            record[STATUS_FLAGS[target]] = True
            self._history(record, action, record["status"], target, payload)
            record["status"] = target
            return 200, {"return": self._save("return", record)}

    def _apply_return_action(self, record: dict[str, Any], action: str, payload: dict[str, Any]) -> None:
        """The SDK's body per action and the status-specific extras of its `ReturnResponse`."""
        now = self.world.now().isoformat()
        data = record["data"]
        for field in RETURN_ACTION_FIELDS.get(action, ()):
            if not isinstance(payload.get(field), str) or not payload[field].strip():
                raise StateSetError(400, "validation_error", f"{action} requires {field}")
        if action == "approve":
            if "shipping_label" in payload:
                _require_label(payload["shipping_label"])
                data["shipping_label"] = payload["shipping_label"]
            record["shipping_label"] = data.get("shipping_label")
        elif action == "receive":
            data["received_items"] = _received_items(payload.get("items"), data["items"])
            record.update(received_at=now, received_by=payload["received_by"])
            if payload.get("condition_notes"):
                record["condition_notes"] = payload["condition_notes"]
        elif action == "inspect":
            condition = payload.get("condition")
            if condition is not None and condition not in RETURN_CONDITIONS:
                raise StateSetError(400, "validation_error", f"condition must be one of {RETURN_CONDITIONS}")
            record["quality_inspection"] = payload
        elif action == "refund":
            record["refund_details"] = data["refund"] = self._return_refund(record, payload, now)
        elif action == "reject":
            record["rejection_reason"] = payload["reason"]
        elif action == "cancel":
            record["cancellation_reason"] = payload["reason"]
        elif action == "close":
            if payload.get("reason"):
                record["closed_reason"] = payload["reason"]
        elif action == "reopen":
            record["reopen_reason"] = payload["reason"]

    def _return_refund(self, record: dict[str, Any], payload: dict[str, Any], now: str) -> dict[str, Any]:
        """`RefundDetails`: a `RefundMethod` and a numeric amount, at most the items' refund value."""
        if payload.get("method") not in REFUND_METHODS:
            raise StateSetError(400, "validation_error", f"method must be one of {', '.join(REFUND_METHODS)}")
        if "amount" not in payload:
            raise StateSetError(400, "validation_error", "refund requires amount")
        _require_amounts(payload, ("amount",), "refund")
        amount = Decimal(str(payload["amount"]))
        value = sum((Decimal(str(item["refund_amount"])) for item in record["data"]["items"]), Decimal(0))
        if amount <= 0 or amount > value:
            raise StateSetError(
                400, "validation_error", f"refund amount {amount} exceeds the items' refund value {value}"
            )
        return {**payload, "processed_at": now, "transaction_id": f"txn_{uuid.uuid4().hex[:12]}"}

    def _history(
        self,
        record: dict[str, Any],
        action: str,
        from_status: str | None,
        to_status: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        record.setdefault("history", []).append(
            {
                "id": f"hist_{uuid.uuid4().hex[:12]}",
                "return_id": record["id"],
                "action": action,
                "from_status": from_status,
                "to_status": to_status,
                "actor_type": "user",
                "metadata": details or {},
                "created_at": self.world.now().isoformat(),
            }
        )

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


def _return_items(items: Any, order: dict[str, Any]) -> list[dict[str, Any]]:
    """The SDK's `ReturnItem`s: a product of the order, a positive integer quantity (at most the
    order's), a `ReturnReason`, an optional `ReturnCondition` and a numeric ``refund_amount`` ≥ 0."""
    if not isinstance(items, list) or not items:
        raise StateSetError(400, "validation_error", "items must be a non-empty list")
    ordered: dict[str, int] = {}
    for line in order["data"].get("items") or []:
        ordered[str(line.get("product_id"))] = ordered.get(str(line.get("product_id")), 0) + int(
            line["quantity"]
        )
    asked: dict[str, int] = {}
    for item in items:
        if not isinstance(item, dict):
            raise StateSetError(400, "validation_error", "each item must be an object")
        product, quantity = str(item.get("product_id") or ""), item.get("quantity")
        if product not in ordered:
            raise StateSetError(400, "validation_error", f"product_id {product!r} is not on the order")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise StateSetError(400, "validation_error", "each item needs a positive integer quantity")
        asked[product] = asked.get(product, 0) + quantity
        if asked[product] > ordered[product]:
            raise StateSetError(400, "validation_error", f"more {product} returned than ordered")
        if item.get("reason") not in RETURN_REASONS:
            raise StateSetError(400, "validation_error", f"reason must be one of {', '.join(RETURN_REASONS)}")
        if item.get("condition") is not None and item["condition"] not in RETURN_CONDITIONS:
            raise StateSetError(400, "validation_error", f"condition must be one of {RETURN_CONDITIONS}")
        if "refund_amount" not in item:
            raise StateSetError(400, "validation_error", "each item needs refund_amount")
        _require_amounts(item, ("refund_amount", "restocking_fee"), "items[]")
        if item["refund_amount"] < 0:
            raise StateSetError(400, "validation_error", "refund_amount cannot be negative")
    return [dict(item) for item in items]


def _received_items(items: Any, returned: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What came back (sandbox extension of ``receive``): products of the return, each at most the
    quantity returned, with a `ReturnCondition`. No ``items``: everything came back."""
    if items is None:
        return [{"product_id": i["product_id"], "quantity": i["quantity"]} for i in returned]
    if not isinstance(items, list) or not items:
        raise StateSetError(400, "validation_error", "items must be a non-empty list")
    expected: dict[str, int] = {}
    for item in returned:
        expected[str(item["product_id"])] = expected.get(str(item["product_id"]), 0) + int(item["quantity"])
    got: dict[str, int] = {}
    for item in items:
        product, quantity = str((item or {}).get("product_id") or ""), (item or {}).get("quantity")
        if product not in expected:
            raise StateSetError(400, "validation_error", f"product_id {product!r} is not on the return")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise StateSetError(400, "validation_error", "each item needs a positive integer quantity")
        got[product] = got.get(product, 0) + quantity
        if got[product] > expected[product]:
            raise StateSetError(400, "validation_error", f"more {product} received than returned")
        if item.get("condition") is not None and item["condition"] not in RETURN_CONDITIONS:
            raise StateSetError(400, "validation_error", f"condition must be one of {RETURN_CONDITIONS}")
    return [dict(item) for item in items]


def _require_label(label: Any) -> None:
    """The SDK's `ShippingLabel`: carrier, tracking_number, label_url (text) and a numeric cost."""
    if not isinstance(label, dict):
        raise StateSetError(400, "validation_error", "shipping_label must be an object")
    for field in ("carrier", "tracking_number", "label_url"):
        if not isinstance(label.get(field), str) or not label[field]:
            raise StateSetError(400, "validation_error", f"shipping_label.{field} is required")
    if "cost" not in label:
        raise StateSetError(400, "validation_error", "shipping_label.cost is required")
    _require_amounts(label, ("cost",), "shipping_label")


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
