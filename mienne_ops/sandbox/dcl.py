"""The DCL Logistics fake: a stateful copy of DCL's REST API (``api.dclcorp.com``) for the sandbox.

It follows ``shared/docs/api/dcl.md``: HTTP Basic auth, ``error_code`` / ``error_message`` in every
body (business failures inside 2xx answers), ``POST /batches`` with per-order results in request
order, ``GET /orders`` with embedded shipments / packages / tracking, ``PUT /orders/cancel``,
``GET /items`` inventory, and minimal ASNs (``po_notifications``) and ``po_receipts``. The same
resources are served under ``/api/v1`` and ``/api/sandbox`` (one shared state).

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
- Rate limit: 5 requests/s per credential (429, ``error_code`` 90, no ``Retry-After``).

Control plane (under ``/_sandbox/dcl``):

- ``POST /orders/{order_number}/ship`` ``{"lines": [{"line_number", "quantity"}], "carrier",
  "service", "tracking_numbers": [...], "ship_date": "YYYY-MM-DD"}`` (all optional) appends one
  shipment (one package per tracking number) and returns it.
- ``POST /orders/{order_number}/stage`` ``{"stage": 20}`` moves an order along (e.g. picked).
- ``GET /orders`` every order as the API renders it (extended dates).
- ``POST /inventory`` ``{"items": [{"item_number", "inventory_type", "on_hand", "on_hold"?}]}``.
- ``POST /limits`` ``{"requests_per_second": N, "drop_response_after_create": true}``: the latter
  makes the next successful batch create answer 504 although the orders exist (reconciliation).
- ``POST /po_notifications/{reference_transaction_number}/receive`` ``{"lines": [...]}`` records a
  receipt against a notified PO (omit lines to receive everything).
- ``POST /po/{dcl_po_number}/receive`` ``{"lines": [{"line_number"?, "item_number"?, "quantity"}]}``
  records a receipt as the warehouse counted it: some or all lines, possibly more than announced,
  possibly an item that was not announced (no ``line_number``); omit lines to receive what is open.

Inbound (sandbox defaults, our design choice; dcl.md §8 documents neither updates nor the receipt
shape):

- A ``po_notifications`` POST whose ``reference_order_number`` DCL already holds, under a new
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
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.base import SystemSandbox
from mienne_ops.sandbox.catalog import Catalog, build_catalog
from mienne_ops.sandbox.limits import SlidingWindowLimiter

PACIFIC = ZoneInfo("America/Los_Angeles")
SYSTEM = "dcl"
API_PREFIXES = ("/api/v1", "/api/sandbox")
DEFAULT_REQUESTS_PER_SECOND = 5.0
DEFAULT_LOCATION = "FR"
MAX_BATCH_ORDERS = 1000
MAX_PAGE = {"orders": 100, "items": 500, "po_receipts": 100}
IDENTIFIER = re.compile(r"^[A-Za-z0-9#-]+$")
REFERENCE = re.compile(r"^[A-Za-z0-9-]+$")
US_POSTAL = re.compile(r"^\d{5}(-\d{4})?$")
CA_POSTAL = re.compile(r"^[A-Za-z]\d[A-Za-z] ?\d[A-Za-z]\d$")

STAGES = {
    2: "Order Cancelled",
    4: "AV Required",
    5: "DPS Required",
    6: "Ship Method Review",
    10: "Order Received",
    20: "Pick List Printed",
    30: "Partially Verified",
    40: "Fully Verified",
    50: "Partially Shipped",
    52: "Partially Shipped / Partially Verified",
    55: "Partially Shipped / Fully Verified",
    60: "Fully Shipped",
    62: "Closed Short",
    70: "Sub Order Shipped",
}
CANCELLABLE_BELOW_STAGE = 20
ORDER_STRING_LIMITS = {
    "order_number": 25,
    "account_number": 10,
    "freight_account": 10,
    "shipping_carrier": 30,
    "shipping_service": 30,
}
OPTIONAL_STRING_LIMITS = {"customer_number": 25, "consignee_number": 25, "acknowledgement_email": 40}
AMOUNT_FIELDS = (
    "order_subtotal",
    "shipping_handling",
    "sales_tax",
    "international_handling",
    "total_due",
    "amount_paid",
    "net_due_currency",
)
PASSTHROUGH_FIELDS = ("international_code", "system_id", "gift_message", "packing_list_comments")
LINE_STRING_LIMITS = {"description": 100, "comments": 100, **{f"custom_field{i}": 20 for i in range(1, 6)}}
ADDRESS_LIMITS = {"company": 40, "attention": 40, "address1": 40, "address2": 40}


class DclError(Exception):
    """A DCL business or request error, rendered as ``{error_code, error_message}``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class DroppedResponse(Exception):
    """The work was committed but the caller sees a gateway timeout (reconciliation drills)."""


# -- time helpers ---------------------------------------------------------------------------------


def to_pacific_naive(moment: datetime) -> str:
    return moment.astimezone(PACIFIC).replace(tzinfo=None).isoformat(timespec="seconds")


def parse_instant(value: str, field: str, *, end_of_day: bool = False) -> datetime:
    """A filter value as an aware UTC datetime: dates and naive datetimes are US Pacific local time."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day + timedelta(days=1) if end_of_day else day, dtime(), PACIFIC)
            return moment.astimezone(UTC)
        parsed = datetime.fromisoformat(text.replace(" ", "T"))
    except ValueError as error:
        raise DclError(400, 13, f"Invalid characters in {field}") from error
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=PACIFIC)
    return parsed.astimezone(UTC)


def day_end(value: str, field: str) -> datetime:
    """``*_to`` filters use the date part only and include the whole day."""
    return parse_instant(value.strip()[:10], field, end_of_day=True)


# -- validation -----------------------------------------------------------------------------------


def _require_text(source: dict[str, Any], field: str, limit: int, prefix: str = "") -> str:
    value = source.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DclError(400, 10, f"Missing required field: {prefix}{field}")
    text = str(value).strip()
    if len(text) > limit:
        raise DclError(400, 11, f"Field too long: {prefix}{field}")
    return text


def _optional_text(source: dict[str, Any], field: str, limit: int, prefix: str = "") -> str:
    value = source.get(field)
    if value is None:
        return ""
    text = str(value).strip()
    if len(text) > limit:
        raise DclError(400, 11, f"Field too long: {prefix}{field}")
    return text


def _positive_int(source: dict[str, Any], field: str, prefix: str) -> int:
    value = source.get(field)
    if value is None:
        raise DclError(400, 10, f"Missing required field: {prefix}{field}")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise DclError(400, 13, f"Invalid characters in {prefix}{field}")
    return value


def validate_address(raw: Any, field: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise DclError(400, 10, f"Missing required field: {field}")
    prefix = f"{field}."
    address = {name: _optional_text(raw, name, limit, prefix) for name, limit in ADDRESS_LIMITS.items()}
    if not address["company"] and not address["attention"]:
        raise DclError(400, 10, f"Missing required field: {prefix}attention")
    if not address["address1"]:
        raise DclError(400, 10, f"Missing required field: {prefix}address1")
    address["city"] = _require_text(raw, "city", 40, prefix)
    country = str(raw.get("country_code") or raw.get("country") or "").strip().upper()
    if not country:
        raise DclError(400, 10, f"Missing required field: {prefix}country_code")
    if not (2 <= len(country) <= 3 and country.isalpha()):
        raise DclError(400, 14, f"Invalid address: {prefix}country_code")
    address["country"] = country
    address["state_province"] = str(raw.get("state_province") or "").strip()
    address["postal_code"] = str(raw.get("postal_code") or "").strip()
    address["email"] = str(raw.get("email") or "").strip()
    address["phone"] = str(raw.get("phone") or "").strip()
    _check_north_american_address(address, prefix)
    return address


def _check_north_american_address(address: dict[str, Any], prefix: str) -> None:
    country = address["country"]
    if country not in ("US", "USA", "CA", "CAN"):
        return
    for required in ("state_province", "postal_code"):
        if not address[required]:
            raise DclError(400, 14, f"Invalid address: {prefix}{required} is required for US/CA")
    pattern = US_POSTAL if country in ("US", "USA") else CA_POSTAL
    if not pattern.match(address["postal_code"]):
        raise DclError(400, 14, f"Invalid address: {prefix}postal_code")


class Sandbox(SystemSandbox):
    name = SYSTEM

    def __init__(self, world, faults) -> None:
        super().__init__(world, faults)
        self.limiter = SlidingWindowLimiter(DEFAULT_REQUESTS_PER_SECOND)
        self.drop_response_after_create = False
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
        return [
            Route(prefix + path, self._endpoint(handler), methods=[method])
            for prefix in API_PREFIXES
            for path, method, handler in endpoints
        ]

    def control_routes(self) -> list[BaseRoute]:
        return [
            Route("/orders", self._control_list_orders, methods=["GET"]),
            Route("/orders/{order_number}/ship", self._control_ship, methods=["POST"]),
            Route("/orders/{order_number}/stage", self._control_stage, methods=["POST"]),
            Route("/inventory", self._control_inventory, methods=["POST"]),
            Route("/limits", self._control_limits, methods=["POST"]),
            Route("/po_notifications/{reference}/receive", self._control_receive, methods=["POST"]),
            Route("/po/{dcl_po_number:int}/receive", self._control_receive_po_number, methods=["POST"]),
        ]

    def reset(self, catalog: Catalog) -> None:
        self._load_catalog(catalog)
        self.limiter.configure(DEFAULT_REQUESTS_PER_SECOND)
        self.drop_response_after_create = False
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
        }

    def credentials(self) -> dict[str, Any]:
        return dict(credentials.DCL)

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return _error_response(429, 90, "Too many requests")
        return _error_response(status, 99, "Service temporarily unavailable")

    # -- request plumbing -----------------------------------------------------------------------
    def _endpoint(self, handler: Callable[..., tuple[int, dict[str, Any]]]):
        async def endpoint(request: Request) -> Response:
            username = self._authenticate(request)
            if username is None:
                return _error_response(401, 91, "Invalid credentials")
            if not self.limiter.allow(username):
                return _error_response(429, 90, "Too many requests")
            try:
                payload = await _json_payload(request)
                status, body = await run_in_threadpool(handler, request.query_params, payload)
            except DclError as error:
                return _error_response(error.status, error.code, error.message)
            except DroppedResponse:
                return _error_response(504, 99, "Gateway timeout")
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
            name: _require_text(raw, name, limit) for name, limit in ORDER_STRING_LIMITS.items()
        }
        if not IDENTIFIER.match(doc["order_number"]):
            raise DclError(400, 13, "Invalid characters in order_number")
        if doc["account_number"] != credentials.DCL["account_number"]:
            raise DclError(400, 13, "Invalid value in account_number")
        doc.update({name: _optional_text(raw, name, limit) for name, limit in OPTIONAL_STRING_LIMITS.items()})
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
        if number in seen_in_batch or self.world.get(SYSTEM, "order", number) is not None:
            raise DclError(400, 20, f"Order number already exists: {number}")
        return doc

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
        line: dict[str, Any] = {"line_number": _positive_int(raw, "line_number", prefix)}
        line["item_number"] = _require_text(raw, "item_number", 25, prefix)
        line["quantity"] = _positive_int(raw, "quantity", prefix)
        line.update(
            {name: _optional_text(raw, name, limit, prefix) for name, limit in LINE_STRING_LIMITS.items()}
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
            item = _require_text(component, "item_number", 25, f"{prefix}bundle_lines.")
            if item not in self.items:
                raise DclError(400, 12, f"Item number not found: {item}")
            quantity = _positive_int(component, "quantity", f"{prefix}bundle_lines.")
            description = _optional_text(component, "description", 100) or self.items[item].title
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
        page, page_size = _paging(params, "orders")
        matches = self._filter_orders(params)
        extended = params.get("extended_date", "").lower() == "true"
        fields = [f.strip() for f in params.get("fields", "").split(",") if f.strip()]
        start = (page - 1) * page_size
        rendered = [render_order(doc, extended) for doc in matches[start : start + page_size]]
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
        _require_text(body, "account_number", 10)
        number = _require_text(body, "order_number", 25)
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
        page, page_size = _paging(params, "items")
        wanted = _csv(params.get("item_numbers"))
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
        return [render_item(dict(row)) for row in rows]

    def adjust_inventory(self, item_number: str, inventory_type: str, delta: int) -> None:
        with self.world.tx() as conn:
            conn.execute(
                "UPDATE dcl_inventory SET on_hand = on_hand + ? WHERE item_number = ? AND inventory_type = ?",
                (delta, item_number, inventory_type),
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

    # -- ASNs and receipts ----------------------------------------------------------------------
    def create_po_notification(self, params, body: Any) -> tuple[int, dict[str, Any]]:
        body = body if isinstance(body, dict) else {}
        _require_text(body, "account_number", 10)
        location = _require_text(body, "location", 3).upper()
        if location not in self.location_codes:
            raise DclError(400, 13, "Invalid characters in location")
        reference = _require_text(body, "reference_transaction_number", 25)
        if not REFERENCE.match(reference):
            raise DclError(400, 13, "Invalid characters in reference_transaction_number")
        order_number = _require_text(body, "reference_order_number", 25)
        order_date = _require_text(body, "order_date", 10)
        expected = _require_text(body, "expected_delivery_date", 10)
        lines = self._validate_po_lines(body.get("lines"))
        supplier = _optional_text(body, "supplier_reference", 25)
        with self.world.tx():
            if self.world.get(SYSTEM, "po", reference) is not None or self._po_by_reference(reference):
                raise DclError(400, 21, "Reference transaction number already exists")
            update = self._po_by_order_number(order_number)
            if update is not None:
                return 201, self._update_po(update, reference, order_date, expected, supplier, lines)
            dcl_po_number = self.world.next_id("dcl:po_number", 182_000)
            self.world.put(
                SYSTEM,
                "po",
                reference,
                {
                    "dcl_po_number": dcl_po_number,
                    "reference_transaction_number": reference,
                    "reference_order_number": order_number,
                    "location": location,
                    "order_date": order_date,
                    "expected_delivery_date": expected,
                    "lines": lines,
                    "supplier_reference": supplier,
                    "references": [reference],
                },
            )
        return 201, {"dcl_po_number": dcl_po_number}

    def _po_by_reference(self, reference: str) -> dict[str, Any] | None:
        return next(
            (po for po in self.world.list(SYSTEM, "po") if reference in po.get("references", [])), None
        )

    def _po_by_order_number(self, order_number: str) -> dict[str, Any] | None:
        return next(
            (po for po in self.world.list(SYSTEM, "po") if po["reference_order_number"] == order_number),
            None,
        )

    def _po_by_number(self, dcl_po_number: int) -> dict[str, Any] | None:
        return next(
            (po for po in self.world.list(SYSTEM, "po") if int(po["dcl_po_number"]) == dcl_po_number), None
        )

    def _update_po(
        self,
        po: dict[str, Any],
        reference: str,
        order_date: str,
        expected: str,
        supplier: str,
        lines: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """A new version of an announced PO: new lines and dates, received quantities kept."""
        received = {line["line_number"]: line["quantity_received"] for line in po["lines"]}
        items = {line["line_number"]: line["item_number"] for line in po["lines"]}
        merged = []
        for line in lines:
            line["quantity_received"] = received.pop(line["line_number"], 0)
            merged.append(line)
        for number, quantity in received.items():
            if quantity > 0:  # left out of the update: nothing more expected on it
                merged.append(
                    {
                        "line_number": number,
                        "item_number": items[number],
                        "quantity": quantity,
                        "quantity_received": quantity,
                    }
                )
        po.update(
            lines=sorted(merged, key=lambda line: line["line_number"]),
            order_date=order_date,
            expected_delivery_date=expected,
            supplier_reference=supplier or po.get("supplier_reference", ""),
            reference_transaction_number=reference,
            references=[*po.get("references", [po["reference_transaction_number"]]), reference],
        )
        self.world.put(SYSTEM, "po", po["references"][0], po)
        return {"dcl_po_number": po["dcl_po_number"]}

    def receive_po_number(
        self, dcl_po_number: int, lines: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """A receipt as counted at the dock: any quantity, announced or not (control plane, traffic)."""
        with self.world.tx():
            po = self._po_by_number(int(dcl_po_number))
            if po is None:
                raise DclError(404, 31, f"PO not found: {dcl_po_number}")
            by_number = {line["line_number"]: line for line in po["lines"]}
            if not lines:
                lines = [
                    {"line_number": n, "quantity": line["quantity"] - line["quantity_received"]}
                    for n, line in by_number.items()
                ]
            received = []
            for raw in lines:
                quantity = int(raw.get("quantity") or 0)
                number = raw.get("line_number")
                line = by_number.get(int(number)) if number is not None else None
                item = str(raw.get("item_number") or (line["item_number"] if line else ""))
                if quantity <= 0 or not item:
                    continue
                if line is not None and line["item_number"] == item:
                    line["quantity_received"] += quantity
                    row = {"line_number": line["line_number"], "item_number": item}
                else:
                    row = {"item_number": item}  # not announced: DCL has no line for it
                if item in self.items:
                    self.adjust_inventory(item, po["location"], quantity)
                received.append({**row, "quantity_received": quantity})
            if not received:
                raise DclError(409, 30, "Nothing to receive")
            # Stored under its first reference, the key `receive_po` and older docs use.
            self.world.put(SYSTEM, "po", po.get("references", [po["reference_transaction_number"]])[0], po)
            now = self.world.now()
            receipt = {
                "seq": self.world.next_id("dcl:receipt_seq"),
                "receipt_id": f"R{self.world.next_id('dcl:receipt', 500_000)}",
                "dcl_po_number": po["dcl_po_number"],
                "reference_transaction_number": po["reference_transaction_number"],
                "customer_po_number": po["reference_order_number"],
                "supplier_reference": po.get("supplier_reference", ""),
                "receipt_date": now.astimezone(PACIFIC).date().isoformat(),
                "receipt_type": "PO",
                "location": po["location"],
                "received_at": now.isoformat(),
                "lines": received,
            }
            self.world.put(SYSTEM, "receipt", receipt["receipt_id"], receipt)
        return {k: v for k, v in receipt.items() if k not in ("seq", "received_at")}

    def _validate_po_lines(self, raw_lines: Any) -> list[dict[str, Any]]:
        if not isinstance(raw_lines, list) or not raw_lines:
            raise DclError(400, 10, "Missing required field: lines")
        lines = []
        for raw in raw_lines:
            raw = raw if isinstance(raw, dict) else {}
            item = _require_text(raw, "item_number", 25, "lines.")
            if item not in self.items:
                raise DclError(400, 12, f"Item number not found: {item}")
            lines.append(
                {
                    "line_number": _positive_int(raw, "line_number", "lines."),
                    "item_number": item,
                    "quantity": _positive_int(raw, "quantity", "lines."),
                    "quantity_received": 0,
                }
            )
        return lines

    def get_po_receipts(self, params, body: Any = None) -> tuple[int, dict[str, Any]]:
        page, page_size = _paging(params, "po_receipts")
        receipts = sorted(self.world.list(SYSTEM, "receipt"), key=lambda r: r["seq"])
        if params.get("reference_transaction_number"):
            receipts = [
                r
                for r in receipts
                if r["reference_transaction_number"] == params["reference_transaction_number"]
            ]
        if params.get("dcl_po_number", "0") not in ("", "0"):
            receipts = [r for r in receipts if str(r["dcl_po_number"]) == params["dcl_po_number"]]
        if params.get("received_from"):
            since = parse_instant(params["received_from"], "received_from")
            receipts = [r for r in receipts if datetime.fromisoformat(r["received_at"]) >= since]
        if params.get("received_to"):
            until = day_end(params["received_to"], "received_to")
            receipts = [r for r in receipts if datetime.fromisoformat(r["received_at"]) < until]
        start = (page - 1) * page_size
        shown = [{k: v for k, v in r.items() if k not in ("seq", "received_at")} for r in receipts]
        return 200, {"po_receipts": shown[start : start + page_size]}

    def receive_po(self, reference: str, lines: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Record a receipt against a notified PO and raise on-hand stock (traffic simulator, tests)."""
        with self.world.tx():
            po = self.world.get(SYSTEM, "po", reference)
            if po is None:
                raise DclError(404, 31, f"PO notification not found: {reference}")
            wanted = {int(x["line_number"]): int(x["quantity"]) for x in lines} if lines else None
            received = []
            for line in po["lines"]:
                open_quantity = line["quantity"] - line["quantity_received"]
                quantity = min(open_quantity, wanted.get(line["line_number"], 0)) if wanted else open_quantity
                if quantity <= 0:
                    continue
                line["quantity_received"] += quantity
                self.adjust_inventory(line["item_number"], po["location"], quantity)
                received.append(
                    {
                        "line_number": line["line_number"],
                        "item_number": line["item_number"],
                        "quantity_received": quantity,
                    }
                )
            if not received:
                raise DclError(409, 30, "Nothing left to receive")
            self.world.put(SYSTEM, "po", reference, po)
            now = self.world.now()
            receipt = {
                "seq": self.world.next_id("dcl:receipt_seq"),
                "receipt_id": f"R{self.world.next_id('dcl:receipt', 500_000)}",
                "dcl_po_number": po["dcl_po_number"],
                "reference_transaction_number": reference,
                "customer_po_number": po["reference_order_number"],
                "receipt_date": now.astimezone(PACIFIC).date().isoformat(),
                "receipt_type": "PO",
                "location": po["location"],
                "received_at": now.isoformat(),
                "lines": received,
            }
            self.world.put(SYSTEM, "receipt", receipt["receipt_id"], receipt)
        return {k: v for k, v in receipt.items() if k not in ("seq", "received_at")}

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
    ) -> dict[str, Any]:
        """Append one shipment (one package per tracking number); returns the shipment as rendered."""
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
        body = await _json_payload(request) or {}
        return await _control_call(
            self.ship_order,
            request.path_params["order_number"],
            lines=body.get("lines"),
            carrier=body.get("carrier"),
            service=body.get("service"),
            tracking_numbers=body.get("tracking_numbers"),
            ship_date=body.get("ship_date"),
        )

    async def _control_stage(self, request: Request) -> Response:
        body = await _json_payload(request) or {}
        return await _control_call(
            self.set_stage, request.path_params["order_number"], int(body.get("stage", 0))
        )

    async def _control_inventory(self, request: Request) -> Response:
        body = await _json_payload(request) or {}
        await run_in_threadpool(self.set_inventory, body.get("items") or [])
        return JSONResponse({"ok": True})

    async def _control_limits(self, request: Request) -> Response:
        body = await _json_payload(request) or {}
        if "requests_per_second" in body:
            self.limiter.configure(float(body["requests_per_second"] or 0))
        if "drop_response_after_create" in body:
            self.drop_response_after_create = bool(body["drop_response_after_create"])
        return JSONResponse(
            {
                "requests_per_second": self.limiter.requests_per_second,
                "drop_response_after_create": self.drop_response_after_create,
            }
        )

    async def _control_receive_po_number(self, request: Request) -> Response:
        body = await _json_payload(request) or {}
        return await _control_call(
            self.receive_po_number, request.path_params["dcl_po_number"], body.get("lines")
        )

    async def _control_receive(self, request: Request) -> Response:
        body = await _json_payload(request) or {}
        return await _control_call(self.receive_po, request.path_params["reference"], body.get("lines"))


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


def render_order(doc: dict[str, Any], extended: bool) -> dict[str, Any]:
    order = {name: doc.get(name) for name in ORDER_OUTPUT_FIELDS}
    received = datetime.fromisoformat(doc["received_at"])
    order["stage_description"] = STAGES.get(doc["order_stage"], "")
    order["is_back_order"] = False
    order["received_date"] = (
        to_pacific_naive(received) if extended else received.astimezone(PACIFIC).date().isoformat()
    )
    order["modified_at"] = to_pacific_naive(datetime.fromisoformat(doc["modified_at"]))
    order["lines"] = [render_line(line) for line in doc["lines"]]
    order["shipments"] = [render_shipment(s, extended) for s in doc["shipments"]]
    return order


def render_line(line: dict[str, Any]) -> dict[str, Any]:
    rendered = {k: v for k, v in line.items() if k != "bundle_lines"}
    rendered["is_back_order"] = False
    if line["bundle_lines"]:
        rendered["bundle_lines"] = line["bundle_lines"]
    return rendered


def render_shipment(shipment: dict[str, Any], extended: bool) -> dict[str, Any]:
    rendered = {k: v for k, v in shipment.items() if k != "shipped_at"}
    if extended:
        shipped_time = datetime.fromisoformat(shipment["shipped_at"]).astimezone(PACIFIC).time()
        rendered["ship_date"] = f"{shipment['ship_date']}T{shipped_time.isoformat(timespec='seconds')}"
    return rendered


def render_item(row: dict[str, Any]) -> dict[str, Any]:
    available = row["on_hand"] - row["on_hold"] - row["committed"] - row["in_process"]
    return {
        "item_number": row["item_number"],
        "description": row["description"],
        "inventory_type": row["inventory_type"],
        "open_wo": 0,
        "open_po": row["open_po"],
        "open_rma": 0,
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


def _error_response(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "error_message": message}, status_code=status)


async def _json_payload(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as error:
        raise DclError(400, 13, "Invalid characters in request body (malformed JSON)") from error


async def _control_call(function: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> Response:
    try:
        return JSONResponse(await run_in_threadpool(function, *args, **kwargs))
    except DclError as error:
        return _error_response(error.status, error.code, error.message)


def _csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _paging(params, resource: str) -> tuple[int, int]:
    limit = MAX_PAGE[resource]
    try:
        page = int(params.get("page", 1))
        page_size = int(params.get("page_size", limit))
    except ValueError as error:
        raise DclError(400, 13, "Invalid characters in page") from error
    if page_size > limit:
        raise DclError(400, 41, f"page_size exceeds maximum {limit}")
    if page < 1 or page_size < 1:
        raise DclError(400, 13, "Invalid characters in page")
    return page, page_size


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
    numbers = set(_csv(params.get("order_numbers")))
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
    for clause in _csv(text):
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
