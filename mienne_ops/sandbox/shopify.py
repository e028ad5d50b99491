"""The Shopify fake: the Admin GraphQL API, a control plane to inject orders, and signed webhooks.

API (mounted under ``/shopify``): ``POST /admin/api/{version}/graphql.json`` with
``X-Shopify-Access-Token``; documents execute against Shopify's real schema (`shopify_graphql`)
over orders stored in REST shape (`shopify_orders`); every answer carries ``extensions.cost`` from a
leaky bucket and ``X-Request-Id``; a document priced over 1,000 points answers ``MAX_COST_EXCEEDED``
and one over the bucket ``THROTTLED`` (both HTTP 200, no ``data``).

Control plane (a contract used by outside harnesses), under ``/_sandbox/shopify``:

- ``POST /orders``               one REST/webhook-shape order (or ``{"order": {...}}``) -> 201
  ``{"id", "name", "admin_graphql_api_id"}``; fires orders/create, orders/paid, orders/updated
- ``POST /orders/{id}/cancel``   cancel now, as the merchant does in the admin (``{"reason": "customer",
  "refund": true, "restock": false}`` all optional); fires refunds/create (when money goes back),
  orders/cancelled, orders/updated
- ``POST /orders/{id}/refunds``  a merchant's admin refund ``{"lines": [{"sku", "quantity"}], "shipping":
  "5.00", "note", "restock", "amount"}`` -> 201 ``{"refund"}``; the refundCreate path, fires refunds/create
- ``POST /orders/{id}/return_requests``  a customer's return request ``{"lines": [{"sku", "quantity",
  "reason"}], "customer_note"}`` -> 201 ``{"return"}`` (REQUESTED); fires returns/request
- ``POST /fulfillments/{id}/delivered``  ``{"at": iso}``: the carrier delivered it (deliveredAt)
- ``POST /fulfillments/{id}/backdate``   ``{"created_at": iso}``: it was fulfilled then (return windows)
- ``POST /products/tags``        ``{"sku", "tags": [...]}``: the product's tags (e.g. final-sale)
  (the four above: `shopify_returns`)
- ``POST /jobs``                 ``{"cancel_job_requests": n}``: an orderCancel job is done after n later
  API requests (default 1; 0 = done at once)
- ``POST /limits``               ``{"plan": "standard"}`` (advanced, plus, enterprise) and/or
  ``{"restore_rate": 100, "bucket_size": 2000}``; answers the bucket and ``throttled`` (requests
  refused THROTTLED since the reset); an empty body only reads them
- ``POST /webhooks/redeliver``   resend every logged delivery (same event ids)
- ``GET  /webhooks/log``         the delivery log

Python helpers for the in-process traffic simulator: `Sandbox.inject_order`, `Sandbox.cancel_order`.
Webhooks are delivered by a background thread, signed with the app secret, with the FaultBook's
drop / duplicate / reorder / delay faults and compressed retries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
from graphql import (
    ExecutionResult,
    GraphQLError,
    OperationDefinitionNode,
    execute,
    parse,
    validate,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.base import SystemSandbox
from mienne_ops.sandbox.catalog import Catalog, build_catalog
from mienne_ops.sandbox.shopify_bulk import BulkOperations, BulkResolvers
from mienne_ops.sandbox.shopify_fulfillment import FulfillmentResolvers
from mienne_ops.sandbox.shopify_graphql import (
    IDEMPOTENT_MUTATIONS,
    MAX_QUERY_COST,
    PLANS,
    ActualCost,
    CostBucket,
    admin_schema,
    all_match,
    connection,
    fragments_of,
    gid,
    max_cost_exceeded,
    parse_gid,
    parse_search,
    requested_cost,
    resolve_field,
)
from mienne_ops.sandbox.shopify_inventory import InventoryResolvers, ShopifyInventory
from mienne_ops.sandbox.shopify_money_desk import MoneyDesk, RefundResolvers
from mienne_ops.sandbox.shopify_orders import (
    UserErrors,
    default_transactions,
    fill_line_item,
    fill_totals,
    fresh_copy,
    fulfillment_node,
    initial_fulfillment_orders,
    location_node,
    money_set,
    open_due_schedules,
    order_matches,
    order_node,
    order_risk,
    public_order,
    recompute_current_totals,
    refresh_actions,
    shop_time,
    tag_list,
)
from mienne_ops.sandbox.shopify_refunds import ensure_money_records
from mienne_ops.sandbox.shopify_returns import ReturnDesk, ReturnResolvers
from mienne_ops.sandbox.webhook_queue import DeliveryQueue

log = logging.getLogger("mienne_ops.sandbox.shopify")

SYSTEM = "shopify"
# `FulfillmentOrderRequestStatus` (shopify.md §3.3): set by fulfillment services, forced by tests.
FO_REQUEST_STATUSES = (
    "unsubmitted",
    "submitted",
    "accepted",
    "rejected",
    "cancellation_requested",
    "cancellation_accepted",
    "cancellation_rejected",
    "closed",
)
SUPPORTED_VERSIONS = ("2025-10", "2026-01", "2026-04", "2026-07", "2026-10")
UNAUTHORIZED = "[API] Invalid API key or access token (unrecognized login or wrong password)"
WEBHOOK_ATTEMPTS = 8
CONSECUTIVE_FAILURES_BEFORE_REMOVAL = 8
WEBHOOK_BACKOFF_SECONDS = 0.05  # compressed: real Shopify spreads 8 tries over 4 hours
SORT_FIELDS = {"UPDATED_AT": "updated_at", "CREATED_AT": "created_at", "ID": "id"}
# Resource names that contain an underscore, so ORDERS_CREATE -> orders/create works for them too.
MULTIWORD_RESOURCES = (
    "bulk_operations",
    "fulfillment_orders",
    "fulfillment_events",
    "fulfillment_holds",
    "inventory_levels",
    "inventory_items",
    "draft_orders",
    "order_transactions",
    "reverse_deliveries",
    "reverse_fulfillment_orders",
)


def serving_version(requested: str) -> str:
    if requested == "unstable" or requested in SUPPORTED_VERSIONS:
        return requested
    return SUPPORTED_VERSIONS[0]


def topic_name(enum_value: str) -> str:
    """WebhookSubscriptionTopic enum -> REST topic (``ORDERS_PAID`` -> ``orders/paid``)."""
    lower = enum_value.lower()
    for resource in MULTIWORD_RESOURCES:
        if lower.startswith(resource + "_"):
            return f"{resource}/{lower[len(resource) + 1 :]}"
    resource, _, action = lower.partition("_")
    return f"{resource}/{action}"


def topic_enum(topic: str) -> str:
    return topic.replace("/", "_").upper()


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass(order=True)
class Delivery:
    due: float
    seq: int
    topic: str = field(compare=False)
    uri: str = field(compare=False)
    body: bytes = field(compare=False)
    event_id: str = field(compare=False)
    triggered_at: str = field(compare=False)
    subscription_id: int = field(compare=False)
    attempt: int = field(default=0, compare=False)


class Sandbox(ReturnDesk, MoneyDesk, SystemSandbox):
    name = SYSTEM

    def __init__(self, world, faults) -> None:
        super().__init__(world, faults)
        self.catalog: Catalog = build_catalog()
        self.bucket = CostBucket()
        self.deliveries: DeliveryQueue[Delivery] = DeliveryQueue(
            "shopify-webhooks", self._deliver, timeout_seconds=5.0
        )
        self._failures: dict[int, int] = {}
        self.inventory = ShopifyInventory(world)  # flow E: items, levels, inventorySetQuantities
        self.bulk = BulkOperations(world, lambda: Resolvers(self), self.emit)  # bulk query operations

    # -- SystemSandbox --------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/admin/api/{version}/graphql.json", self._graphql, methods=["POST"]),
            *self.bulk.routes(),
        ]

    def control_routes(self) -> list[BaseRoute]:
        return [
            Route("/orders", self._inject_route, methods=["POST"]),
            Route("/orders/{order_id:int}/cancel", self._cancel_route, methods=["POST"]),
            Route("/orders/{order_id:int}/refunds", self._refund_route, methods=["POST"]),
            Route("/jobs", self._jobs_route, methods=["POST"]),
            Route("/fulfillment_orders/{fo_id:int}/status", self._fo_status_route, methods=["POST"]),
            Route("/orders/{order_id:int}/edit", self._edit_route, methods=["POST"]),
            Route("/limits", self._limits_route, methods=["POST"]),
            Route("/webhooks/redeliver", self._redeliver_route, methods=["POST"]),
            Route("/webhooks/log", self._log_route, methods=["GET"]),
            *self.return_control_routes(),
            *self.inventory.control_routes(),
            *self.bulk.control_routes(),
        ]

    def reset(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.world.clear_system(SYSTEM)
        self.bucket.configure(*PLANS["standard"])
        self.bucket.throttled = 0
        self.cancel_job_requests = 1
        self.inventory.reset(catalog)
        self.bulk.reset()
        self.deliveries.clear()
        self._failures.clear()

    def state(self) -> dict[str, Any]:
        orders = []
        for order in self.world.list(SYSTEM, "order"):
            view = public_order(order)
            # For assertions: tags as a list (the REST comma string stays in `tags_string`).
            view["tags"], view["tags_string"] = tag_list(order.get("tags")), order.get("tags") or ""
            view["fulfillment_orders"] = order["_fulfillment_orders"]
            view["transactions"] = order.get("_transactions") or []
            orders.append(view)
        log_count = self.deliveries.logged()
        return {
            "orders": orders,
            "webhook_subscriptions": self.world.list(SYSTEM, "webhook_subscription"),
            "webhook_deliveries": log_count,
            "webhooks_pending": self.pending_webhooks(),
            "inventory": self.inventory.state(),
            "bulk_operations": self.bulk.all(),
            # Refunds are on their orders (`refunds`, `transactions`); orderCancel's jobs and staff notes:
            "jobs": self.world.list(SYSTEM, "job"),
            "cancel_staff_notes": self.world.list(SYSTEM, "cancel_staff_note"),
            # Returns with their reverse fulfillment orders, deliveries and dispositions (shopify_returns).
            "returns": self.world.list(SYSTEM, "return"),
        }

    def credentials(self) -> dict[str, Any]:
        return dict(credentials.SHOPIFY)

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return JSONResponse(
                {
                    "errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume "
                    "uninterrupted service."
                },
                status_code=429,
                headers={"Retry-After": "1.0", "X-Request-Id": str(uuid.uuid4())},
            )
        return JSONResponse(
            {"errors": "Internal Server Error"},
            status_code=status,
            headers={"X-Request-Id": str(uuid.uuid4())},
        )

    def start(self) -> None:
        self.deliveries.start()

    def stop(self) -> None:
        self.deliveries.stop()

    # -- the GraphQL endpoint -------------------------------------------------------------------
    async def _graphql(self, request: Request) -> Response:
        version = serving_version(request.path_params["version"])
        headers = {"X-Request-Id": str(uuid.uuid4()), "X-Shopify-API-Version": version}
        token = request.headers.get("X-Shopify-Access-Token", "")
        if not hmac.compare_digest(token, credentials.SHOPIFY["access_token"]):
            return JSONResponse({"errors": UNAUTHORIZED}, status_code=401, headers=headers)
        try:
            body = json.loads(await request.body())
            query = body["query"]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"errors": {"query": "Required parameter missing or invalid"}}, 400, headers)
        # Execution holds the world lock and may sleep on I/O, so keep it off the event loop.
        origin = f"{request.url.scheme}://{request.url.netloc}"  # bulk result URLs point back here
        debug = request.headers.get("Shopify-GraphQL-Cost-Debug", "").strip() == "1"
        result = await run_in_threadpool(
            self.run, query, body.get("variables"), body.get("operationName"), version, origin, debug
        )
        return JSONResponse(result, 200, headers)

    def run(
        self,
        query: str,
        variables: dict | None,
        operation_name: str | None,
        version: str,
        origin: str = "http://127.0.0.1",
        cost_debug: bool = False,
    ) -> dict:
        """Execute one document the way Shopify would; returns the response body.

        ``cost_debug`` (the ``Shopify-GraphQL-Cost-Debug: 1`` header) adds the per-field breakdown of
        the requested cost under ``extensions.cost.fields``.
        """
        schema = admin_schema()
        try:
            document = parse(query)
        except GraphQLError as error:
            return {"errors": [error.formatted]}
        errors = validate(schema, document)
        if errors:
            return {"errors": [e.formatted for e in errors]}
        operation = _pick_operation(document, operation_name)
        if operation is None:
            return {"errors": [{"message": "No operation named " + str(operation_name)}]}
        missing = _missing_idempotency(operation, version)
        if missing:
            return {
                "errors": [
                    {
                        "message": f"The @idempotent directive is required for {missing}.",
                        "extensions": {"code": "BAD_REQUEST"},
                    }
                ]
            }
        breakdown: list[dict[str, Any]] | None = [] if cost_debug else None
        cost = requested_cost(schema, operation, fragments_of(document), variables or {}, breakdown)
        if cost > MAX_QUERY_COST:
            return max_cost_exceeded(cost)  # priced before execution: nothing runs, nothing is charged
        if not self.bucket.take(cost):
            return {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {
                            "code": "THROTTLED",
                            "documentation": "https://shopify.dev/api/usage/rate-limits",
                        },
                    }
                ],
                "extensions": {"cost": self._cost(cost, None)},
            }
        self.run_due_jobs()  # an orderCancel job finishes between requests, as a background job does
        root = Resolvers(self)
        root.version = version
        root.origin = origin
        priced = ActualCost()
        with self.world.tx():
            result = execute(
                schema,
                document,
                root_value=root,
                variable_values=variables,
                operation_name=operation_name,
                field_resolver=resolve_field,
                middleware=[priced],
            )
        assert isinstance(result, ExecutionResult)  # no async resolvers, so never an awaitable
        # Shopify charges for what the document returned and refunds the rest of the reservation
        # once it has run (requested - actual).
        actual = min(cost, priced.total())
        self.bucket.refund(cost - actual)
        body: dict[str, Any] = {}
        if result.errors:
            body["errors"] = [e.formatted for e in result.errors]
        body["data"] = result.data
        body["extensions"] = {"cost": self._cost(cost, actual)}
        if breakdown is not None:
            body["extensions"]["cost"]["fields"] = breakdown
        root.flush_webhooks()
        return body

    def _cost(self, requested: int, actual: int | None) -> dict[str, Any]:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": self.bucket.status(),
        }

    # -- orders: storage ------------------------------------------------------------------------
    def _new_id(self, kind: str, start: int) -> int:
        return self.world.next_id(f"{SYSTEM}:{kind}", start)

    def inject_order(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Create an order from a REST/webhook-shape payload (missing fields filled); fire webhooks."""
        events: list[tuple[str, dict]] = []
        with self.world.tx():
            order = self._normalise(fresh_copy(payload))
            self.world.put(SYSTEM, "order", order["id"], order)
            for fo in order["_fulfillment_orders"]:
                self.world.put(SYSTEM, "fo_index", fo["id"], {"order_id": order["id"]})
            self.inventory.record_sale(order)  # Shopify lowers `available` when an order is placed
            events.append(("orders/create", order))
            if order["financial_status"] == "paid":
                events.append(("orders/paid", order))
            events.append(("orders/updated", order))
        for topic, doc in events:
            self.emit(topic, public_order(doc))
        return {
            "id": order["id"],
            "name": order["name"],
            "admin_graphql_api_id": order["admin_graphql_api_id"],
        }

    def _normalise(self, order: dict[str, Any]) -> dict[str, Any]:
        now = shop_time(self.world.now())
        given_id = order.get("id")
        if not given_id or self.world.get(SYSTEM, "order", given_id) is not None:
            # A repeated payload (e.g. the same fixture posted twice) becomes a new order.
            if given_id:
                order.pop("name", None)
                for line in order.get("line_items", []):
                    line.pop("id", None)
            order["id"] = self._new_id("order", 5_000_000_000_000_000_001)
        order["admin_graphql_api_id"] = gid("Order", order["id"])
        if not order.get("name") or self.world.get(SYSTEM, "order_name", order["name"]) is not None:
            order["name"], order["order_number"], order["number"] = self._new_name()
        self.world.put(SYSTEM, "order_name", order["name"], {"id": order["id"]})
        order.setdefault("created_at", now)
        order.setdefault("processed_at", order["created_at"])
        order["updated_at"] = now
        order.setdefault("currency", "USD")
        order.setdefault("presentment_currency", order["currency"])
        order.setdefault("financial_status", "paid")
        order.setdefault("fulfillment_status", None)
        order.setdefault("cancelled_at", None)
        order.setdefault("cancel_reason", None)
        order.setdefault("closed_at", None)
        order.setdefault("taxes_included", False)
        order.setdefault("test", False)
        order.setdefault("confirmed", True)
        order.setdefault("payment_gateway_names", ["shopify_payments"])
        order.setdefault("shipping_lines", [])
        order.setdefault("discount_codes", [])
        order.setdefault("tax_lines", [])
        order.setdefault("fulfillments", [])
        order.setdefault("refunds", [])
        order.setdefault("source_name", "web")
        order["_risk"] = order_risk(order.pop("risk", None))
        order["tags"] = ", ".join(tag_list(order.get("tags")))
        for line in order.setdefault("line_items", []):
            line.setdefault("id", self._new_id("line_item", 1_400_000_000_000_000_001))
            line["admin_graphql_api_id"] = gid("LineItem", line["id"])
            fill_line_item(line, self.catalog, order["currency"])
        for shipping in order["shipping_lines"]:
            shipping.setdefault("id", self._new_id("shipping_line", 4_000_000_000_000_000_001))
            shipping.setdefault("price_set", money_set(shipping.get("price"), order["currency"]))
        fill_totals(order)
        order["_transactions"] = default_transactions(
            order,
            order.pop("transactions", None),
            lambda: self._new_id("transaction", 7_000_000_000_000_000_001),
        )
        order["_fulfillment_orders"] = initial_fulfillment_orders(
            order, self.catalog, self.world.now(), self._fo_id
        )
        return order

    def _new_name(self) -> tuple[str, int, int]:
        """The next free order name ``#1001``, ``#1002``, … (skipping names taken by payloads)."""
        while True:
            number = self._new_id("order_number", 1001)
            name = f"#{number}"
            if self.world.get(SYSTEM, "order_name", name) is None:
                return name, number, number - 1000

    def _fo_id(self, kind: str) -> int:
        start = 6_000_000_000_000_000_001 if kind == "fulfillment_order" else 6_500_000_000_000_000_001
        return self._new_id(kind, start)

    def load_order(self, order_id: int) -> dict[str, Any] | None:
        """One stored order; SCHEDULED fulfillment orders whose time has come are opened on the way."""
        order = self.world.get(SYSTEM, "order", order_id)
        if order is None:
            return None
        derived = ensure_money_records(order, lambda: self.money_id("transaction"))
        if open_due_schedules(order, self.world.now()) or derived:
            self.world.put(SYSTEM, "order", order_id, order)
        return order

    def save_order(self, order: dict[str, Any]) -> None:
        order["updated_at"] = shop_time(self.world.now())
        self.world.put(SYSTEM, "order", order["id"], order)

    def edit_order(
        self,
        order_id: int,
        quantities: dict[int, int],
        added: list[dict[str, Any]],
        shipping_address: dict[str, Any] | None = None,
    ) -> None:
        """A merchant's committed order edit (what `orderEditBegin` … `orderEditCommit` leave behind),
        or a corrected shipping address (what `orderUpdate(input: {shippingAddress})` does).

        Quantities are the lines' new current quantities (never above what was ordered, never below
        what was fulfilled); added lines are new line items. Shopify keeps `quantity` as ordered and
        moves `current_quantity`, the unfulfilled quantity and the `current_*` totals, then sends
        `orders/updated` (and `orders/edited`, which this project does not subscribe to).
        """
        with self.world.tx():
            order = self.load_order(order_id)
            if order is None:
                raise UserErrors(["id"], "Order does not exist", "NOT_FOUND")
            if order.get("cancelled_at"):
                raise UserErrors(["id"], "The order can't be edited: it is cancelled", "INVALID")
            for line in order["line_items"]:
                if line["id"] not in quantities:
                    continue
                fulfilled = line["current_quantity"] - line["fulfillable_quantity"]
                new = quantities[line["id"]]
                if not fulfilled <= new <= line["quantity"]:
                    raise UserErrors(["quantity"], f"Quantity must be between {fulfilled} and "
                                     f"{line['quantity']}", "INVALID")  # fmt: skip
                line["current_quantity"] = new
                line["fulfillable_quantity"] = new - fulfilled
            if shipping_address:
                order["shipping_address"] = {**(order.get("shipping_address") or {}), **shipping_address}
                order["updated_at"] = shop_time(self.world.now())
            for payload in added:
                line = dict(payload)
                line["id"] = self._new_id("line_item", 1_400_000_000_000_000_001)
                line["admin_graphql_api_id"] = gid("LineItem", line["id"])
                order["line_items"].append(fill_line_item(line, self.catalog, order["currency"]))
            recompute_current_totals(order)
            self._edit_fulfillment_orders(order)
            self.save_order(order)
        if quantities or added:  # an address change alone is an update, not an order edit
            self.emit("orders/edited", {"order_edit": {"order_id": order["id"]}})
        self.emit("orders/updated", public_order(order))

    def _edit_fulfillment_orders(self, order: dict[str, Any]) -> None:
        """Open fulfillment orders follow the edit: their lines hold what is left to fulfil."""
        open_fos = [fo for fo in order["_fulfillment_orders"] if fo["status"] not in ("closed", "cancelled")]
        placed: set[int] = set()
        for fo in open_fos:
            for fo_line in fo["line_items"]:
                line = next(li for li in order["line_items"] if li["id"] == fo_line["line_item_id"])
                fo_line["quantity"] = fo_line["fulfillable_quantity"] = line["fulfillable_quantity"]
                placed.add(line["id"])
        new_lines = [
            li for li in order["line_items"] if li["id"] not in placed and li.get("requires_shipping", True)
        ]
        if open_fos and new_lines:  # an added line joins the first open fulfillment order
            fo = open_fos[0]
            for line in new_lines:
                if any(fo_line["line_item_id"] == line["id"] for other in order["_fulfillment_orders"]
                       for fo_line in other["line_items"]):  # fmt: skip
                    continue
                fo["line_items"].append(
                    {
                        "id": self._new_id("fo_line", 6_500_000_000_000_000_001),
                        "fulfillment_order_id": fo["id"],
                        "line_item_id": line["id"],
                        "variant_id": line.get("variant_id"),
                        "quantity": line["fulfillable_quantity"],
                        "fulfillable_quantity": line["fulfillable_quantity"],
                    }
                )

    async def _edit_route(self, request: Request) -> JSONResponse:
        body = json.loads(await request.body() or b"{}")
        quantities = {int(line["id"]): int(line["quantity"]) for line in body.get("line_items", [])}
        try:
            self.edit_order(
                request.path_params["order_id"], quantities, body.get("add", []), body.get("shipping_address")
            )
        except UserErrors as error:
            status = 404 if error.errors[0]["code"] == "NOT_FOUND" else 422
            return JSONResponse({"errors": {"base": [str(error)]}}, status_code=status)
        return JSONResponse({"order": public_order(self.load_order(request.path_params["order_id"]) or {})})

    # -- webhooks -------------------------------------------------------------------------------
    def emit(self, topic: str, payload: dict[str, Any]) -> None:
        """Queue one event for every subscription to ``topic`` (faults applied at enqueue time)."""
        subscriptions = [s for s in self.world.list(SYSTEM, "webhook_subscription") if s["topic"] == topic]
        if not subscriptions:
            return
        faults = self.faults.get(SYSTEM)
        body = json.dumps(payload).encode()
        event_id = str(uuid.uuid4())
        triggered_at = self.world.now().isoformat()
        for sub in subscriptions:
            if self.faults.chance(faults.webhook_drop_rate):
                self.deliveries.record({"topic": topic, "event_id": event_id, "outcome": "dropped"})
                continue
            copies = 2 if self.faults.chance(faults.webhook_duplicate_rate) else 1
            for _ in range(copies):
                due = time.monotonic() + faults.webhook_delay_ms / 1000
                if faults.webhook_reorder:
                    due += random.uniform(0, 0.3)
                self.deliveries.push(
                    Delivery(
                        due,
                        self.deliveries.next_seq(),
                        topic,
                        sub["uri"],
                        body,
                        event_id,
                        triggered_at,
                        sub["id"],
                    )
                )

    def pending_webhooks(self) -> int:
        return self.deliveries.pending()

    def _deliver(self, client: httpx.Client, delivery: Delivery) -> None:
        if self.world.get(SYSTEM, "webhook_subscription", delivery.subscription_id) is None:
            # The subscription was removed (by the app, or after 8 consecutive failures): no more tries.
            self.deliveries.record(
                {"topic": delivery.topic, "event_id": delivery.event_id, "outcome": "unsubscribed"}
            )
            return
        webhook_id = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": delivery.topic,
            "X-Shopify-Hmac-Sha256": sign(delivery.body, credentials.SHOPIFY["api_secret"]),
            "X-Shopify-Shop-Domain": credentials.SHOPIFY["shop_domain"],
            "X-Shopify-API-Version": credentials.SHOPIFY["api_version"],
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Event-Id": delivery.event_id,
            "X-Shopify-Triggered-At": delivery.triggered_at,
        }
        status: int | None = None
        reason: str | None = None
        try:
            status = client.post(delivery.uri, content=delivery.body, headers=headers).status_code
        except httpx.HTTPError as error:
            reason = type(error).__name__
        ok = status is not None and 200 <= status < 300
        self.deliveries.record(
            {
                "topic": delivery.topic,
                "event_id": delivery.event_id,
                "webhook_id": webhook_id,
                "uri": delivery.uri,
                "status": status,
                "error": reason,
                "attempt": delivery.attempt + 1,
                "outcome": "delivered" if ok else "failed",
                "body": delivery.body.decode(),
            }
        )
        if ok:
            self._failures[delivery.subscription_id] = 0  # a success ends the run of failures
            return
        if self._count_failure(delivery.subscription_id):
            return  # the subscription is gone: its pending retries are not delivered either
        if delivery.attempt + 1 < WEBHOOK_ATTEMPTS:
            delivery.attempt += 1
            self.deliveries.retry_later(delivery, WEBHOOK_BACKOFF_SECONDS * 2**delivery.attempt)

    def _count_failure(self, subscription_id: int) -> bool:
        """8 CONSECUTIVE failed deliveries (retries included, any event) remove an Admin-API
        subscription, as Shopify does (shopify.md §7.4); True when this failure removed it."""
        self._failures[subscription_id] = self._failures.get(subscription_id, 0) + 1
        if self._failures[subscription_id] < CONSECUTIVE_FAILURES_BEFORE_REMOVAL:
            return False
        self.world.delete(SYSTEM, "webhook_subscription", subscription_id)
        log.info("shopify webhook subscription %s deleted after 8 consecutive failures", subscription_id)
        return True

    # -- control routes -------------------------------------------------------------------------
    async def _inject_route(self, request: Request) -> JSONResponse:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"errors": "body must be a JSON order"}, status_code=400)
        if not isinstance(payload, dict):
            return JSONResponse({"errors": "body must be a JSON order"}, status_code=400)
        try:
            created = self.inject_order(payload)
        except ValueError as error:
            return JSONResponse({"errors": str(error)}, status_code=400)
        return JSONResponse(created, status_code=201)

    async def _fo_status_route(self, request: Request) -> JSONResponse:
        """Force a fulfillment order into a status our mutations cannot reach (INCOMPLETE and
        CANCELLED come from fulfillment-service apps and merchants), so tests can meet it; with
        ``request_status`` (e.g. ``accepted``: a fulfillment service took it on) as well."""
        body = json.loads(await request.body() or b"{}")
        status = str(body.get("status") or "").lower()
        if status not in ("open", "in_progress", "on_hold", "scheduled", "incomplete", "closed", "cancelled"):
            return JSONResponse({"errors": f"unknown status {status!r}"}, status_code=400)
        request_status = str(body.get("request_status") or "").lower() or None
        if request_status not in (None, *FO_REQUEST_STATUSES):
            return JSONResponse({"errors": f"unknown request_status {request_status!r}"}, status_code=400)
        with self.world.tx():
            index = self.world.get(SYSTEM, "fo_index", request.path_params["fo_id"])
            order = self.load_order(index["order_id"]) if index else None
            if order is None:
                return JSONResponse({"errors": "Not Found"}, status_code=404)
            fo = next(f for f in order["_fulfillment_orders"] if f["id"] == request.path_params["fo_id"])
            fo["status"] = status
            if request_status:
                fo["request_status"] = request_status
            refresh_actions(fo)
            self.save_order(order)
        return JSONResponse({"fulfillment_order": fo})

    async def _cancel_route(self, request: Request) -> JSONResponse:
        raw = await request.body()
        body = json.loads(raw) if raw else {}
        try:
            self.cancel_order(
                request.path_params["order_id"],
                body.get("reason", "customer"),
                bool(body.get("refund", True)),
                restock=bool(body.get("restock", False)),
                staff_note=body.get("staff_note"),
            )
        except UserErrors as error:
            status = 404 if error.errors[0]["code"] == "NOT_FOUND" else 422
            return JSONResponse({"errors": {"base": [str(error)]}}, status_code=status)
        order = self.load_order(request.path_params["order_id"]) or {}
        return JSONResponse({"order": public_order(order)})

    async def _refund_route(self, request: Request) -> JSONResponse:
        """A merchant's refund in the Shopify admin: ``{"lines": [{"sku", "quantity"}], "shipping":
        "5.00", "note", "restock", "amount"}`` (all optional) -> 201 ``{"refund": REST refund}``."""
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return JSONResponse({"errors": "body must be JSON"}, status_code=400)
        try:
            refund = self.admin_refund(request.path_params["order_id"], body)
        except UserErrors as error:
            status = 404 if error.errors[0].get("code") == "NOT_FOUND" else 422
            fields = {".".join(e["field"] or ["base"]): [e["message"]] for e in error.errors}
            return JSONResponse({"errors": fields}, status_code=status)
        return JSONResponse({"refund": refund}, status_code=201)

    async def _jobs_route(self, request: Request) -> JSONResponse:
        """``{"cancel_job_requests": n}``: an orderCancel job is done after n later API requests
        (0 = done in the mutation's own answer; default 1)."""
        body = json.loads(await request.body() or b"{}")
        self.cancel_job_requests = max(0, int(body.get("cancel_job_requests", self.cancel_job_requests)))
        return JSONResponse({"cancel_job_requests": self.cancel_job_requests})

    async def _limits_route(self, request: Request) -> JSONResponse:
        """``{"plan": "standard"|"advanced"|"plus"|"enterprise"}`` and/or explicit numbers.

        A plan sets Shopify's restore rate and bucket (`PLANS`); ``bucket_size`` / ``restore_rate``
        given alongside override it (outside harnesses send only those two).
        """
        raw = await request.body()
        body = json.loads(raw) if raw else {}
        maximum, rate = self.bucket.maximum, self.bucket.restore_rate
        if "plan" in body:
            plan = str(body["plan"]).lower()
            if plan not in PLANS:
                return JSONResponse({"errors": f"unknown plan {body['plan']!r}; one of {sorted(PLANS)}"}, 400)
            maximum, rate = PLANS[plan]
        if body:  # an empty body only reads the bucket (and how many requests it throttled)
            self.bucket.configure(body.get("bucket_size", maximum), body.get("restore_rate", rate))
        return JSONResponse({**self.bucket.status(), "throttled": self.bucket.throttled})

    def _redeliver_route(self, request: Request) -> JSONResponse:
        delivered = [e for e in self.deliveries.entries() if e.get("outcome") == "delivered"]
        subs = {s["uri"]: s["id"] for s in self.world.list(SYSTEM, "webhook_subscription")}
        for entry in delivered:
            self.deliveries.push(
                Delivery(
                    time.monotonic(),
                    self.deliveries.next_seq(),
                    entry["topic"],
                    entry["uri"],
                    entry["body"].encode(),
                    entry["event_id"],
                    self.world.now().isoformat(),
                    subs.get(entry["uri"], 0),
                )
            )
        return JSONResponse({"queued": len(delivered)})

    def _log_route(self, request: Request) -> JSONResponse:
        entries = [{k: v for k, v in e.items() if k != "body"} for e in self.deliveries.entries()]
        return JSONResponse({"deliveries": entries, "pending": self.pending_webhooks()})


class Resolvers(ReturnResolvers, RefundResolvers, FulfillmentResolvers, InventoryResolvers, BulkResolvers):
    """Root query and mutation fields for one request (graphql-core calls them as root methods)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.world = sandbox.world
        self.catalog = sandbox.catalog
        self._events: list[tuple[str, dict]] = []

    def flush_webhooks(self) -> None:
        for topic, payload in self._events:
            self.sandbox.emit(topic, payload)

    def _emit(self, topic: str, payload: dict[str, Any]) -> None:
        self._events.append((topic, payload))

    # -- queries --------------------------------------------------------------------------------
    def orders(self, info, query=None, sortKey="ID", reverse=False, **args) -> dict:
        terms = parse_search(query)
        orders = [o for o in self.world.list(SYSTEM, "order") if all_match(terms, partial(order_matches, o))]
        sort_field = SORT_FIELDS.get(sortKey or "ID", "id")

        def key(order):
            value = order[sort_field]
            if sort_field != "id":
                from mienne_ops.sandbox.shopify_graphql import parse_time

                moment = parse_time(value)
                if moment is None:  # the sandbox writes every stored time itself: a bad one is a bug
                    raise ValueError(f"order {order['id']}: unreadable {sort_field} {value!r}")
                value = moment.timestamp()
            return (value, order["id"])

        now = self.world.now()
        for order in orders:  # a SCHEDULED fulfillment order opens by itself once its time comes
            open_due_schedules(order, now)
            if ensure_money_records(order, lambda: self.sandbox.money_id("transaction")):
                self.world.put(SYSTEM, "order", order["id"], order)  # stored before refunds existed
        orders.sort(key=key, reverse=bool(reverse))
        return connection(
            orders,
            args,
            key=key,
            present=self.order_view,
            descending=bool(reverse),
        )

    def order(self, info, id) -> dict | None:
        number = parse_gid(id, "Order")
        order = self.sandbox.load_order(number) if number else None
        return self.order_view(order) if order else None

    def fulfillment(self, info, id) -> dict | None:
        found = self._find_fulfillment(id)
        return fulfillment_node(found[1], found[0], self.catalog) if found else None

    def nodes(self, info, ids) -> list[dict | None]:
        """``nodes(ids:)``: fulfillments here, inventory items by the inventory resolvers."""
        answered = dict(zip(ids, super().nodes(info, ids), strict=True))
        for node_id in ids:
            if answered.get(node_id) is None and parse_gid(node_id, "Fulfillment") is not None:
                found = self._find_fulfillment(node_id)
                answered[node_id] = fulfillment_node(found[1], found[0], self.catalog) if found else None
        return [answered.get(i) for i in ids]

    def _find_fulfillment(self, fulfillment_gid: str) -> tuple[dict, dict] | None:
        """(order, fulfillment) for a Fulfillment gid (a scan: only read for long orders)."""
        number = parse_gid(fulfillment_gid, "Fulfillment")
        for order in self.world.list(SYSTEM, "order") if number else ():
            for fulfillment in order["fulfillments"]:
                if fulfillment["id"] == number:
                    return order, fulfillment
        return None

    def locations(self, info, **args) -> dict:
        return connection([location_node(x) for x in self.catalog.locations], args)

    def webhookSubscriptions(self, info, topics=None, uri=None, callbackUrl=None, **args) -> dict:
        subs = self.world.list(SYSTEM, "webhook_subscription")
        wanted_uri = uri or callbackUrl
        subs = [
            s
            for s in subs
            if (not topics or topic_enum(s["topic"]) in topics) and (not wanted_uri or s["uri"] == wanted_uri)
        ]
        subs.sort(key=lambda s: s["id"])
        return connection([_subscription_node(s) for s in subs], args)

    # -- mutations ------------------------------------------------------------------------------
    def tagsAdd(self, info, id, tags) -> dict:
        number = parse_gid(id, "Order")
        order = self.sandbox.load_order(number) if number else None
        if order is None:
            return {"node": None, "userErrors": [{"field": ["id"], "message": "Order does not exist"}]}
        current = tag_list(order.get("tags"))
        known = {t.lower() for t in current}
        added = [t.strip() for t in tags if t.strip() and t.strip().lower() not in known]
        if any(len(t) > 255 for t in added):
            return {"node": None, "userErrors": [{"field": ["tags"], "message": "Tag is too long"}]}
        if added:
            order["tags"] = ", ".join(current + list(dict.fromkeys(added)))
            self.sandbox.save_order(order)
            self._emit("orders/updated", public_order(order))
        return {"node": order_node(order, self.catalog), "userErrors": []}

    def webhookSubscriptionCreate(self, info, topic, webhookSubscription) -> dict:
        uri = webhookSubscription.get("uri") or webhookSubscription.get("callbackUrl")
        if not uri:
            return _sub_error(["webhookSubscription", "uri"], "Address can't be blank")
        if not str(uri).startswith(("http://", "https://")):
            return _sub_error(["webhookSubscription", "uri"], "Address protocol http:// is not supported")
        rest_topic = topic_name(topic)
        existing = self.world.list(SYSTEM, "webhook_subscription")
        if any(s["topic"] == rest_topic and s["uri"] == uri for s in existing):
            return _sub_error(
                ["webhookSubscription", "callbackUrl"], "Address for this topic has already been taken"
            )
        sub_id = self.sandbox._new_id("webhook_subscription", 1_100_000_000_001)
        sub = {
            "id": sub_id,
            "topic": rest_topic,
            "uri": uri,
            "format": (webhookSubscription.get("format") or "JSON").lower(),
            "api_version": credentials.SHOPIFY["api_version"],
            "created_at": shop_time(self.world.now()),
        }
        self.world.put(SYSTEM, "webhook_subscription", sub_id, sub)
        return {"webhookSubscription": _subscription_node(sub), "userErrors": []}


def _subscription_node(sub: dict[str, Any]) -> dict[str, Any]:
    return {
        "__typename": "WebhookSubscription",
        "id": gid("WebhookSubscription", sub["id"]),
        "legacyResourceId": str(sub["id"]),
        "topic": topic_enum(sub["topic"]),
        "uri": sub["uri"],
        "callbackUrl": sub["uri"],
        "format": sub["format"].upper(),
        "createdAt": sub["created_at"],
        "updatedAt": sub["created_at"],
        "apiVersion": {"handle": sub["api_version"], "displayName": sub["api_version"], "supported": True},
        "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": sub["uri"]},
    }


def _sub_error(field: list[str], message: str) -> dict[str, Any]:
    return {"webhookSubscription": None, "userErrors": [{"field": field, "message": message}]}


def _pick_operation(document, operation_name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        return next((o for o in operations if o.name and o.name.value == operation_name), None)
    return operations[0] if len(operations) == 1 else None


def _missing_idempotency(operation: OperationDefinitionNode, version: str) -> str | None:
    """The first listed mutation sent without @idempotent on a version that requires it."""
    if operation.operation.value != "mutation" or (version != "unstable" and version < "2026-04"):
        return None
    for selection in operation.selection_set.selections:
        name = getattr(getattr(selection, "name", None), "value", None)
        directives = {d.name.value for d in getattr(selection, "directives", None) or ()}
        if name in IDEMPOTENT_MUTATIONS and "idempotent" not in directives:
            return name
    return None
