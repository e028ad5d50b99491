"""The StateSet fake: orders and returns as the stateset-node SDK sees them, for the sandbox.

Follows ``shared/docs/api/stateset.md``: Bearer auth, ``X-Request-ID`` echoed, the envelope
``{id, object, status, created_at, updated_at, data}`` with uppercase ``OrderStatus`` values, list
envelope ``{data, total, limit, offset}``, ``PUT orders/{id}`` for updates (PATCH -> 405), state
changes only through action sub-resources, errors as ``{"error": {"code", "message"}}``.

Sandbox choices:

- ``POST orders`` takes the order data at the top level (as the SDK sends it); ``items`` must be a
  non-empty list with positive quantities. New orders are ``PENDING`` (or ``DRAFT`` if asked).
- ``GET orders/search?external_id=`` matches ``data.metadata.external_id``.
- Transitions: confirm (DRAFT/PENDING), process (PENDING/CONFIRMED), ship (PENDING..PACKING, or
  SHIPPED again), deliver (SHIPPED/IN_TRANSIT/OUT_FOR_DELIVERY), cancel (before SHIPPED), return
  (SHIPPED..DELIVERED), refund (CANCELLED/DELIVERED/RETURNED); anything else is 409.
- ``ship`` takes ``{carrier, tracking_number, tracking_url?, method?}`` (flat or under
  ``shipping_details``). Shipping an order that is already SHIPPED with a tracking number it already
  carries changes nothing (200); with a new tracking number it appends another shipment to
  ``data.shipments`` (a split shipment) while ``data.shipping_details`` keeps the first one.
- Returns: ``RET-…`` ids and generated ``rma_number``; approve / receive / inspect / refund / reject /
  cancel move through ``ReturnStatus`` (refund ends in COMPLETED).
- Rate limit off by default; ``POST /_sandbox/stateset/limits {"requests_per_second": N,
  "retry_after_seconds": S}`` turns it on (429 with ``Retry-After``).
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.base import SystemSandbox
from mienne_ops.sandbox.catalog import Catalog
from mienne_ops.sandbox.limits import SlidingWindowLimiter

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
    "ship": ((*BEFORE_SHIPPING, "SHIPPED"), "SHIPPED"),
    "deliver": (IN_CARRIER_HANDS, "DELIVERED"),
    "cancel": (("DRAFT", *BEFORE_SHIPPING), "CANCELLED"),
    "return": ((*IN_CARRIER_HANDS, "DELIVERED"), "RETURNED"),
    "refund": (("CANCELLED", "DELIVERED", "RETURNED"), "REFUNDED"),
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
        orders = self.world.list(SYSTEM, "order")
        if params.get("status"):
            orders = [o for o in orders if o["status"] == params["status"].upper()]
        return 200, _page(orders, params)

    def search_orders(self, path, params, body=None) -> tuple[int, dict[str, Any]]:
        external_id = params.get("external_id")
        if not external_id:
            raise StateSetError(400, "validation_error", "external_id is required")
        orders = [
            o
            for o in self.world.list(SYSTEM, "order")
            if str((o["data"].get("metadata") or {}).get("external_id")) == external_id
        ]
        return 200, _page(orders, params)

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
            order["status"] = target
            return 200, self._save("order", order)

    def _ship(self, order: dict[str, Any], payload: dict[str, Any]) -> None:
        nested = payload.get("shipping_details")
        details: dict[str, Any] = nested if isinstance(nested, dict) else payload
        carrier, tracking = details.get("carrier"), details.get("tracking_number")
        if not carrier or not tracking:
            raise StateSetError(400, "validation_error", "carrier and tracking_number are required to ship")
        data = order["data"]
        if any(s["tracking_number"] == tracking for s in data["shipments"]):
            return  # the same shipment again: nothing changes
        shipment = {
            "carrier": carrier,
            "method": details.get("method"),
            "tracking_number": tracking,
            "tracking_url": details.get("tracking_url"),
            "shipped_at": self.world.now().isoformat(),
        }
        data["shipments"].append(shipment)
        data.setdefault("shipping_details", None)
        if not data["shipping_details"] or not data["shipping_details"].get("tracking_number"):
            data["shipping_details"] = {**(data["shipping_details"] or {}), **shipment}
        data["fulfillment_events"].append(
            self._event("shipped", {"tracking_number": tracking, "carrier": carrier})
        )

    def _record_action(self, order: dict[str, Any], action: str, payload: dict[str, Any]) -> None:
        if action == "cancel":
            order["cancellation_reason"] = payload.get("reason")
        elif action == "return":
            order["return_details"] = payload or None
        elif action == "refund":
            order["refund_details"] = payload or None
        order["data"]["fulfillment_events"].append(self._event(action, payload))

    def _event(self, event_type: str, details: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"evt_{uuid.uuid4().hex[:16]}",
            "type": event_type,
            "details": details,
            "created_at": self.world.now().isoformat(),
        }

    def add_fulfillment_event(self, path, params, body: Any) -> tuple[int, dict[str, Any]]:
        event = _require_object(body)
        event_type = event.get("type") or event.get("event_type")
        if not event_type:
            raise StateSetError(400, "validation_error", "type is required")
        with self.world.tx():
            order = self._load("order", path["id"])
            record = {**self._event(str(event_type), {}), **event, "type": str(event_type)}
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
        return 200, _page(self.world.list(SYSTEM, "return"), params)

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
        body = await _json_payload(request) or {}
        self.throttle.configure(
            float(body.get("requests_per_second") or 0), float(body.get("retry_after_seconds", 1.0))
        )
        return JSONResponse(
            {
                "requests_per_second": self.throttle.requests_per_second,
                "retry_after_seconds": self.throttle.retry_after_seconds,
            }
        )


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise StateSetError(400, "validation_error", "a JSON object body is required")
    return dict(body)


def _page(records: list[dict[str, Any]], params) -> dict[str, Any]:
    try:
        limit = min(int(params.get("limit", 20)), 100)
        offset = int(params.get("offset", 0))
    except ValueError as error:
        raise StateSetError(400, "validation_error", "limit and offset must be integers") from error
    return {"data": records[offset : offset + limit], "total": len(records), "limit": limit, "offset": offset}


async def _json_payload(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as error:
        raise StateSetError(400, "invalid_json", "the body is not valid JSON") from error
