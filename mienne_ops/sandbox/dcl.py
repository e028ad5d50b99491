"""The DCL Logistics fake: a stateful copy of DCL's REST API (``api.dclcorp.com``) for the sandbox.

It follows ``shared/docs/api/dcl.md``: HTTP Basic auth, ``error_code`` / ``error_message`` in every
body (business failures inside 2xx answers), ``POST /batches`` with per-order results in request
order, ``GET /orders`` with embedded shipments / packages / tracking, ``PUT /orders/cancel``,
``GET /items`` inventory, minimal ASNs (``po_notifications``) and ``po_receipts``, and RMAs
(ReturnTrak: ``POST/GET /rmas``, also under ``/api/v2``; see `dcl_returns` for their rules, record
shape and control plane). The same resources are served under ``/api/v1`` and ``/api/sandbox`` (one
shared state).

Sandbox choices where DCL documents nothing (see §13 of the fact file):

- Times are stored in UTC and rendered as naive US Pacific. ``modified_at`` is always
  ``YYYY-MM-DDTHH:MM:SS`` (it is the polling cursor); ``received_date`` and ``ship_date`` are
  ``YYYY-MM-DD`` unless ``extended_date=true``. Naive filter values are Pacific; offsets are honoured;
  ``received_to`` / ``shipped_to`` / a date-only ``modified_to`` mean the end of that day.
- Orders are listed in the order DCL received them (stable paging). Only ``status=any`` is accepted.
- Error code 13 also covers a bad value (unknown location, wrong account number, bad query value).
- A line with ``bundle_lines`` is a kit that DCL picks as components: its own ``item_number`` is only
  checked for format, its components must be DCL items, and a component's ``quantity`` is per kit.
  Kits with ``ship_as_components=False`` in the catalog are pre-packed DCL items.
- Inventory: ``available = on_hand - on_hold - committed - in_process`` per item x warehouse; shipping
  lowers ``on_hand`` at the order's warehouse (default ``FR``), a PO receipt raises it.
- Rate limit: 5 requests/s per credential (429, ``error_code`` 90, no ``Retry-After``); it and the
  fault injection apply to every API route, RMAs included.
- ``open_rma`` in ``GET /items`` counts the units live RMAs still expect at that warehouse; an RMA
  receipt raises ``on_hand`` (damaged units also ``on_hold``).

Error-code catalogue (dcl.md §13, our design choice) plus the RMA codes: 15 "Return label not
available: <detail>" (HTTP 200, nothing created), 22 "RMA number already exists: <n>" (HTTP 400).

Control plane (under ``/_sandbox/dcl``):

- ``POST /orders/{order_number}/ship`` ``{"lines": [{"line_number", "quantity"}], "carrier",
  "service", "tracking_numbers": [...], "ship_date": "YYYY-MM-DD"}`` (all optional) appends one
  shipment (one package per tracking number) and returns it.
- ``POST /orders/{order_number}/stage`` ``{"stage": 20}`` moves an order along (e.g. picked).
- ``GET /orders`` every order as the API renders it (extended dates).
- ``POST /inventory`` ``{"items": [{"item_number", "inventory_type", "on_hand", "on_hold"?}]}``.
- ``GET|POST /account``: the undocumented behaviours the fake plays (shipment and receipt shapes,
  top-level code on partial batches, "no records" codes, ASN updates, whether a cancelled order's
  number is taken again); see `dcl_dialect`.
- ``POST /limits`` ``{"requests_per_second": N, "drop_response_after_create": true}``: the latter
  makes the next successful batch create answer 504 although the orders exist (reconciliation);
  ``{"frozen_clock": true}`` stops the one-second window's clock and ``{"advance_seconds": S}`` moves
  it, so a test decides when the window has passed instead of racing the wall clock.
- ``POST /po_notifications/{reference_transaction_number}/receive`` ``{"lines": [...]}`` records a
  receipt against a notified PO (omit lines to receive everything).
- ``POST /po/{dcl_po_number}/receive`` ``{"lines": [{"line_number"?, "item_number"?, "quantity"}]}``
  records a receipt as the warehouse counted it: some or all lines, possibly more than announced,
  possibly an item that was not announced (no ``line_number``); omit lines to receive what is open.
- ``POST /po/{dcl_po_number}/cancel`` cancels an inbound PO, as an operator would in eFactory (DCL's
  API documents no cancel for PO notifications); a cancelled PO takes no receipt and no update.

Inbound (sandbox defaults, our design choice; dcl.md §8 documents neither updates nor the receipt
shape):

- With the account setting ``asn_updates=update_in_place`` (default; ``new_po`` plays the other
  possibility: every new reference is a second PO, see `dcl_dialect`), a ``po_notifications`` POST
  whose ``reference_order_number`` DCL already holds (not cancelled), under a new
  ``reference_transaction_number``, is an UPDATE of that inbound PO: same ``dcl_po_number`` in the
  answer, lines replaced by ``line_number`` (quantities already received are kept; a line left out
  keeps only what was received), dates and ``supplier_reference`` taken from the update. A reused
  ``reference_transaction_number`` (of any version) is still error 21 and changes nothing.
- ``supplier_reference`` (≤ 25, optional; the receipts filter of §8.2 implies it) is stored and shown
  on receipts; every receipt carries a ``receipt_id`` (its identity).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import random
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox import dcl_control as control
from mienne_ops.sandbox.base import SystemSandbox
from mienne_ops.sandbox.catalog import Catalog, build_catalog
from mienne_ops.sandbox.dcl_dialect import NO_RECORDS_CODE, Dialect, render_shipment_shape
from mienne_ops.sandbox.dcl_inbound import InboundDocks
from mienne_ops.sandbox.dcl_returns import ReturnDesk, RmaSettings
from mienne_ops.sandbox.dcl_rules import (
    AMOUNT_FIELDS,
    API_PREFIXES,
    CANCELLABLE_BELOW_STAGE,
    DEFAULT_LOCATION,
    DEFAULT_REQUESTS_PER_SECOND,
    IDENTIFIER,
    LINE_STRING_LIMITS,
    MAX_BATCH_ORDERS,
    OPTIONAL_STRING_LIMITS,
    ORDER_STRING_LIMITS,
    PACIFIC,
    PASSTHROUGH_FIELDS,
    RMA_PREFIXES,
    STAGES,
    SYSTEM,
    DclError,
    DroppedResponse,
    csv_list,
    day_end,
    error_response,
    optional_text,
    paging,
    parse_instant,
    positive_int,
    require_text,
    to_pacific_naive,
    validate_address,
)
from mienne_ops.sandbox.limits import SlidingWindowLimiter, apply_clock_knobs


class Sandbox(ReturnDesk, InboundDocks, SystemSandbox):
    name = SYSTEM

    def __init__(self, world, faults) -> None:
        super().__init__(world, faults)
        self.limiter = SlidingWindowLimiter(DEFAULT_REQUESTS_PER_SECOND)
        self.drop_response_after_create = False
        self.dialect = Dialect()
        self.rma_settings = RmaSettings.from_env()
        self._load_catalog(build_catalog())
        with world.tx() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS dcl_inventory ("
                " item_number TEXT NOT NULL, inventory_type TEXT NOT NULL, description TEXT NOT NULL,"
                " on_hand INTEGER NOT NULL, on_hold INTEGER NOT NULL, committed INTEGER NOT NULL,"
                " in_process INTEGER NOT NULL, open_po INTEGER NOT NULL,"
                " PRIMARY KEY (item_number, inventory_type))"
            )

    def _load_catalog(self, catalog: Catalog) -> None:
        """DCL stocks plain SKUs and pre-packed kits; kits shipped as components are not DCL items."""
        self.catalog = catalog
        component_kits = {b.sku for b in catalog.bundles if b.ship_as_components}
        self.items = {s.sku: s for s in catalog.skus if s.sku not in component_kits}
        self.location_codes = {loc.code for loc in catalog.locations}

    # -- SystemSandbox --------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        endpoints: list[tuple[str, str, Callable[..., tuple[int, dict[str, Any]]]]] = [
            ("/batches", "POST", self.create_batch),
            ("/orders", "GET", self.get_orders),
            ("/orders/cancel", "PUT", self.cancel_order),
            ("/items", "GET", self.get_items),
            ("/po_notifications", "POST", self.create_po_notification),
            ("/po_receipts", "GET", self.get_po_receipts),
        ]
        routes: list[BaseRoute] = [
            Route(prefix + path, self._endpoint(handler), methods=[method])
            for prefix in API_PREFIXES
            for path, method, handler in endpoints
        ]
        for prefix in RMA_PREFIXES:
            routes.append(
                Route(f"{prefix}/rmas", self._endpoint(self.create_rma, base_url=True), methods=["POST"])
            )
            routes.append(Route(f"{prefix}/rmas", self._endpoint(self.get_rmas), methods=["GET"]))
        return routes

    def control_routes(self) -> list[BaseRoute]:
        return [
            Route("/orders", self._control_list_orders, methods=["GET"]),
            Route("/orders/{order_number}/ship", self._control_ship, methods=["POST"]),
            Route("/orders/{order_number}/stage", self._control_stage, methods=["POST"]),
            Route("/inventory", self._control_inventory, methods=["POST"]),
            Route("/limits", self._control_limits, methods=["POST"]),
            Route("/account", self._control_account, methods=["GET", "POST"]),
            Route("/po_notifications/{reference}/receive", self._control_receive, methods=["POST"]),
            Route("/po/{dcl_po_number:int}/receive", self._control_receive_po_number, methods=["POST"]),
            Route("/po/{dcl_po_number:int}/cancel", self._control_cancel_po, methods=["POST"]),
            Route("/rmas", self._control_rmas, methods=["GET", "POST"]),
            Route("/rmas/settings", self._control_rma_settings, methods=["GET", "POST"]),
            Route("/rmas/{rma_number}/scan", self._control_rma_scan, methods=["POST"]),
            Route("/rmas/{rma_number}/receive", self._control_rma_receive, methods=["POST"]),
            Route("/rmas/{rma_number}/cancel", self._control_rma_close, methods=["POST"]),
            Route("/rmas/{rma_number}/expire", self._control_rma_close, methods=["POST"]),
            Route("/labels/{carrier}/{service}/{label}", self._control_label, methods=["GET"]),
        ]

    def reset(self, catalog: Catalog) -> None:
        self._load_catalog(catalog)
        self.limiter.configure(DEFAULT_REQUESTS_PER_SECOND)
        self.drop_response_after_create = False
        self.dialect = Dialect()
        self.rma_settings = RmaSettings.from_env()
        with self.world.tx() as conn:
            self.world.clear_system(SYSTEM)
            conn.execute("DELETE FROM dcl_inventory")
            conn.executemany(
                "INSERT INTO dcl_inventory VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(self._seed_inventory())
            )

    def _seed_inventory(self):
        for sku in self.items.values():
            for code in sorted(self.location_codes):
                # Seeded per item and warehouse so the stock does not depend on catalog order.
                rng = random.Random(f"dcl-stock|{sku.sku}|{code}")
                on_hand = rng.randrange(40, 600) if code == DEFAULT_LOCATION else rng.randrange(0, 250)
                on_hold = rng.choice((0, 0, 0, 2, 5))
                yield (sku.sku, code, sku.title, on_hand, min(on_hold, on_hand), 0, 0, 0)

    def state(self) -> dict[str, Any]:
        return {
            "orders": self.list_orders(),
            "inventory": self._inventory_rows(None, None),
            "po_notifications": self.world.list(SYSTEM, "po"),
            "po_receipts": self.world.list(SYSTEM, "receipt"),
            "rmas": self.list_rmas(),
        }

    def credentials(self) -> dict[str, Any]:
        return dict(credentials.DCL)

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return error_response(429, 90, "Too many requests")
        return error_response(status, 99, "Service temporarily unavailable")

    # -- request plumbing -----------------------------------------------------------------------
    def _endpoint(self, handler: Callable[..., tuple[int, dict[str, Any]]], base_url: bool = False):
        """``base_url``: the handler also gets the server's root URL (for URLs it hands out)."""

        async def endpoint(request: Request) -> Response:
            username = self._authenticate(request)
            if username is None:
                return error_response(401, 91, "Invalid credentials")
            if not self.limiter.allow(username):
                return error_response(429, 90, "Too many requests")
            try:
                payload = await _json_payload(request)
                if self.rma_settings.auto_on:
                    await run_in_threadpool(self.advance_rmas)
                extra = (f"{request.url.scheme}://{request.url.netloc}",) if base_url else ()
                status, body = await run_in_threadpool(handler, request.query_params, payload, *extra)
            except DclError as error:
                return error_response(error.status, error.code, error.message)
            except DroppedResponse:
                return error_response(504, 99, "Gateway timeout")
            if self.dialect.no_records_code and _nothing_listed(body):
                return error_response(200, NO_RECORDS_CODE, "No records found")
            return JSONResponse({"error_code": 0, "error_message": "", **body}, status_code=status)

        return endpoint

    def _authenticate(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            username, _, password = base64.b64decode(token).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        good_user = hmac.compare_digest(username, credentials.DCL["username"])
        good_password = hmac.compare_digest(password, credentials.DCL["password"])
        return username if good_user and good_password else None

    def touch(self, doc: dict[str, Any]) -> None:
        doc["modified_at"] = self.world.now().isoformat()
        self.world.put(SYSTEM, "order", doc["order_number"], doc)

    # -- POST /batches --------------------------------------------------------------------------
    def create_batch(self, params, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("allow_partial"), bool):
            raise DclError(400, 10, "Missing required field: allow_partial")
        orders = body.get("orders")
        if not isinstance(orders, list) or not 1 <= len(orders) <= MAX_BATCH_ORDERS:
            raise DclError(400, 40, f"Batch must contain 1 to {MAX_BATCH_ORDERS} orders")
        location = str(body.get("location") or DEFAULT_LOCATION).upper()
        if location not in self.location_codes:
            raise DclError(400, 13, "Invalid characters in location")
        with self.world.tx():
            statuses, accepted, failure = self._analyse_batch(orders, body["allow_partial"])
            if failure is not None:
                return 201, {**failure, "order_statuses": statuses}
            for doc in accepted:
                self._store_new_order(doc, location)
        if accepted and self.drop_response_after_create:
            self.drop_response_after_create = False
            raise DroppedResponse()
        failed = [s for s in statuses if s["error_code"]]
        if failed and self.dialect.partial_batch_error_code:
            # Undocumented but possible: the top level reports a failure although the good orders exist.
            top = {"error_code": failed[0]["error_code"], "error_message": "One or more orders failed"}
            return 201, {**top, "order_statuses": statuses}
        return 201, {"order_statuses": statuses}

    def _analyse_batch(self, orders: list[Any], allow_partial: bool):
        """Per-order results in request order; without allow_partial the first failure stops all."""
        statuses: list[dict[str, Any]] = []
        accepted: list[dict[str, Any]] = []
        seen: set[str] = set()
        for raw in orders:
            number = str(raw.get("order_number") or "") if isinstance(raw, dict) else ""
            try:
                doc = self.validate_order(raw, seen)
            except DclError as error:
                statuses.append(
                    {"order_number": number, "error_code": error.code, "error_message": error.message}
                )
                if not allow_partial:
                    return statuses, [], {"error_code": error.code, "error_message": error.message}
                continue
            seen.add(doc["order_number"])
            accepted.append(doc)
            statuses.append({"order_number": doc["order_number"], "error_code": 0, "error_message": ""})
        return statuses, accepted, None

    def validate_order(self, raw: Any, seen_in_batch: set[str]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise DclError(400, 10, "Missing required field: order_number")
        doc: dict[str, Any] = {
            name: require_text(raw, name, limit) for name, limit in ORDER_STRING_LIMITS.items()
        }
        if not IDENTIFIER.match(doc["order_number"]):
            raise DclError(400, 13, "Invalid characters in order_number")
        if doc["account_number"] != credentials.DCL["account_number"]:
            raise DclError(400, 13, "Invalid value in account_number")
        doc.update({name: optional_text(raw, name, limit) for name, limit in OPTIONAL_STRING_LIMITS.items()})
        doc["po_number"] = str(raw.get("po_number") or "")[:25]  # DCL truncates, per the model page
        doc["order_status"] = raw.get("order_status", 1)
        if doc["order_status"] not in (0, 1, 2):
            raise DclError(400, 13, "Invalid characters in order_status")
        doc["ordered_date"] = self._ordered_date(raw.get("ordered_date"))
        doc["shipping_address"] = validate_address(raw.get("shipping_address"), "shipping_address")
        billing = raw.get("billing_address")
        doc["billing_address"] = validate_address(billing, "billing_address") if billing else None
        doc["lines"] = self._validate_lines(raw.get("lines"))
        for name in (*AMOUNT_FIELDS, *PASSTHROUGH_FIELDS):
            if name in raw:
                doc[name] = raw[name]
        number = doc["order_number"]
        if number in seen_in_batch or not self._number_free(number):
            raise DclError(400, 20, f"Order number already exists: {number}")
        return doc

    def _number_free(self, number: str) -> bool:
        """No order under this number, or (account setting ``cancelled_order_numbers=reusable``) only
        a cancelled one, which a new order then replaces."""
        existing = self.world.get(SYSTEM, "order", number)
        if existing is None:
            return True
        return bool(existing["is_cancelled"]) and self.dialect.cancelled_order_numbers == "reusable"

    @staticmethod
    def _ordered_date(value: Any) -> str | None:
        if value in (None, ""):
            return None
        try:
            return date.fromisoformat(str(value)[:10]).isoformat()
        except ValueError as error:
            raise DclError(400, 13, "Invalid characters in ordered_date") from error

    def _validate_lines(self, raw_lines: Any) -> list[dict[str, Any]]:
        if not isinstance(raw_lines, list) or not raw_lines:
            raise DclError(400, 10, "Missing required field: lines")
        lines = []
        numbers: set[int] = set()
        for raw in raw_lines:
            line = self._validate_line(raw if isinstance(raw, dict) else {}, "lines.")
            if line["line_number"] in numbers:
                raise DclError(400, 13, "Invalid characters in lines.line_number (duplicate)")
            numbers.add(line["line_number"])
            lines.append(line)
        return lines

    def _validate_line(self, raw: dict[str, Any], prefix: str) -> dict[str, Any]:
        line: dict[str, Any] = {"line_number": positive_int(raw, "line_number", prefix)}
        line["item_number"] = require_text(raw, "item_number", 25, prefix)
        line["quantity"] = positive_int(raw, "quantity", prefix)
        line.update(
            {name: optional_text(raw, name, limit, prefix) for name, limit in LINE_STRING_LIMITS.items()}
        )
        if "price" in raw:
            line["price"] = raw["price"]
        line["bundle_lines"] = self._validate_bundle_lines(raw.get("bundle_lines"), prefix)
        if not line["bundle_lines"] and line["item_number"] not in self.items:
            raise DclError(400, 12, f"Item number not found: {line['item_number']}")
        if not line["description"]:
            known = self.items.get(line["item_number"])
            line["description"] = known.title if known else line["item_number"]
        line["quantity_shipped"] = 0
        return line

    def _validate_bundle_lines(self, raw: Any, prefix: str) -> list[dict[str, Any]]:
        if not raw:
            return []
        if not isinstance(raw, list):
            raise DclError(400, 13, f"Invalid characters in {prefix}bundle_lines")
        components = []
        for index, component in enumerate(raw, start=1):
            component = component if isinstance(component, dict) else {}
            item = require_text(component, "item_number", 25, f"{prefix}bundle_lines.")
            if item not in self.items:
                raise DclError(400, 12, f"Item number not found: {item}")
            quantity = positive_int(component, "quantity", f"{prefix}bundle_lines.")
            description = optional_text(component, "description", 100) or self.items[item].title
            components.append(
                {
                    "line_number": component.get("line_number", index),
                    "item_number": item,
                    "description": description,
                    "quantity": quantity,
                }
            )
        return components

    def _store_new_order(self, doc: dict[str, Any], location: str) -> None:
        now = self.world.now().isoformat()
        replaced = self.world.get(SYSTEM, "order", doc["order_number"])
        if replaced is not None:  # a cancelled order whose number DCL takes again (kept for the record)
            archived = f"{replaced['order_number']}#{replaced['seq']}"
            self.world.put(SYSTEM, "replaced_order", archived, replaced)
        doc.update(
            {
                "seq": self.world.next_id("dcl:order_seq"),
                "location": location,
                "order_stage": 10,
                "is_cancelled": False,
                "order_type": "Web Service",
                "system_id": doc.get("system_id") or "P",
                "received_at": now,
                "shipments": [],
            }
        )
        doc["modified_at"] = now
        self.world.put(SYSTEM, "order", doc["order_number"], doc)

    # -- GET /orders ----------------------------------------------------------------------------
    def get_orders(self, params, body: Any = None) -> tuple[int, dict[str, Any]]:
        status = params.get("status", "any").strip().lower()
        if status not in ("", "any"):
            raise DclError(400, 13, "Invalid characters in status")
        page, page_size = paging(params, "orders")
        matches = self._filter_orders(params)
        extended = params.get("extended_date", "").lower() == "true"
        fields = [f.strip() for f in params.get("fields", "").split(",") if f.strip()]
        start = (page - 1) * page_size
        shape = self.dialect.shipment_shape
        rendered = [render_order(doc, extended, shape) for doc in matches[start : start + page_size]]
        if fields:
            rendered = [{k: v for k, v in order.items() if k in fields} for order in rendered]
        return 200, {"orders": rendered}

    def _all_orders(self) -> list[dict[str, Any]]:
        return sorted(self.world.list(SYSTEM, "order"), key=lambda doc: doc["seq"])

    def _filter_orders(self, params) -> list[dict[str, Any]]:
        predicates = _order_predicates(params)
        return [doc for doc in self._all_orders() if all(check(doc) for check in predicates)]

    # -- PUT /orders/cancel ---------------------------------------------------------------------
    def cancel_order(self, params, body: Any) -> tuple[int, dict[str, Any]]:
        body = body if isinstance(body, dict) else {}
        require_text(body, "account_number", 10)
        number = require_text(body, "order_number", 25)
        with self.world.tx():
            doc = self.world.get(SYSTEM, "order", number)
            if doc is None:
                return 200, {"error_code": 31, "error_message": f"Order not found: {number}"}
            stage = doc["order_stage"]
            if doc["is_cancelled"] or stage >= CANCELLABLE_BELOW_STAGE:
                return 200, {"error_code": 30, "error_message": f"Order cannot be cancelled at stage {stage}"}
            doc["order_stage"] = 2
            doc["is_cancelled"] = True
            self.touch(doc)
        return 200, {}

    # -- GET /items -----------------------------------------------------------------------------
    def get_items(self, params, body: Any = None) -> tuple[int, dict[str, Any]]:
        page, page_size = paging(params, "items")
        wanted = csv_list(params.get("item_numbers"))
        rows = self._inventory_rows(wanted or None, params.get("inventory_type") or None)
        start = (page - 1) * page_size
        return 200, {"items": rows[start : start + page_size]}

    def _inventory_rows(self, item_numbers: list[str] | None, inventory_type: str | None) -> list[dict]:
        sql = "SELECT * FROM dcl_inventory WHERE 1=1"
        args: list[Any] = []
        if item_numbers:
            sql += f" AND item_number IN ({','.join('?' * len(item_numbers))})"
            args.extend(item_numbers)
        if inventory_type:
            sql += " AND inventory_type = ?"
            args.append(inventory_type)
        with self.world.tx() as conn:
            rows = conn.execute(sql + " ORDER BY item_number, inventory_type", args).fetchall()
        open_rma = self.open_rma_quantities()
        return [
            render_item(dict(row), open_rma.get((row["item_number"], row["inventory_type"]), 0))
            for row in rows
        ]

    def adjust_inventory(self, item_number: str, inventory_type: str, delta: int, on_hold: int = 0) -> None:
        """Move ``on_hand`` by ``delta`` (and ``on_hold`` by ``on_hold``: damaged returns)."""
        with self.world.tx() as conn:
            conn.execute(
                "UPDATE dcl_inventory SET on_hand = on_hand + ?, on_hold = on_hold + ?"
                " WHERE item_number = ? AND inventory_type = ?",
                (delta, on_hold, item_number, inventory_type),
            )

    def set_inventory(self, rows: list[dict[str, Any]]) -> None:
        with self.world.tx() as conn:
            for row in rows:
                item, kind = str(row["item_number"]), str(row["inventory_type"])
                title = self.items[item].title if item in self.items else item
                conn.execute(
                    "INSERT INTO dcl_inventory VALUES (?, ?, ?, ?, ?, 0, 0, 0) "
                    "ON CONFLICT(item_number, inventory_type) DO UPDATE SET on_hand = excluded.on_hand,"
                    " on_hold = excluded.on_hold",
                    (item, kind, title, int(row["on_hand"]), int(row.get("on_hold", 0))),
                )

    # -- shipping (control plane and traffic simulator) -----------------------------------------
    def list_orders(self) -> list[dict[str, Any]]:
        return [render_order(doc, extended=True) for doc in self._all_orders()]

    def ship_order(
        self,
        order_number: str,
        lines: list[dict[str, Any]] | None = None,
        carrier: str | None = None,
        service: str | None = None,
        tracking_numbers: list[str] | None = None,
        ship_date: str | None = None,
        unreadable: bool = False,
    ) -> dict[str, Any]:
        """Append one shipment (one package per tracking number); returns the shipment as rendered.

        ``unreadable`` (a drill) names the items' fields as no reader knows them.
        """
        with self.world.tx():
            doc = self.world.get(SYSTEM, "order", order_number)
            if doc is None:
                raise DclError(404, 31, f"Order not found: {order_number}")
            if doc["is_cancelled"]:
                raise DclError(409, 30, "Order is cancelled")
            quantities = _quantities_to_ship(doc, lines)
            units = self._shipped_units(doc, quantities)
            carrier = carrier or doc["shipping_carrier"]
            tracking = list(tracking_numbers or [self._tracking_number(carrier)])
            if len(units) < len(tracking):
                raise DclError(400, 13, "More tracking numbers than units shipped")
            now = self.world.now()
            shipment = {
                "shipment_number": len(doc["shipments"]) + 1,
                "ship_date": ship_date or now.astimezone(PACIFIC).date().isoformat(),
                "shipped_at": now.isoformat(),
                "shipping_carrier": carrier,
                "shipping_service": service or doc["shipping_service"],
                "shipping_address": doc["shipping_address"],
                "packages": self._packages(units, tracking),
            }
            if unreadable:
                shipment["unreadable"] = True
            for line in doc["lines"]:
                line["quantity_shipped"] += quantities.get(line["line_number"], 0)
            for item, _serial in units:
                self.adjust_inventory(item, doc["location"], -1)
            fully = all(line["quantity_shipped"] >= line["quantity"] for line in doc["lines"])
            doc["order_stage"] = 60 if fully else 50
            doc["shipments"].append(shipment)
            self.touch(doc)
        return render_shipment(shipment, extended=False)

    def _shipped_units(self, doc: dict[str, Any], quantities: dict[int, int]) -> list[tuple[str, str | None]]:
        """One entry per physical unit (item_number, serial): kits expand into their components."""
        units: list[tuple[str, str | None]] = []
        for line in doc["lines"]:
            kits = quantities.get(line["line_number"], 0)
            picks = [(c["item_number"], c["quantity"]) for c in line["bundle_lines"]] or [
                (line["item_number"], 1)
            ]
            for item, per_kit in picks:
                units.extend((item, self._serial_for(item)) for _ in range(per_kit * kits))
        return units

    def _serial_for(self, item_number: str) -> str | None:
        # Tools are the serialised items of the catalog; serials exercise NetSuite inventoryDetail.
        if "-TOOL-" not in item_number:
            return None
        return f"SN{self.world.next_id('dcl:serial', 100_000)}"

    def _packages(self, units: list[tuple[str, str | None]], tracking: list[str]) -> list[dict[str, Any]]:
        packages = []
        for index, tracking_number in enumerate(tracking):
            mine = units[index :: len(tracking)]
            packages.append(
                {
                    "carton_id": f"C{self.world.next_id('dcl:carton', 1_000_000):07d}",
                    "tracking_number": tracking_number,
                    "weight": self._weight_lb(mine),
                    "shipped_items": self._group_units(mine),
                }
            )
        return packages

    def _group_units(self, units: list[tuple[str, str | None]]) -> list[dict[str, Any]]:
        grouped: dict[str, dict[str, Any]] = {}
        for item, serial in units:
            entry = grouped.setdefault(
                item,
                {
                    "item_number": item,
                    "description": self._description(item),
                    "quantity": 0,
                    "serial_numbers": [],
                },
            )
            entry["quantity"] += 1
            if serial:
                entry["serial_numbers"].append(serial)
        return list(grouped.values())

    def _description(self, item: str) -> str:
        return self.items[item].title if item in self.items else item

    def _weight_lb(self, units: list[tuple[str, str | None]]) -> float:
        grams = sum(self.items[item].grams if item in self.items else 200 for item, _ in units)
        return max(0.1, round(grams / 453.592, 2))

    def _tracking_number(self, carrier: str) -> str:
        sequence = self.world.next_id("dcl:tracking", 1)
        upper = carrier.upper()
        if upper == "UPS":
            return f"1Z999AA1{sequence:010d}"
        if upper in ("FEDEX", "FDX"):
            return f"{770_000_000_000 + sequence}"
        if upper == "USPS":
            return f"9400{sequence:018d}"
        return f"DCL{sequence:012d}"

    def set_stage(self, order_number: str, stage: int) -> dict[str, Any]:
        if stage not in STAGES:
            raise DclError(400, 13, "Invalid characters in stage")
        with self.world.tx():
            doc = self.world.get(SYSTEM, "order", order_number)
            if doc is None:
                raise DclError(404, 31, f"Order not found: {order_number}")
            doc["order_stage"] = stage
            doc["is_cancelled"] = stage == 2
            self.touch(doc)
        return render_order(doc, extended=True)

    # -- control routes -------------------------------------------------------------------------
    async def _control_list_orders(self, request: Request) -> Response:
        return JSONResponse({"orders": await run_in_threadpool(self.list_orders)})

    async def _control_ship(self, request: Request) -> Response:
        async def call() -> dict[str, Any]:
            body = control.body_object(await _json_payload(request))
            return await run_in_threadpool(
                self.ship_order,
                request.path_params["order_number"],
                lines=control.ship_lines(body.get("lines")),
                carrier=control.text(body.get("carrier"), "carrier"),
                service=control.text(body.get("service"), "service"),
                tracking_numbers=control.tracking_numbers(body.get("tracking_numbers")),
                ship_date=control.day(body.get("ship_date"), "ship_date"),
                unreadable=control.flag(body.get("unreadable", False), "unreadable"),
            )

        return await _control_answer(call)

    async def _control_stage(self, request: Request) -> Response:
        async def call() -> dict[str, Any]:
            body = control.body_object(await _json_payload(request))
            stage = control.whole(body.get("stage"), "stage")
            return await run_in_threadpool(self.set_stage, request.path_params["order_number"], stage)

        return await _control_answer(call)

    async def _control_inventory(self, request: Request) -> Response:
        async def call() -> dict[str, Any]:
            body = control.body_object(await _json_payload(request))
            await run_in_threadpool(self.set_inventory, control.inventory_rows(body.get("items")))
            return {"ok": True}

        return await _control_answer(call)

    async def _control_limits(self, request: Request) -> Response:
        async def call() -> dict[str, Any]:
            body = control.body_object(await _json_payload(request))
            rate = body.get("requests_per_second")
            drop = body.get("drop_response_after_create")
            rate = control.number(rate, "requests_per_second") if rate is not None else None
            drop = control.flag(drop, "drop_response_after_create") if drop is not None else None
            if rate is not None:
                self.limiter.configure(rate)
            try:
                apply_clock_knobs(self.limiter, body)
            except ValueError as error:
                raise control.bad(str(error)) from error
            if drop is not None:
                self.drop_response_after_create = drop
            return {
                "requests_per_second": self.limiter.requests_per_second,
                "drop_response_after_create": self.drop_response_after_create,
                "frozen_clock": self.limiter.frozen,
            }

        return await _control_answer(call)

    async def _control_account(self, request: Request) -> Response:
        """The undocumented account behaviours the fake plays (see `dcl_dialect`)."""
        if request.method == "POST":
            try:
                self.dialect.configure(await _json_payload(request))
            except DclError as error:
                return error_response(error.status, error.code, error.message)
        return JSONResponse(self.dialect.as_dict())

    async def _control_receive_po_number(self, request: Request) -> Response:
        async def call() -> dict[str, Any]:
            body = control.body_object(await _json_payload(request))
            lines = control.receipt_lines(body.get("lines"), by_line_only=False)
            return await run_in_threadpool(
                self.receive_po_number, request.path_params["dcl_po_number"], lines
            )

        return await _control_answer(call)

    async def _control_cancel_po(self, request: Request) -> Response:
        async def call() -> dict[str, Any]:
            return await run_in_threadpool(self.cancel_po_number, request.path_params["dcl_po_number"])

        return await _control_answer(call)

    async def _control_receive(self, request: Request) -> Response:
        async def call() -> dict[str, Any]:
            body = control.body_object(await _json_payload(request))
            lines = control.receipt_lines(body.get("lines"), by_line_only=True)
            return await run_in_threadpool(self.receive_po, request.path_params["reference"], lines)

        return await _control_answer(call)

    # -- RMA control routes (see `dcl_returns`) -------------------------------------------------
    async def _control_rmas(self, request: Request) -> Response:
        async def call() -> dict[str, Any]:
            if request.method == "GET":
                return {"rmas": await run_in_threadpool(self.list_rmas)}
            body = control.body_object(await _json_payload(request))
            return await run_in_threadpool(self.create_portal_rma, body)

        return await _control_answer(call)

    async def _control_rma_settings(self, request: Request) -> Response:
        async def call() -> dict[str, Any]:
            if request.method == "POST":
                self.rma_settings.configure(control.body_object(await _json_payload(request)))
            return self.rma_settings.as_dict()

        return await _control_answer(call)

    async def _control_rma_scan(self, request: Request) -> Response:
        async def call() -> dict[str, Any]:
            body = control.body_object(await _json_payload(request))
            at = control.instant(body.get("at"), "at")
            return await run_in_threadpool(self.scan_rma, request.path_params["rma_number"], at)

        return await _control_answer(call)

    async def _control_rma_receive(self, request: Request) -> Response:
        async def call() -> dict[str, Any]:
            body = control.body_object(await _json_payload(request))
            lines = control.rma_receipt_lines(body.get("lines"))
            at = control.instant(body.get("received_at"), "received_at")
            return await run_in_threadpool(self.receive_rma, request.path_params["rma_number"], lines, at)

        return await _control_answer(call)

    async def _control_rma_close(self, request: Request) -> Response:
        how = "cancelled" if request.url.path.endswith("/cancel") else "expired"

        async def call() -> dict[str, Any]:
            body = control.body_object(await _json_payload(request))
            at = control.instant(body.get("at"), "at")
            return await run_in_threadpool(self.close_rma, request.path_params["rma_number"], how, at)

        return await _control_answer(call)

    async def _control_label(self, request: Request) -> Response:
        """The return label a ``return_label_url`` points at (public, like a carrier's label link)."""
        label = request.path_params["label"]
        document = None
        if label.endswith(".pdf"):
            document = await run_in_threadpool(self.label_document, label[: -len(".pdf")])
        if document is None:
            return error_response(404, 31, "Label not found")
        return Response(document, media_type="application/pdf")


# -- rendering ------------------------------------------------------------------------------------

ORDER_OUTPUT_FIELDS = (
    "order_status",
    "order_number",
    "location",
    "order_stage",
    "is_cancelled",
    "account_number",
    "order_type",
    "system_id",
    "ordered_date",
    "po_number",
    "customer_number",
    "freight_account",
    "consignee_number",
    "shipping_carrier",
    "shipping_service",
    "shipping_address",
    "billing_address",
    *AMOUNT_FIELDS,
    "international_code",
)


def render_order(doc: dict[str, Any], extended: bool, shape: str = "per_shipment") -> dict[str, Any]:
    order = {name: doc.get(name) for name in ORDER_OUTPUT_FIELDS}
    received = datetime.fromisoformat(doc["received_at"])
    order["stage_description"] = STAGES.get(doc["order_stage"], "")
    order["is_back_order"] = False
    order["received_date"] = (
        to_pacific_naive(received) if extended else received.astimezone(PACIFIC).date().isoformat()
    )
    order["modified_at"] = to_pacific_naive(datetime.fromisoformat(doc["modified_at"]))
    order["lines"] = [render_line(line) for line in doc["lines"]]
    order["shipments"] = [
        render_shipment_shape(render_shipment(s, extended), shape) for s in doc["shipments"]
    ]
    return order


def render_line(line: dict[str, Any]) -> dict[str, Any]:
    rendered = {k: v for k, v in line.items() if k != "bundle_lines"}
    rendered["is_back_order"] = False
    if line["bundle_lines"]:
        rendered["bundle_lines"] = line["bundle_lines"]
    return rendered


def render_shipment(shipment: dict[str, Any], extended: bool) -> dict[str, Any]:
    rendered = {k: v for k, v in shipment.items() if k not in ("shipped_at", "unreadable")}
    if shipment.get("unreadable"):  # the control plane's drill: item fields no reader knows
        rendered["packages"] = [
            {
                **{k: v for k, v in package.items() if k != "shipped_items"},
                "contents": [
                    {"sku_cd": i["item_number"], "qty": i["quantity"]} for i in package["shipped_items"]
                ],
            }
            for package in shipment["packages"]
        ]
    if extended:
        shipped_time = datetime.fromisoformat(shipment["shipped_at"]).astimezone(PACIFIC).time()
        rendered["ship_date"] = f"{shipment['ship_date']}T{shipped_time.isoformat(timespec='seconds')}"
    return rendered


def render_item(row: dict[str, Any], open_rma: int = 0) -> dict[str, Any]:
    available = row["on_hand"] - row["on_hold"] - row["committed"] - row["in_process"]
    return {
        "item_number": row["item_number"],
        "description": row["description"],
        "inventory_type": row["inventory_type"],
        "open_wo": 0,
        "open_po": row["open_po"],
        "open_rma": open_rma,
        "on_demand": 0,
        "on_hand": row["on_hand"],
        "on_hold": row["on_hold"],
        "committed": row["committed"],
        "in_process": row["in_process"],
        "available": available,
        "net_available": available,
        "min_quantity": 0,
        "dcl_quantity": row["on_hand"],
        "lots": [],
    }


# -- helpers --------------------------------------------------------------------------------------


async def _json_payload(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as error:
        raise DclError(400, 13, "Invalid characters in request body (malformed JSON)") from error


async def _control_answer(call: Callable[[], Awaitable[dict[str, Any]]]) -> Response:
    """Run a control action; DCL-style errors (bad input included) keep their status and message."""
    try:
        return JSONResponse(await call())
    except DclError as error:
        return error_response(error.status, error.code, error.message)


def _nothing_listed(body: dict[str, Any]) -> bool:
    """A list answer (orders, items, receipts) with no record in it."""
    lists = [key for key in ("orders", "items", "po_receipts", "rmas") if key in body]
    return bool(lists) and not any(body[key] for key in lists)


def _quantities_to_ship(doc: dict[str, Any], lines: list[dict[str, Any]] | None) -> dict[int, int]:
    remaining = {line["line_number"]: line["quantity"] - line["quantity_shipped"] for line in doc["lines"]}
    if lines is None:
        wanted = {number: left for number, left in remaining.items() if left > 0}
    else:
        wanted = {}
        for entry in lines:
            number, quantity = int(entry["line_number"]), int(entry["quantity"])
            if number not in remaining:
                raise DclError(400, 13, f"Invalid characters in line_number {number}")
            if quantity <= 0 or quantity > remaining[number]:
                raise DclError(400, 13, f"Quantity exceeds the unshipped quantity of line {number}")
            wanted[number] = quantity
    if not wanted:
        raise DclError(409, 30, "Nothing left to ship")
    return wanted


def _order_predicates(params) -> list[Callable[[dict[str, Any]], bool]]:
    checks: list[Callable[[dict[str, Any]], bool]] = []
    numbers = set(csv_list(params.get("order_numbers")))
    if numbers:
        checks.append(lambda doc: doc["order_number"] in numbers)
    for prefix, moment_of in (("received", _received_at), ("modified", _modified_at)):
        if params.get(f"{prefix}_from"):
            since = parse_instant(params[f"{prefix}_from"], f"{prefix}_from")
            checks.append(_compare_moment(moment_of, ">=", since))
        if params.get(f"{prefix}_to"):
            raw = params[f"{prefix}_to"]
            # received_to is end-of-day on its date; modified_to is a precise instant unless date-only.
            until = day_end(raw, f"{prefix}_to") if prefix == "received" or len(raw.strip()) == 10 else None
            if until is not None:
                checks.append(_compare_moment(moment_of, "<", until))
            else:
                limit = parse_instant(raw, f"{prefix}_to")
                checks.append(_compare_moment(moment_of, "<=", limit))
    if params.get("shipped_from"):
        first_day = params["shipped_from"].strip()[:10]
        checks.append(lambda doc: any(s["ship_date"] >= first_day for s in doc["shipments"]))
    if params.get("shipped_to"):
        last_day = params["shipped_to"].strip()[:10]
        checks.append(lambda doc: any(s["ship_date"] <= last_day for s in doc["shipments"]))
    checks.extend(_filter_expressions(params.get("filter", "")))
    return checks


def _compare_moment(
    moment_of: Callable[[dict[str, Any]], datetime], operator: str, bound: datetime
) -> Callable[[dict[str, Any]], bool]:
    compare = {">=": datetime.__ge__, "<": datetime.__lt__, "<=": datetime.__le__}[operator]
    return lambda doc: bool(compare(moment_of(doc), bound))


def _received_at(doc: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(doc["received_at"])


def _modified_at(doc: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(doc["modified_at"])


FILTER_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}
FILTER_TAGS = {"order_stage": int, "order_status": int, "location": str, "is_cancelled": str}


def _filter_expressions(text: str) -> list[Callable[[dict[str, Any]], bool]]:
    """``filter=order_stage ge 60,location eq FR``: comma means AND."""
    checks: list[Callable[[dict[str, Any]], bool]] = []
    for clause in csv_list(text):
        parts = clause.split()
        if len(parts) != 3 or parts[0] not in FILTER_TAGS or parts[1] not in FILTER_OPERATORS:
            raise DclError(400, 13, "Invalid characters in filter")
        tag, operator, raw_value = parts
        try:
            value = FILTER_TAGS[tag](raw_value)
        except ValueError as error:
            raise DclError(400, 13, "Invalid characters in filter") from error
        compare = FILTER_OPERATORS[operator]

        def check(doc, tag=tag, value=value, compare=compare):
            actual = doc.get(tag)
            actual = str(actual).lower() if isinstance(actual, bool) else actual
            return compare(
                actual, value.lower() if isinstance(value, str) and tag == "is_cancelled" else value
            )

        checks.append(check)
    return checks
