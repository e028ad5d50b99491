"""The DCL fake's returns desk (ReturnTrak): ``POST /rmas``, ``GET /rmas`` and the RMA control plane.

A mixin of the DCL `Sandbox` (it uses the sandbox's world and inventory). dcl.md §9 documents the
request body and the ``rma_number`` / label fields of the answer; everything else here is a sandbox
default, marked (our design choice):

- ``POST /api/v1/rmas``, ``/api/v2/rmas`` and ``/api/sandbox/rmas`` (one shared state) → 201
  ``{error_code: 0, error_message: "", rma_number, return_label_url?, return_label_tracking_number?}``.
  Required: ``account_number`` (the configured one, else 13), ``shipping_address`` (validated like an
  order's: US/CA need state and postal code, else 14), ``rma_type`` (in the account's set, default
  ``{"T01"}``, else 13), ``disposition`` (an integer in the account's set, default
  ``{1, 2, 3, 5, 10, 18}``, else 13), ``lines`` (non-empty; ``item_number`` ≤ 35 and known to DCL,
  else 12; ``quantity`` a positive integer). ``rma_number`` is optional (≤ 25, ``[A-Za-z0-9#-]``;
  ``RMA<n>`` is generated when absent); a number DCL already holds is HTTP 400 code 22 "RMA number
  already exists: <n>" and nothing changes (DCL documents no duplicate behaviour).
- ``generate_return_service_label: true``: the label is made for ``shipping_carrier`` /
  ``shipping_service`` (then required, else 10), only for the pairs the account supports per the
  customer's country (our design choice, configurable): US ``USPS/GROUND ADVANTAGE``, ``UPS/GROUND``;
  CA ``CANADA POST/EXPEDITED PARCEL``, ``UPS/STANDARD``. Another country, an unsupported pair, or the
  ``refuse_labels`` knob → HTTP 200 with code 15 "Return label not available: <detail>" and nothing
  created. The label is served by the sandbox itself (``GET /_sandbox/dcl/labels/<carrier>/<service>/
  <rma>.pdf``, a small PDF-like body naming carrier, service and tracking) and the tracking number is
  carrier-shaped (USPS ``9202…``, UPS ``1Z…``, Canada Post ``RT…CA``).
- ``GET /api/v2/rmas`` (and ``/api/v1/rmas``, ``/api/sandbox/rmas``): ``rma_numbers``,
  ``created_from/to``, ``received_from/to`` (dates or datetimes, naive = US Pacific; ``*_to`` as a
  date means the end of that day; ``received_from`` selects RMAs with a receipt at or after it),
  ``fields``, ``page`` / ``page_size`` (≤ 50, else 400 code 41), ``rma_status`` accepted and ignored.
  RMAs are listed in creation order. Record (our design choice: DCL does not document the field
  names for received quantities, receipts or the carrier's first scan):
  ``{rma_number, rma_date, original_order_number, customer_number, cancelled_date, expired_date,
  first_scan_date, return_label_url, return_label_tracking_number, shipping_carrier,
  shipping_service, disposition, rma_type, lines: [{item_number, description, quantity,
  quantity_received, serial_number}], receipts: [{receipt_id, received_date, lines: [{item_number,
  quantity, condition}]}]}``; datetimes are naive US Pacific ``YYYY-MM-DDTHH:MM:SS``, ``rma_date`` a
  date.
- Receiving (our design choice): DCL receives what arrives. A receipt line for an item the RMA does
  not list, or beyond its quantity, is recorded as received (an item not listed gets an RMA line of
  quantity 0). ``good`` units raise ``on_hand`` (so ``available``) of the RMA's warehouse
  (``location``, default ``FR``); ``damaged`` units raise ``on_hand`` and ``on_hold`` alike, so they
  are never available. ``open_rma`` in ``GET /items`` is what live (not cancelled, not expired) RMAs
  still expect of an item at that warehouse.

Control plane (under ``/_sandbox/dcl``; times are ISO-8601, naive = UTC, so a test moves days
without sleeping):

- ``POST /rmas`` creates an RMA as if typed in DCL's portal (same body as the API, the account
  number filled in, optional ``location`` and ``created_at``; never a label): mienne-ops does not
  know it ("a receipt for an unknown RMA"). ``GET /rmas`` lists every RMA as the API renders it,
  plus ``location`` and ``source`` (``api`` / ``portal``).
- ``POST /rmas/{rma_number}/scan`` ``{"at"?}``: the carrier's first scan of the return label (a
  second scan keeps the first time).
- ``POST /rmas/{rma_number}/receive`` ``{"lines": [{"item_number", "quantity", "condition":
  "good"|"damaged"}], "received_at"?}`` appends a receipt (omit lines: all still expected, good).
- ``POST /rmas/{rma_number}/cancel`` / ``/expire`` ``{"at"?}``: set ``cancelled_date`` /
  ``expired_date`` as DCL's staff would (DCL's API documents no RMA cancel).
- ``GET|POST /rmas/settings``: ``rma_types``, ``dispositions``, ``label_services`` (``{"US":
  [["USPS", "GROUND ADVANTAGE"], …], …}``), ``refuse_labels`` (every label request refused with code
  15: the fault drill) and the demo's auto mode, ``auto_scan_after_seconds`` /
  ``auto_receive_after_seconds`` (null = off, the default): an RMA's label is scanned N seconds after
  its creation and all its open lines are received in good condition M seconds after it, checked on
  every DCL request (no background thread; the receipt is stamped when it is made, so a
  ``received_from`` cursor never skips it). Switched on by
  ``POST /_sandbox/dcl/rmas/settings {"auto_scan_after_seconds": 20, "auto_receive_after_seconds":
  60}`` or, for ``make dev``, by the sandbox process's environment
  ``MIENNE_SANDBOX_DCL_RMA_AUTO=20,60`` (kept across resets).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from mienne_ops.sandbox.dcl_control import instant
from mienne_ops.sandbox.dcl_rules import (
    COUNTRY_ALIASES,
    DEFAULT_DISPOSITIONS,
    DEFAULT_LABEL_SERVICES,
    DEFAULT_LOCATION,
    DEFAULT_RMA_TYPES,
    IDENTIFIER,
    PACIFIC,
    RMA_LINE_STRING_LIMITS,
    RMA_STRING_LIMITS,
    SYSTEM,
    DclError,
    DroppedResponse,
    csv_list,
    day_end,
    optional_text,
    paging,
    parse_instant,
    positive_int,
    require_text,
    to_pacific_naive,
    validate_address,
)

AUTO_ENV = "MIENNE_SANDBOX_DCL_RMA_AUTO"
RMA_NUMBER_LIMIT = 25
RMA_ITEM_LIMIT = 35
RMA_AMOUNT_FIELDS = ("order_amount", "shipping_handling", "sales_tax", "restocking_fee", "total_amount")
RMA_PASSTHROUGH_FIELDS = ("comments", "shipping_instructions", "return_weight_lb", "validate_address")


@dataclass
class RmaSettings:
    """The account's RMA configuration and the RMA drills (reset with the sandbox)."""

    rma_types: set[str] = field(default_factory=lambda: set(DEFAULT_RMA_TYPES))
    dispositions: set[int] = field(default_factory=lambda: set(DEFAULT_DISPOSITIONS))
    label_services: dict[str, set[tuple[str, str]]] = field(
        default_factory=lambda: {country: set(pairs) for country, pairs in DEFAULT_LABEL_SERVICES.items()}
    )
    refuse_labels: bool = False
    auto_scan_after_seconds: float | None = None
    auto_receive_after_seconds: float | None = None

    @classmethod
    def from_env(cls) -> RmaSettings:
        """Defaults, plus the demo's auto mode from ``MIENNE_SANDBOX_DCL_RMA_AUTO="<scan s>,<receive s>"``
        (unset in tests; kept across ``/_sandbox/reset``)."""
        settings = cls()
        raw = os.environ.get(AUTO_ENV, "").strip()
        if raw:
            scan, _, receive = raw.partition(",")
            settings.auto_scan_after_seconds = float(scan) if scan.strip() else None
            settings.auto_receive_after_seconds = float(receive) if receive.strip() else None
        return settings

    @property
    def auto_on(self) -> bool:
        return self.auto_scan_after_seconds is not None or self.auto_receive_after_seconds is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rma_types": sorted(self.rma_types),
            "dispositions": sorted(self.dispositions),
            "label_services": {
                c: sorted(map(list, pairs)) for c, pairs in sorted(self.label_services.items())
            },
            "refuse_labels": self.refuse_labels,
            "auto_scan_after_seconds": self.auto_scan_after_seconds,
            "auto_receive_after_seconds": self.auto_receive_after_seconds,
        }

    def configure(self, body: dict[str, Any]) -> None:
        """Apply a control body; anything unknown or mistyped is a 400 and changes nothing."""
        unknown = sorted(set(body) - set(self.as_dict()))
        if unknown:
            raise DclError(400, 13, f"unknown setting(s): {', '.join(unknown)}")
        updates: dict[str, Any] = {}
        if "rma_types" in body:
            types = body["rma_types"]
            if not isinstance(types, list) or not types or not all(isinstance(t, str) and t for t in types):
                raise DclError(400, 13, "rma_types must be a non-empty list of strings")
            updates["rma_types"] = set(types)
        if "dispositions" in body:
            codes = body["dispositions"]
            if not isinstance(codes, list) or not codes or not all(_is_int(c) for c in codes):
                raise DclError(400, 13, "dispositions must be a non-empty list of integers")
            updates["dispositions"] = set(codes)
        if "label_services" in body:
            updates["label_services"] = _label_services(body["label_services"])
        if "refuse_labels" in body:
            if not isinstance(body["refuse_labels"], bool):
                raise DclError(400, 13, "refuse_labels must be true or false")
            updates["refuse_labels"] = body["refuse_labels"]
        for name in ("auto_scan_after_seconds", "auto_receive_after_seconds"):
            if name in body:
                value = body[name]
                ok = value is None or (not isinstance(value, bool) and isinstance(value, (int, float)))
                if not ok or (value is not None and value < 0):
                    raise DclError(400, 13, f"{name} must be a number of at least 0, or null")
                updates[name] = None if value is None else float(value)
        for name, value in updates.items():
            setattr(self, name, value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _label_services(raw: Any) -> dict[str, set[tuple[str, str]]]:
    if not isinstance(raw, dict):
        raise DclError(400, 13, "label_services must be an object of country: [[carrier, service], ...]")
    services: dict[str, set[tuple[str, str]]] = {}
    for country, pairs in raw.items():
        ok = isinstance(pairs, list) and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) and x for x in p) for p in pairs
        )
        if not ok:
            raise DclError(400, 13, f"label_services.{country} must be a list of [carrier, service]")
        services[str(country).upper()] = {(c.upper(), s.upper()) for c, s in pairs}
    return services


class ReturnDesk:
    """`POST /rmas`, `GET /rmas` and the RMA control routes (receipts, scans, the portal)."""

    # Provided by the DCL `Sandbox` this is mixed into.
    world: Any
    items: dict[str, Any]
    location_codes: Any
    adjust_inventory: Callable[..., None]
    rma_settings: RmaSettings
    drop_response_after_create: bool

    # -- POST /rmas -----------------------------------------------------------------------------
    def create_rma(self, params, body: Any, base_url: str = "") -> tuple[int, dict[str, Any]]:
        doc = self._validate_rma(body)
        with self.world.tx():
            number = doc["rma_number"] or self._new_rma_number()
            if self.world.get(SYSTEM, "rma", number) is not None:
                raise DclError(400, 22, f"RMA number already exists: {number}")
            doc["rma_number"] = number
            if doc.pop("generate_return_service_label"):
                refusal = self._label_refusal(doc)
                if refusal is not None:
                    return 200, {"error_code": 15, "error_message": f"Return label not available: {refusal}"}
                self._attach_label(doc, base_url)
            self._store_rma(doc, source="api", location=DEFAULT_LOCATION, created_at=self.world.now())
        if self.drop_response_after_create:  # the reconciliation drill of `POST /limits`
            self.drop_response_after_create = False
            raise DroppedResponse()
        answer = {"rma_number": number}
        if doc["return_label_url"]:
            answer["return_label_url"] = doc["return_label_url"]
            answer["return_label_tracking_number"] = doc["return_label_tracking_number"]
        return 201, answer

    def _validate_rma(self, body: Any) -> dict[str, Any]:
        from mienne_ops.sandbox import credentials

        body = body if isinstance(body, dict) else {}
        account = require_text(body, "account_number", 10)
        if account != credentials.DCL["account_number"]:
            raise DclError(400, 13, "Invalid value in account_number")
        number = optional_text(body, "rma_number", RMA_NUMBER_LIMIT)
        if number and not IDENTIFIER.match(number):
            raise DclError(400, 13, "Invalid characters in rma_number")
        doc: dict[str, Any] = {"rma_number": number}
        doc.update({name: optional_text(body, name, limit) for name, limit in RMA_STRING_LIMITS.items()})
        doc["rma_date"] = _rma_date(body.get("rma_date"))
        doc["shipping_address"] = validate_address(body.get("shipping_address"), "shipping_address")
        rma_type = require_text(body, "rma_type", 10)
        if rma_type not in self.rma_settings.rma_types:
            raise DclError(400, 13, "Invalid value in rma_type")
        doc["rma_type"] = rma_type
        disposition = body.get("disposition")
        if disposition is None:
            raise DclError(400, 10, "Missing required field: disposition")
        if not _is_int(disposition) or disposition not in self.rma_settings.dispositions:
            raise DclError(400, 13, "Invalid value in disposition")
        doc["disposition"] = disposition
        doc["lines"] = self._validate_rma_lines(body.get("lines"))
        label = body.get("generate_return_service_label", False)
        if not isinstance(label, bool):
            raise DclError(400, 13, "Invalid characters in generate_return_service_label")
        if label:
            for name in ("shipping_carrier", "shipping_service"):
                if not doc[name]:
                    raise DclError(400, 10, f"Missing required field: {name}")
        doc["generate_return_service_label"] = label
        for name in (*RMA_AMOUNT_FIELDS, *RMA_PASSTHROUGH_FIELDS):
            if name in body:
                doc[name] = body[name]
        return doc

    def _validate_rma_lines(self, raw_lines: Any) -> list[dict[str, Any]]:
        if not isinstance(raw_lines, list) or not raw_lines:
            raise DclError(400, 10, "Missing required field: lines")
        lines = []
        for raw in raw_lines:
            raw = raw if isinstance(raw, dict) else {}
            item = require_text(raw, "item_number", RMA_ITEM_LIMIT, "lines.")
            if item not in self.items:
                raise DclError(400, 12, f"Item number not found: {item}")
            line = {
                "item_number": item,
                "quantity": positive_int(raw, "quantity", "lines."),
                "quantity_received": 0,
                **{
                    name: optional_text(raw, name, limit, "lines.")
                    for name, limit in RMA_LINE_STRING_LIMITS.items()
                },
            }
            line["description"] = line["description"] or self.items[item].title
            if "price" in raw:
                line["price"] = raw["price"]
            lines.append(line)
        return lines

    def _new_rma_number(self) -> str:
        while True:
            number = f"RMA{self.world.next_id('dcl:rma_number', 100_001)}"
            if self.world.get(SYSTEM, "rma", number) is None:
                return number

    def _label_refusal(self, doc: dict[str, Any]) -> str | None:
        """Why no label can be made for this RMA (None: it can)."""
        if self.rma_settings.refuse_labels:
            return "the carrier did not answer"
        country = doc["shipping_address"]["country"]
        country = COUNTRY_ALIASES.get(country, country)
        supported = self.rma_settings.label_services.get(country)
        if not supported:
            return f"no return service for country {country}"
        pair = (doc["shipping_carrier"].upper(), doc["shipping_service"].upper())
        if pair not in supported:
            return f"{pair[0]} {pair[1]} is not a return service for {country}"
        return None

    def _attach_label(self, doc: dict[str, Any], base_url: str) -> None:
        carrier, service = doc["shipping_carrier"].upper(), doc["shipping_service"].upper()
        doc["return_label_tracking_number"] = self._return_tracking_number(carrier)
        doc["return_label_url"] = (
            f"{base_url}/_sandbox/dcl/labels/{_slug(carrier)}/{_slug(service)}/"
            f"{quote(doc['rma_number'], safe='')}.pdf"
        )

    def _return_tracking_number(self, carrier: str) -> str:
        sequence = self.world.next_id("dcl:return_tracking", 1)
        if carrier == "UPS":
            return f"1Z999RR9{sequence:010d}"
        if carrier == "USPS":
            return f"9202{sequence:018d}"
        if carrier == "CANADA POST":
            return f"RT{sequence:09d}CA"
        return f"DCLR{sequence:012d}"

    def _store_rma(self, doc: dict[str, Any], *, source: str, location: str, created_at: datetime) -> None:
        doc.setdefault("return_label_url", None)
        doc.setdefault("return_label_tracking_number", None)
        doc.update(
            {
                "seq": self.world.next_id("dcl:rma_seq"),
                "source": source,
                "location": location,
                "created_at": created_at.isoformat(),
                "rma_date": doc["rma_date"] or created_at.astimezone(PACIFIC).date().isoformat(),
                "first_scan_at": None,
                "cancelled_at": None,
                "expired_at": None,
                "receipts": [],
            }
        )
        self.world.put(SYSTEM, "rma", doc["rma_number"], doc)

    # -- GET /rmas ------------------------------------------------------------------------------
    def get_rmas(self, params, body: Any = None) -> tuple[int, dict[str, Any]]:
        page, page_size = paging(params, "rmas")
        rmas = self._all_rmas()
        numbers = set(csv_list(params.get("rma_numbers")))
        if numbers:
            rmas = [r for r in rmas if r["rma_number"] in numbers]
        if params.get("created_from"):
            since = parse_instant(params["created_from"], "created_from")
            rmas = [r for r in rmas if _at(r["created_at"]) >= since]
        if params.get("created_to"):
            until = _upper_bound(params["created_to"], "created_to")
            rmas = [r for r in rmas if until(_at(r["created_at"]))]
        if params.get("received_from"):
            since = parse_instant(params["received_from"], "received_from")
            rmas = [r for r in rmas if any(_at(x["received_at"]) >= since for x in r["receipts"])]
        if params.get("received_to"):
            until = _upper_bound(params["received_to"], "received_to")
            rmas = [r for r in rmas if any(until(_at(x["received_at"])) for x in r["receipts"])]
        start = (page - 1) * page_size
        shown = [render_rma(r) for r in rmas[start : start + page_size]]
        fields = csv_list(params.get("fields"))
        if fields:
            shown = [{k: v for k, v in rma.items() if k in fields} for rma in shown]
        return 200, {"rmas": shown}

    def _all_rmas(self) -> list[dict[str, Any]]:
        return sorted(self.world.list(SYSTEM, "rma"), key=lambda r: r["seq"])

    def open_rma_quantities(self) -> dict[tuple[str, str], int]:
        """(item_number, warehouse) → units live RMAs still expect (``open_rma`` of ``GET /items``)."""
        open_units: dict[tuple[str, str], int] = {}
        for rma in self.world.list(SYSTEM, "rma"):
            if rma["cancelled_at"] or rma["expired_at"]:
                continue
            for line in rma["lines"]:
                left = line["quantity"] - line["quantity_received"]
                if left > 0:
                    key = (line["item_number"], rma["location"])
                    open_units[key] = open_units.get(key, 0) + left
        return open_units

    # -- control plane --------------------------------------------------------------------------
    def list_rmas(self) -> list[dict[str, Any]]:
        self.advance_rmas()
        return [{**render_rma(r), "location": r["location"], "source": r["source"]} for r in self._all_rmas()]

    def create_portal_rma(self, body: dict[str, Any]) -> dict[str, Any]:
        """An RMA typed in DCL's portal (mienne-ops never asked for it); never a label."""
        from mienne_ops.sandbox import credentials

        body = dict(body)
        location = str(body.pop("location", None) or DEFAULT_LOCATION).upper()
        if location not in self.location_codes:
            raise DclError(400, 13, "Invalid characters in location")
        created_at = instant(body.pop("created_at", None), "created_at") or self.world.now()
        body["account_number"] = credentials.DCL["account_number"]
        body["generate_return_service_label"] = False
        doc = self._validate_rma(body)
        doc.pop("generate_return_service_label")
        with self.world.tx():
            doc["rma_number"] = doc["rma_number"] or self._new_rma_number()
            if self.world.get(SYSTEM, "rma", doc["rma_number"]) is not None:
                raise DclError(400, 22, f"RMA number already exists: {doc['rma_number']}")
            self._store_rma(doc, source="portal", location=location, created_at=created_at)
        return render_rma(doc)

    def scan_rma(self, rma_number: str, at: datetime | None = None) -> dict[str, Any]:
        with self.world.tx():
            rma = self._rma(rma_number)
            if not rma["first_scan_at"]:
                rma["first_scan_at"] = (at or self.world.now()).isoformat()
                self.world.put(SYSTEM, "rma", rma_number, rma)
        return render_rma(rma)

    def close_rma(self, rma_number: str, how: str, at: datetime | None = None) -> dict[str, Any]:
        """``cancelled`` or ``expired``, as DCL's staff would set it."""
        with self.world.tx():
            rma = self._rma(rma_number)
            rma[f"{how}_at"] = rma[f"{how}_at"] or (at or self.world.now()).isoformat()
            self.world.put(SYSTEM, "rma", rma_number, rma)
        return render_rma(rma)

    def receive_rma(
        self,
        rma_number: str,
        lines: list[dict[str, Any]] | None = None,
        received_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Append a receipt: what arrived, as counted (over-quantities and unlisted items included)."""
        with self.world.tx():
            rma = self._rma(rma_number)
            if lines is None:
                lines = [
                    {"item_number": line["item_number"], "quantity": left, "condition": "good"}
                    for line in rma["lines"]
                    if (left := line["quantity"] - line["quantity_received"]) > 0
                ]
            if not lines:
                raise DclError(409, 30, "Nothing to receive")
            for entry in lines:
                item, quantity = entry["item_number"], int(entry["quantity"])
                self._count_received(rma, item, quantity)
                if item in self.items:
                    on_hold = quantity if entry["condition"] == "damaged" else 0
                    self.adjust_inventory(item, rma["location"], quantity, on_hold=on_hold)
            receipt = {
                "receipt_id": f"RR{self.world.next_id('dcl:rma_receipt', 700_000)}",
                "received_at": (received_at or self.world.now()).isoformat(),
                "lines": [
                    {
                        "item_number": e["item_number"],
                        "quantity": int(e["quantity"]),
                        "condition": e["condition"],
                    }
                    for e in lines
                ],
            }
            rma["receipts"].append(receipt)
            self.world.put(SYSTEM, "rma", rma_number, rma)
        return render_receipt(receipt)

    @staticmethod
    def _count_received(rma: dict[str, Any], item: str, quantity: int) -> None:
        mine = [line for line in rma["lines"] if line["item_number"] == item]
        if not mine:
            rma["lines"].append(
                {"item_number": item, "description": item, "quantity": 0, "quantity_received": 0}
            )
            mine = [rma["lines"][-1]]
        for line in mine:  # fill the lines in order; the last one takes any excess
            room = max(0, line["quantity"] - line["quantity_received"])
            taken = quantity if line is mine[-1] else min(room, quantity)
            line["quantity_received"] += taken
            quantity -= taken

    def _rma(self, rma_number: str) -> dict[str, Any]:
        rma = self.world.get(SYSTEM, "rma", rma_number)
        if rma is None:
            raise DclError(404, 31, f"RMA not found: {rma_number}")
        return rma

    def label_document(self, rma_number: str) -> bytes | None:
        rma = self.world.get(SYSTEM, "rma", rma_number)
        if rma is None or not rma.get("return_label_url"):
            return None
        text = (
            f"RETURN LABEL {rma['rma_number']} {rma['shipping_carrier']} {rma['shipping_service']}"
            f" tracking {rma['return_label_tracking_number']}"
        )
        return f"%PDF-1.4\n% mienne-ops sandbox\n({text})\n%%EOF\n".encode()

    # -- demo auto mode -------------------------------------------------------------------------
    def advance_rmas(self) -> None:
        """Auto mode (the demo): scan and receive RMAs whose time has come. Off by default."""
        settings = self.rma_settings
        scan_after, receive_after = settings.auto_scan_after_seconds, settings.auto_receive_after_seconds
        if not settings.auto_on:
            return
        now = self.world.now()
        with self.world.tx():  # one request thread at a time: an RMA is received once
            for rma in self.world.list(SYSTEM, "rma"):
                if rma["cancelled_at"] or rma["expired_at"]:
                    continue
                age = now - _at(rma["created_at"])
                if (
                    scan_after is not None
                    and not rma["first_scan_at"]
                    and age >= timedelta(seconds=scan_after)
                ):
                    self.scan_rma(rma["rma_number"], now)
                if (
                    receive_after is not None
                    and not rma["receipts"]
                    and age >= timedelta(seconds=receive_after)
                ):
                    self.receive_rma(rma["rma_number"], None, now)


# -- rendering ------------------------------------------------------------------------------------


def render_rma(rma: dict[str, Any]) -> dict[str, Any]:
    return {
        "rma_number": rma["rma_number"],
        "rma_date": rma["rma_date"],
        "original_order_number": rma.get("original_order_number") or None,
        "customer_number": rma.get("customer_number") or None,
        "cancelled_date": _pacific(rma["cancelled_at"]),
        "expired_date": _pacific(rma["expired_at"]),
        "first_scan_date": _pacific(rma["first_scan_at"]),
        "return_label_url": rma["return_label_url"],
        "return_label_tracking_number": rma["return_label_tracking_number"],
        "shipping_carrier": rma.get("shipping_carrier") or None,
        "shipping_service": rma.get("shipping_service") or None,
        "disposition": rma["disposition"],
        "rma_type": rma["rma_type"],
        "lines": [
            {
                "item_number": line["item_number"],
                "description": line.get("description") or None,
                "quantity": line["quantity"],
                "quantity_received": line["quantity_received"],
                "serial_number": line.get("serial_number") or None,
            }
            for line in rma["lines"]
        ],
        "receipts": [render_receipt(receipt) for receipt in rma["receipts"]],
    }


def render_receipt(receipt: dict[str, Any]) -> dict[str, Any]:
    return {
        "receipt_id": receipt["receipt_id"],
        "received_date": _pacific(receipt["received_at"]),
        "lines": receipt["lines"],
    }


def _pacific(value: str | None) -> str | None:
    return to_pacific_naive(_at(value)) if value else None


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _upper_bound(raw: str, field: str) -> Callable[[datetime], bool]:
    """``*_to``: a date means up to the end of that day; a datetime is inclusive."""
    if len(raw.strip()) == 10:
        end = day_end(raw, field)
        return lambda moment: moment < end
    limit = parse_instant(raw, field)
    return lambda moment: moment <= limit


def _rma_date(value: Any) -> str | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError as error:
        raise DclError(400, 13, "Invalid characters in rma_date") from error


def _slug(text: str) -> str:
    return "-".join(text.lower().split())
