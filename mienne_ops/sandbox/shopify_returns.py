"""Returns in the Shopify fake: returns, reverse fulfillment orders and deliveries, returnProcess.

`ReturnDesk` is mixed into the Shopify `Sandbox` (storage, the customer's request, carrier delivery
and back-dating controls), `ReturnResolvers` into its GraphQL `Resolvers` (the 2026-04 return
queries and mutations). Rules enforced (shopify.md §5.x; the 2026-04 schema's types, descriptions
and `ReturnErrorCode`), every refusal a ``userErrors`` entry with HTTP 200:

- statuses: REQUESTED -> OPEN (``returnApproveRequest``) or DECLINED (``returnDeclineRequest``);
  OPEN -> CLOSED (``returnClose``) or CANCELED (``returnCancel``, only while nothing is processed or
  refunded: "only available before any work has been done"); any other transition INVALID_STATE;
  ``returnProcess`` and new reverse deliveries need an OPEN return (INVALID_STATE otherwise);
- a return line is a fulfillment line item of that order (NOT_FOUND otherwise; a cancelled
  fulfillment has nothing returnable); quantity > 0 (GREATER_THAN, "should be greater than the
  minimum"), and per fulfillment line item at most what was fulfilled minus the units already in
  returns that were not declined or cancelled (LESS_THAN_OR_EQUAL_TO, "should be less than or equal
  to the maximum" — the schema's code for it); unknown ids NOT_FOUND;
- ``returnCreate`` (OPEN) and an approved request get ONE reverse fulfillment order covering every
  return line (our design choice: Shopify may split by location); a REQUESTED return has none yet;
- ``reverseDeliveryCreateWithShipping``: lines of that reverse fulfillment order (none = all units),
  quantity within the line's total; the label's ``fileUrl`` and the tracking ``url`` must be http(s)
  URLs (INVALID); the carrier name is guessed from the number as for fulfillments;
- ``returnProcess``: quantity ≤ quantity − processed; dispositions (optional) name the reverse
  fulfillment order line of that return line and add up to the processed quantity (INVALID
  otherwise); RESTOCKED puts the units back into ``available`` at ``locationId`` (default: the
  location the order line was fulfilled from — our design choice), other types leave stock alone;
  ``financialTransfer.issueRefund`` books a refund through the SAME machinery as ``refundCreate``
  (`shopify_refunds.apply_refund`: refundable limits, each parent payment's remainder, the order's
  refunds, transactions and financial status, refunds/create) of the processed units with
  restockType RETURN (stock moves only by the dispositions), the currency must be the order's; the
  return's ``note`` becomes the refund's note (our design choice, unverified). A return is not
  closed by processing (close it with ``returnClose``; unverified whether Shopify auto-closes);
- ``Order.returnStatus`` (and the ``return_status`` search field of ``orders``): RETURN_REQUESTED
  when a return waits for approval, else IN_PROGRESS while one is OPEN with units unprocessed,
  INSPECTION_COMPLETE when every OPEN one is processed, RETURNED when only closed ones remain,
  NO_RETURN otherwise (declined and cancelled ones count for nothing) — the precedence is our
  design choice. Every return change saves its order, so the order's ``updated_at`` moves
  (unverified for Shopify; it is what the client's return poll relies on).

Webhooks (REST shape, ``admin_graphql_api_id`` + numeric ``id``, ``order_id``, lower-case
``status``, ``return_line_items`` …; the field set is our reading of Shopify's samples
(unverified)): returns/request, returns/approve, returns/decline, returns/process, returns/close,
returns/cancel, reverse_deliveries/attach_deliverable.

Control plane (under ``/_sandbox/shopify``):

- ``POST /orders/{id}/return_requests`` ``{"lines": [{"sku", "quantity", "reason"?}],
  "customer_note"?}`` — what a customer does in the Customer Account API / online store: a REQUESTED
  return (units taken from the SKU's fulfillments in order) -> 201 ``{"return"}``; fires
  returns/request. Refusals answer 422 ``{"errors": {field: [message]}}``, unknown order 404.
- ``POST /fulfillments/{id}/delivered`` ``{"at": iso}`` (default now): the carrier delivered it —
  ``deliveredAt``, ``displayStatus`` DELIVERED; fires fulfillments/update.
- ``POST /fulfillments/{id}/backdate`` ``{"created_at": iso}``: the fulfillment happened then
  (simulated time for return windows; never after its delivery, never in the future).
- ``POST /products/tags`` ``{"sku", "tags": [..]}``: the product of that SKU carries these tags
  (``Product.tags``, e.g. ``final-sale``), read through ``LineItem.product``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from mienne_ops.sandbox.catalog import Catalog
from mienne_ops.sandbox.shopify_graphql import connection, gid, parse_gid, parse_time
from mienne_ops.sandbox.shopify_orders import (
    UserErrors,
    detect_carrier,
    line_item_node,
    money_bag,
    order_node,
    public_order,
    shop_time,
)
from mienne_ops.sandbox.shopify_refunds import apply_refund, cents, dec, line_net, refund_node

SYSTEM = "shopify"
ALIVE = ("requested", "open", "closed")  # statuses whose units are taken (not declined/canceled)
RETURN_REASONS = (
    "size_too_small",
    "size_too_large",
    "unwanted",
    "not_as_described",
    "wrong_item",
    "defective",
    "style",
    "color",
    "other",
    "unknown",
)
DECLINE_REASONS = ("return_period_ended", "final_sale", "other")
DISPOSITION_TYPES = ("restocked", "processing_required", "not_restocked", "missing")
ID_STARTS = {
    "return": 9_100_000_000_000_000_001,
    "return_line": 9_110_000_000_000_000_001,
    "reverse_fulfillment_order": 9_120_000_000_000_000_001,
    "reverse_fulfillment_order_line": 9_130_000_000_000_000_001,
    "reverse_delivery": 9_140_000_000_000_000_001,
    "reverse_delivery_line": 9_150_000_000_000_000_001,
    "disposition": 9_160_000_000_000_000_001,
}


def _fail(field: list[str] | None, message: str, code: str) -> UserErrors:
    return UserErrors(field, message, code)


def _is_url(value: Any) -> bool:
    parsed = urlparse(str(value or ""))
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


# -- fulfillment line items of an order -----------------------------------------------------------
def fulfillment_line_number(fl: dict[str, Any]) -> int:
    """The number in a FulfillmentLineItem GID (legacy fixture fulfillments use the line id)."""
    return int(fl.get("fulfillment_line_item_id") or fl["id"])


def fulfillment_lines(order: dict[str, Any]) -> dict[int, tuple[dict, dict]]:
    """FulfillmentLineItem number -> (fulfillment, its line) for the order's live fulfillments."""
    found = {}
    for fulfillment in order.get("fulfillments") or []:
        if str(fulfillment.get("status") or "success").lower() in ("cancelled", "error", "failure"):
            continue
        for fl in fulfillment.get("line_items") or []:
            found[fulfillment_line_number(fl)] = (fulfillment, fl)
    return found


def taken_units(returns: list[dict[str, Any]]) -> dict[int, int]:
    """FulfillmentLineItem number -> units in returns that were not declined or cancelled."""
    taken: dict[int, int] = {}
    for ret in returns:
        if ret["status"] in ALIVE:
            for line in ret["lines"]:
                number = line["fulfillment_line_item_id"]
                taken[number] = taken.get(number, 0) + int(line["quantity"])
    return taken


def returnable_units(order: dict[str, Any], returns: list[dict[str, Any]]) -> dict[int, int]:
    """FulfillmentLineItem number -> units that can be returned now."""
    taken = taken_units(returns)
    return {
        number: max(0, int(fl.get("quantity") or 0) - taken.get(number, 0))
        for number, (_, fl) in fulfillment_lines(order).items()
    }


def order_return_status(returns: list[dict[str, Any]]) -> str:
    statuses = [r["status"] for r in returns]
    if "requested" in statuses:
        return "RETURN_REQUESTED"
    open_ones = [r for r in returns if r["status"] == "open"]
    if open_ones:
        done = all(line["processed_quantity"] >= line["quantity"] for r in open_ones for line in r["lines"])
        return "INSPECTION_COMPLETE" if done else "IN_PROGRESS"
    if "closed" in statuses:
        return "RETURNED"
    return "NO_RETURN"


# -- the desk (mixed into the Sandbox) --------------------------------------------------------------
class ReturnDesk:
    """Return storage and control routes of the Shopify `Sandbox` (mixed in)."""

    world: Any
    catalog: Catalog
    inventory: Any

    def _new_id(self, kind: str, start: int) -> int:  # provided by the Sandbox
        raise NotImplementedError

    def load_order(self, order_id: int) -> dict[str, Any] | None:  # provided by the Sandbox
        raise NotImplementedError

    def save_order(self, order: dict[str, Any]) -> None:  # provided by the Sandbox
        raise NotImplementedError

    def emit(self, topic: str, payload: dict[str, Any]) -> None:  # provided by the Sandbox
        raise NotImplementedError

    def return_id(self, kind: str) -> int:
        return self._new_id(kind, ID_STARTS[kind])

    # -- storage ------------------------------------------------------------------------------
    def returns_of(self, order_id: int) -> list[dict[str, Any]]:
        found = [r for r in self.world.list(SYSTEM, "return") if r["order_id"] == order_id]
        return sorted(found, key=lambda r: r["id"])

    def load_return(self, return_id: int | None) -> dict[str, Any] | None:
        return self.world.get(SYSTEM, "return", return_id) if return_id else None

    def save_return(self, ret: dict[str, Any], order: dict[str, Any]) -> None:
        """Store the return and its order (returnStatus refreshed, ``updated_at`` moved)."""
        ret["updated_at"] = shop_time(self.world.now())
        self.world.put(SYSTEM, "return", ret["id"], ret)
        others = [r for r in self.returns_of(order["id"]) if r["id"] != ret["id"]]
        order["_return_status"] = order_return_status([*others, ret]).lower()
        self.save_order(order)

    def find_rfo(self, rfo_number: int | None) -> tuple[dict, dict] | None:
        """(return, reverse fulfillment order) for a ReverseFulfillmentOrder number."""
        for ret in self.world.list(SYSTEM, "return") if rfo_number else ():
            for rfo in ret.get("rfos") or []:
                if rfo["id"] == rfo_number:
                    return ret, rfo
        return None

    def find_delivery(self, number: int | None) -> tuple[dict, dict, dict] | None:
        for ret in self.world.list(SYSTEM, "return") if number else ():
            for rfo in ret.get("rfos") or []:
                for delivery in rfo.get("deliveries") or []:
                    if delivery["id"] == number:
                        return ret, rfo, delivery
        return None

    def product_tags(self, product_id: Any) -> list[str]:
        found = self.world.get(SYSTEM, "product_tags", product_id) if product_id else None
        return list((found or {}).get("tags") or [])

    # -- opening a return -----------------------------------------------------------------------
    def open_return(
        self,
        order: dict[str, Any],
        items: list[dict[str, Any]],
        *,
        status: str,
        field: list[str],
        requested_at: str | None = None,
    ) -> dict[str, Any]:
        """Check and store a new return (``ReturnLineItemInput`` / ``ReturnRequestLineItemInput``
        items); raises `UserErrors` when Shopify would refuse it. Not saved: the caller saves."""
        if not items:
            raise _fail([*field, "returnLineItems"], "Return line items can't be blank.", "BLANK")
        returnable = returnable_units(order, self.returns_of(order["id"]))
        located = fulfillment_lines(order)
        asked: dict[int, int] = {}
        lines = []
        for index, item in enumerate(items):
            where = [*field, "returnLineItems", str(index)]
            number = parse_gid(str(item.get("fulfillmentLineItemId")), "FulfillmentLineItem")
            if number is None or number not in located:
                raise _fail(
                    [*where, "fulfillmentLineItemId"], "Fulfillment line item does not exist.", "NOT_FOUND"
                )
            quantity = int(item.get("quantity") or 0)
            if quantity <= 0:
                raise _fail([*where, "quantity"], "Quantity must be greater than 0.", "GREATER_THAN")
            asked[number] = asked.get(number, 0) + quantity
            if asked[number] > returnable.get(number, 0):
                raise _fail(
                    [*where, "quantity"],
                    "Quantity must be less than or equal to the returnable quantity "
                    f"({returnable.get(number, 0)}).",
                    "LESS_THAN_OR_EQUAL_TO",
                )
            reason = str(item.get("returnReason") or "unknown").lower()
            if reason not in RETURN_REASONS:
                raise _fail([*where, "returnReason"], "Return reason is invalid.", "INCLUSION")
            fulfillment, fl = located[number]
            lines.append(
                {
                    "id": self.return_id("return_line"),
                    "fulfillment_id": fulfillment["id"],
                    "fulfillment_line_item_id": number,
                    "line_item_id": fl["id"],
                    "quantity": quantity,
                    "processed_quantity": 0,
                    "refunded_quantity": 0,
                    "return_reason": reason,
                    "return_reason_note": str(item.get("returnReasonNote") or ""),
                    "customer_note": item.get("customerNote"),
                }
            )
        now = shop_time(self.world.now())
        return_id = self.return_id("return")
        ret: dict[str, Any] = {
            "id": return_id,
            "admin_graphql_api_id": gid("Return", return_id),
            "order_id": order["id"],
            "name": f"{order['name']}-R{len(self.returns_of(order['id'])) + 1}",
            "status": status,
            "created_at": requested_at or now,
            "request_approved_at": None,
            "closed_at": None,
            "decline": None,
            "lines": lines,
            "rfos": [],
            "refund_ids": [],
        }
        if status == "open":
            self.add_reverse_fulfillment_order(ret)
        return ret

    def add_reverse_fulfillment_order(self, ret: dict[str, Any]) -> None:
        rfo_id = self.return_id("reverse_fulfillment_order")
        ret["rfos"].append(
            {
                "id": rfo_id,
                "status": "open",
                "lines": [
                    {
                        "id": self.return_id("reverse_fulfillment_order_line"),
                        "return_line_id": line["id"],
                        "fulfillment_line_item_id": line["fulfillment_line_item_id"],
                        "total_quantity": line["quantity"],
                        "dispositions": [],
                    }
                    for line in ret["lines"]
                ],
                "deliveries": [],
            }
        )

    def request_return(self, order_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """A customer's return request (Customer Account API / online store): lines by SKU."""
        with self.world.tx():
            order = self.load_order(order_id)
            if order is None:
                raise _fail(["orderId"], "Order does not exist.", "NOT_FOUND")
            returnable = returnable_units(order, self.returns_of(order["id"]))
            located = fulfillment_lines(order)
            items = []
            for index, wanted in enumerate(body.get("lines") or []):
                if not isinstance(wanted, dict):
                    raise ValueError(f"lines[{index}] must be an object")
                left = int(wanted.get("quantity") or 1)
                reason = str(wanted.get("reason") or "unknown").lower()
                for number, (_, fl) in located.items():
                    if left <= 0:
                        break
                    take = min(left, returnable.get(number, 0))
                    if fl.get("sku") == wanted.get("sku") and take > 0:
                        items.append(
                            {
                                "fulfillmentLineItemId": gid("FulfillmentLineItem", number),
                                "quantity": take,
                                "returnReason": reason,
                                "customerNote": body.get("customer_note"),
                            }
                        )
                        returnable[number] -= take
                        left -= take
                if left > 0:
                    raise _fail(
                        ["lines", str(index), "quantity"],
                        f"Only {int(wanted.get('quantity') or 1) - left} unit(s) of {wanted.get('sku')!r} "
                        "can be returned.",
                        "LESS_THAN_OR_EQUAL_TO",
                    )
            ret = self.open_return(order, items, status="requested", field=[])
            self.save_return(ret, order)
        self.emit("returns/request", return_payload(ret, order))
        return ret

    # -- carrier and time controls --------------------------------------------------------------
    def find_fulfillment_by_number(self, number: int) -> tuple[dict, dict] | None:
        for order in self.world.list(SYSTEM, "order"):
            for fulfillment in order.get("fulfillments") or []:
                if fulfillment["id"] == number:
                    return self.load_order(order["id"]) or order, fulfillment
        return None

    def mark_delivered(self, number: int, at: datetime) -> dict[str, Any]:
        with self.world.tx():
            found = self.find_fulfillment_by_number(number)
            if found is None:
                raise LookupError(f"no fulfillment {number}")
            order, fulfillment = found
            fulfillment = next(f for f in order["fulfillments"] if f["id"] == number)
            created = parse_time(str(fulfillment.get("created_at") or order["created_at"]))
            if created is not None and at < created:
                raise ValueError("a fulfillment cannot be delivered before it was created")
            fulfillment["delivered_at"] = shop_time(at)
            fulfillment["shipment_status"] = "delivered"
            fulfillment["updated_at"] = shop_time(self.world.now())
            self.save_order(order)
        self.emit("fulfillments/update", dict(fulfillment))
        return fulfillment

    def backdate_fulfillment(self, number: int, created_at: datetime) -> dict[str, Any]:
        with self.world.tx():
            found = self.find_fulfillment_by_number(number)
            if found is None:
                raise LookupError(f"no fulfillment {number}")
            order, _ = found
            fulfillment = next(f for f in order["fulfillments"] if f["id"] == number)
            if created_at > self.world.now():
                raise ValueError("created_at cannot be in the future")
            delivered = parse_time(str(fulfillment.get("delivered_at") or ""))
            if delivered is not None and delivered < created_at:
                raise ValueError("created_at cannot be after the fulfillment's delivery")
            fulfillment["created_at"] = shop_time(created_at)
            self.save_order(order)
        return fulfillment

    def set_product_tags(self, sku: str, tags: list[str]) -> dict[str, Any]:
        item = self.catalog.by_sku().get(sku)
        if item is None:
            raise ValueError(f"unknown sku {sku!r}")
        record = {
            "product_id": item.shopify_product_id,
            "tags": [str(t).strip() for t in tags if str(t).strip()],
        }
        self.world.put(SYSTEM, "product_tags", item.shopify_product_id, record)
        return record

    # -- control routes -------------------------------------------------------------------------
    def return_control_routes(self) -> list[BaseRoute]:
        return [
            Route("/orders/{order_id:int}/return_requests", self._return_request_route, methods=["POST"]),
            Route("/fulfillments/{fulfillment_id:int}/delivered", self._delivered_route, methods=["POST"]),
            Route("/fulfillments/{fulfillment_id:int}/backdate", self._backdate_route, methods=["POST"]),
            Route("/products/tags", self._product_tags_route, methods=["POST"]),
        ]

    async def _body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        body = json.loads(raw) if raw else {}
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        return body

    async def _return_request_route(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        try:
            ret = self.request_return(request.path_params["order_id"], body)
        except UserErrors as error:
            status = (
                404
                if error.errors[0]["code"] == "NOT_FOUND" and error.errors[0]["field"] == ["orderId"]
                else 422
            )
            fields = {".".join(e["field"] or ["base"]): [e["message"]] for e in error.errors}
            return JSONResponse({"errors": fields}, status_code=status)
        order = self.load_order(ret["order_id"]) or {}
        return JSONResponse({"return": return_payload(ret, order)}, status_code=201)

    async def _delivered_route(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        at = parse_time(str(body["at"])) if body.get("at") else self.world.now()
        if at is None:
            return JSONResponse({"errors": "at must be an ISO-8601 time"}, status_code=400)
        try:
            fulfillment = self.mark_delivered(request.path_params["fulfillment_id"], at)
        except LookupError:
            return JSONResponse({"errors": "Not Found"}, status_code=404)
        except ValueError as error:
            return JSONResponse({"errors": str(error)}, status_code=422)
        return JSONResponse({"fulfillment": fulfillment})

    async def _backdate_route(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        created = parse_time(str(body.get("created_at") or ""))
        if created is None:
            return JSONResponse({"errors": "created_at must be an ISO-8601 time"}, status_code=400)
        try:
            fulfillment = self.backdate_fulfillment(request.path_params["fulfillment_id"], created)
        except LookupError:
            return JSONResponse({"errors": "Not Found"}, status_code=404)
        except ValueError as error:
            return JSONResponse({"errors": str(error)}, status_code=422)
        return JSONResponse({"fulfillment": fulfillment})

    async def _product_tags_route(self, request: Request) -> JSONResponse:
        body = await self._body(request)
        tags = body.get("tags")
        if not isinstance(tags, list):
            return JSONResponse({"errors": "tags must be a list"}, status_code=400)
        try:
            record = self.set_product_tags(str(body.get("sku") or ""), tags)
        except ValueError as error:
            return JSONResponse({"errors": str(error)}, status_code=422)
        return JSONResponse({"product": record})


# -- webhook payloads ------------------------------------------------------------------------------
def return_payload(ret: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
    """The returns/* webhook body (REST shape)."""
    lines = {li["id"]: li for li in order.get("line_items") or []}
    return {
        "id": ret["id"],
        "admin_graphql_api_id": ret["admin_graphql_api_id"],
        "name": ret["name"],
        "status": ret["status"],
        "order_id": order["id"],
        "order": {"id": order["id"], "admin_graphql_api_id": order["admin_graphql_api_id"]},
        "total_return_line_items": sum(int(line["quantity"]) for line in ret["lines"]),
        "return_line_items": [
            {
                "id": line["id"],
                "admin_graphql_api_id": gid("ReturnLineItem", line["id"]),
                "fulfillment_line_item": {
                    "id": line["fulfillment_line_item_id"],
                    "admin_graphql_api_id": gid("FulfillmentLineItem", line["fulfillment_line_item_id"]),
                    "line_item": {
                        "id": line["line_item_id"],
                        "admin_graphql_api_id": gid("LineItem", line["line_item_id"]),
                        "sku": (lines.get(line["line_item_id"]) or {}).get("sku"),
                    },
                },
                "quantity": line["quantity"],
                "processed_quantity": line["processed_quantity"],
                "return_reason": line["return_reason"],
                "return_reason_note": line["return_reason_note"],
                "customer_note": line.get("customer_note"),
            }
            for line in ret["lines"]
        ],
        "decline": ret.get("decline"),
        "exchange_line_items": [],
        "return_shipping_fees": [],
    }


def delivery_payload(ret: dict[str, Any], delivery: dict[str, Any]) -> dict[str, Any]:
    """The reverse_deliveries/attach_deliverable body (REST shape)."""
    tracking = delivery.get("tracking") or {}
    label = delivery.get("label") or {}
    return {
        "id": delivery["id"],
        "admin_graphql_api_id": gid("ReverseDelivery", delivery["id"]),
        "return": {"id": ret["id"], "admin_graphql_api_id": ret["admin_graphql_api_id"]},
        "order_id": ret["order_id"],
        "shipping_deliverable": {
            "tracking": {
                "carrier_name": tracking.get("carrier_name"),
                "tracking_number": tracking.get("number"),
                "tracking_url": tracking.get("url"),
            }
            if tracking
            else None,
            "label": {"public_file_url": label.get("file_url"), "created_at": label.get("created_at")}
            if label
            else None,
        },
    }


# -- GraphQL presentation --------------------------------------------------------------------------
class ReturnResolvers:
    """Root fields of returns (mixed into the fake's `Resolvers`)."""

    sandbox: Any
    catalog: Catalog
    world: Any

    def _emit(self, topic: str, payload: dict[str, Any]) -> None:  # provided by Resolvers
        raise NotImplementedError

    # -- nodes ----------------------------------------------------------------------------------
    def order_view(self, order: dict[str, Any]) -> dict[str, Any]:
        """`order_node` plus the order's returns and return status."""
        node = order_node(order, self.catalog)
        returns = self.sandbox.returns_of(order["id"])
        node["returnStatus"] = order_return_status(returns)
        node["returns"] = lambda info, **_: [self._return_node(r, order) for r in returns]
        return node

    def _line_node(self, order: dict[str, Any], line_id: int) -> dict[str, Any]:
        line = next(li for li in order["line_items"] if li["id"] == line_id)
        node = line_item_node(line, self.catalog, order["currency"])
        quantity = int(line["quantity"]) or 1
        node["discountedUnitPriceAfterAllDiscountsSet"] = money_bag(
            None, cents(line_net(line) / quantity), order["currency"]
        )
        node["discountedUnitPriceSet"] = node["discountedUnitPriceAfterAllDiscountsSet"]
        product_id = line.get("product_id")
        node["product"] = (
            {
                "__typename": "Product",
                "id": gid("Product", product_id),
                "legacyResourceId": str(product_id),
                "title": line.get("title") or "",
                "tags": self.sandbox.product_tags(product_id),
            }
            if product_id
            else None
        )
        return node

    def _fli_node(self, order: dict[str, Any], number: int) -> dict[str, Any] | None:
        found = fulfillment_lines(order).get(number)
        if found is None:  # the fulfillment was cancelled since
            for fulfillment in order.get("fulfillments") or []:
                for fl in fulfillment.get("line_items") or []:
                    if fulfillment_line_number(fl) == number:
                        found = (fulfillment, fl)
        if found is None:
            return None
        _, fl = found
        return {
            "__typename": "FulfillmentLineItem",
            "id": gid("FulfillmentLineItem", number),
            "quantity": fl.get("quantity"),
            "lineItem": self._line_node(order, fl["id"]),
        }

    def _return_node(self, ret: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
        refunds = [r for r in order.get("refunds") or [] if r["id"] in ret.get("refund_ids", [])]
        return {
            "__typename": "Return",
            "id": ret["admin_graphql_api_id"],
            "name": ret["name"],
            "status": ret["status"].upper(),
            "createdAt": ret["created_at"],
            "closedAt": ret.get("closed_at"),
            "requestApprovedAt": ret.get("request_approved_at"),
            "decline": {
                "__typename": "ReturnDecline",
                "reason": ret["decline"]["reason"].upper(),
                "note": ret["decline"].get("note"),
            }
            if ret.get("decline")
            else None,
            "order": lambda info, **_: self.order_view(self.sandbox.load_order(order["id"]) or order),
            "totalQuantity": sum(int(line["quantity"]) for line in ret["lines"]),
            "returnLineItems": [self._return_line_node(line, order) for line in ret["lines"]],
            "reverseFulfillmentOrders": [self._rfo_node(rfo, ret, order) for rfo in ret.get("rfos") or []],
            "refunds": [refund_node(r, order, self.catalog) for r in refunds],
            "returnShippingFees": [],
            "exchangeLineItems": [],
            "transactions": [],
            "staffMember": None,
        }

    def _return_line_node(self, line: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
        unprocessed = int(line["quantity"]) - int(line["processed_quantity"])
        return {
            "__typename": "ReturnLineItem",
            "id": gid("ReturnLineItem", line["id"]),
            "quantity": line["quantity"],
            "processedQuantity": line["processed_quantity"],
            "processableQuantity": unprocessed,
            "unprocessedQuantity": unprocessed,
            "refundedQuantity": line.get("refunded_quantity", 0),
            "refundableQuantity": int(line["quantity"]) - int(line.get("refunded_quantity", 0)),
            "customerNote": line.get("customer_note"),
            "returnReason": line["return_reason"].upper(),
            "returnReasonNote": line.get("return_reason_note") or "",
            "returnReasonDefinition": None,
            "restockingFee": None,
            "totalWeight": None,
            "fulfillmentLineItem": self._fli_node(order, line["fulfillment_line_item_id"]),
        }

    def _rfo_node(self, rfo: dict[str, Any], ret: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
        node: dict[str, Any] = {
            "__typename": "ReverseFulfillmentOrder",
            "id": gid("ReverseFulfillmentOrder", rfo["id"]),
            "status": rfo["status"].upper(),
            "order": lambda info, **_: self.order_view(order),
            "thirdPartyConfirmation": None,
            "lineItems": [
                {
                    "__typename": "ReverseFulfillmentOrderLineItem",
                    "id": gid("ReverseFulfillmentOrderLineItem", line["id"]),
                    "totalQuantity": line["total_quantity"],
                    "fulfillmentLineItem": self._fli_node(order, line["fulfillment_line_item_id"]),
                    "dispositions": [_disposition_node(d, self.catalog) for d in line["dispositions"]],
                }
                for line in rfo["lines"]
            ],
        }
        node["reverseDeliveries"] = [self._delivery_node(d, node) for d in rfo.get("deliveries") or []]
        return node

    def _delivery_node(self, delivery: dict[str, Any], rfo_node: dict[str, Any]) -> dict[str, Any]:
        tracking = delivery.get("tracking")
        label = delivery.get("label")
        return {
            "__typename": "ReverseDelivery",
            "id": gid("ReverseDelivery", delivery["id"]),
            "reverseFulfillmentOrder": rfo_node,
            "deliverable": {
                "__typename": "ReverseDeliveryShippingDeliverable",
                "tracking": {
                    "carrierName": tracking.get("carrier_name"),
                    "number": tracking.get("number"),
                    "url": tracking.get("url"),
                }
                if tracking
                else None,
                "label": {
                    "publicFileUrl": label["file_url"],
                    "createdAt": label["created_at"],
                    "updatedAt": label["created_at"],
                }
                if label
                else None,
            },
            "reverseDeliveryLineItems": [
                {
                    "__typename": "ReverseDeliveryLineItem",
                    "id": gid("ReverseDeliveryLineItem", line["id"]),
                    "quantity": line["quantity"],
                    "dispositions": [],
                    "reverseFulfillmentOrderLineItem": next(
                        (
                            li
                            for li in rfo_node["lineItems"]
                            if li["id"] == gid("ReverseFulfillmentOrderLineItem", line["rfo_line_id"])
                        ),
                        None,
                    ),
                }
                for line in delivery["lines"]
            ],
        }

    def _return_by_gid(self, value: Any) -> tuple[dict, dict] | None:
        ret = self.sandbox.load_return(parse_gid(str(value), "Return"))
        order = self.sandbox.load_order(ret["order_id"]) if ret else None
        return (ret, order) if ret and order else None

    # -- queries --------------------------------------------------------------------------------
    def returnableFulfillments(self, info, orderId, **args) -> dict:
        number = parse_gid(str(orderId), "Order")
        order = self.sandbox.load_order(number) if number else None
        if order is None:
            return connection([], args)
        returnable = returnable_units(order, self.sandbox.returns_of(order["id"]))
        nodes = []
        for fulfillment in order.get("fulfillments") or []:
            items = [
                {
                    "__typename": "ReturnableFulfillmentLineItem",
                    "quantity": returnable[fulfillment_line_number(fl)],
                    "fulfillmentLineItem": self._fli_node(order, fulfillment_line_number(fl)),
                }
                for fl in fulfillment.get("line_items") or []
                if returnable.get(fulfillment_line_number(fl), 0) > 0
            ]
            if items:
                nodes.append(self._returnable_node(order, fulfillment, items))
        return connection(nodes, args)

    def _returnable_node(self, order: dict, fulfillment: dict, items: list[dict]) -> dict[str, Any]:
        from mienne_ops.sandbox.shopify_orders import fulfillment_node

        return {
            "__typename": "ReturnableFulfillment",
            "id": gid("ReturnableFulfillment", fulfillment["id"]),
            "fulfillment": fulfillment_node(fulfillment, order, self.catalog),
            "returnableFulfillmentLineItems": items,
        }

    def returnableFulfillment(self, info, id) -> dict | None:
        number = parse_gid(str(id), "ReturnableFulfillment")
        found = self.sandbox.find_fulfillment_by_number(number) if number else None
        if found is None:
            return None
        order, fulfillment = found
        returnable = returnable_units(order, self.sandbox.returns_of(order["id"]))
        items = [
            {
                "__typename": "ReturnableFulfillmentLineItem",
                "quantity": returnable[fulfillment_line_number(fl)],
                "fulfillmentLineItem": self._fli_node(order, fulfillment_line_number(fl)),
            }
            for fl in fulfillment.get("line_items") or []
            if returnable.get(fulfillment_line_number(fl), 0) > 0
        ]
        return self._returnable_node(order, fulfillment, items)

    def _return_query(self, info, id) -> dict | None:
        found = self._return_by_gid(id)
        return self._return_node(*found) if found else None

    def reverseFulfillmentOrder(self, info, id) -> dict | None:
        found = self.sandbox.find_rfo(parse_gid(str(id), "ReverseFulfillmentOrder"))
        if found is None:
            return None
        ret, rfo = found
        order = self.sandbox.load_order(ret["order_id"])
        return self._rfo_node(rfo, ret, order) if order else None

    def reverseDelivery(self, info, id) -> dict | None:
        found = self.sandbox.find_delivery(parse_gid(str(id), "ReverseDelivery"))
        if found is None:
            return None
        ret, rfo, delivery = found
        order = self.sandbox.load_order(ret["order_id"])
        if order is None:
            return None
        rfo_node = self._rfo_node(rfo, ret, order)
        return next(
            d for d in rfo_node["reverseDeliveries"] if d["id"] == gid("ReverseDelivery", delivery["id"])
        )

    def nodes(self, info, ids) -> list[dict | None]:
        answered = dict(zip(ids, super().nodes(info, ids), strict=True))  # type: ignore[misc]
        for node_id in ids:
            if answered.get(node_id) is None and parse_gid(node_id, "Return") is not None:
                answered[node_id] = self._return_query(info, node_id)
        return [answered.get(i) for i in ids]

    # -- mutations ------------------------------------------------------------------------------
    def _mutate(self, action, payload_key: str = "return") -> dict:
        """Run ``action`` (returns (payload, events)) and answer userErrors for `UserErrors`."""
        try:
            payload, events = action()
        except UserErrors as error:
            return {payload_key: None, "userErrors": error.errors}
        for topic, body in events:
            self._emit(topic, body)
        return {**payload, "userErrors": []}

    def _require(self, return_gid: Any, field: list[str]) -> tuple[dict, dict]:
        found = self._return_by_gid(return_gid)
        if found is None:
            raise _fail(field, "Return does not exist.", "NOT_FOUND")
        return found

    def returnCreate(self, info, returnInput) -> dict:
        def action():
            number = parse_gid(str(returnInput.get("orderId")), "Order")
            order = self.sandbox.load_order(number) if number else None
            if order is None:
                raise _fail(["returnInput", "orderId"], "Order does not exist.", "NOT_FOUND")
            if returnInput.get("exchangeLineItems"):
                raise _fail(
                    ["returnInput", "exchangeLineItems"], "Exchanges are not supported here.", "INVALID"
                )
            requested = returnInput.get("requestedAt")
            moment = parse_time(str(requested)) if requested else None
            if requested and moment is None:
                raise _fail(["returnInput", "requestedAt"], "Requested at is invalid.", "INVALID")
            ret = self.sandbox.open_return(
                order,
                list(returnInput.get("returnLineItems") or []),
                status="open",
                field=["returnInput"],
                requested_at=shop_time(moment) if moment else None,
            )
            self.sandbox.save_return(ret, order)
            return {"return": self._return_node(ret, order)}, []

        return self._mutate(action)

    def returnRequest(self, info, input) -> dict:
        def action():
            number = parse_gid(str(input.get("orderId")), "Order")
            order = self.sandbox.load_order(number) if number else None
            if order is None:
                raise _fail(["input", "orderId"], "Order does not exist.", "NOT_FOUND")
            ret = self.sandbox.open_return(
                order, list(input.get("returnLineItems") or []), status="requested", field=["input"]
            )
            self.sandbox.save_return(ret, order)
            return {"return": self._return_node(ret, order)}, [
                ("returns/request", return_payload(ret, order))
            ]

        return self._mutate(action)

    def returnApproveRequest(self, info, input) -> dict:
        def action():
            ret, order = self._require(input.get("id"), ["input", "id"])
            if ret["status"] != "requested":
                raise _fail(["input", "id"], f"Return is {ret['status']}, not requested.", "INVALID_STATE")
            ret["status"] = "open"
            ret["request_approved_at"] = shop_time(self.world.now())
            self.sandbox.add_reverse_fulfillment_order(ret)
            self.sandbox.save_return(ret, order)
            return {"return": self._return_node(ret, order)}, [
                ("returns/approve", return_payload(ret, order))
            ]

        return self._mutate(action)

    def returnDeclineRequest(self, info, input) -> dict:
        def action():
            ret, order = self._require(input.get("id"), ["input", "id"])
            if ret["status"] != "requested":
                raise _fail(["input", "id"], f"Return is {ret['status']}, not requested.", "INVALID_STATE")
            ret["status"] = "declined"
            ret["decline"] = {"reason": str(input["declineReason"]).lower(), "note": input.get("declineNote")}
            self.sandbox.save_return(ret, order)
            return {"return": self._return_node(ret, order)}, [
                ("returns/decline", return_payload(ret, order))
            ]

        return self._mutate(action)

    def returnClose(self, info, id) -> dict:
        def action():
            ret, order = self._require(id, ["id"])
            if ret["status"] != "open":
                raise _fail(["id"], f"Return is {ret['status']}, not open.", "INVALID_STATE")
            ret["status"] = "closed"
            ret["closed_at"] = shop_time(self.world.now())
            for rfo in ret["rfos"]:
                rfo["status"] = "closed"
            self.sandbox.save_return(ret, order)
            return {"return": self._return_node(ret, order)}, [("returns/close", return_payload(ret, order))]

        return self._mutate(action)

    def returnCancel(self, info, id, **_) -> dict:
        def action():
            ret, order = self._require(id, ["id"])
            if ret["status"] != "open":
                raise _fail(["id"], f"Return is {ret['status']}, not open.", "INVALID_STATE")
            if ret.get("refund_ids") or any(line["processed_quantity"] for line in ret["lines"]):
                raise _fail(["id"], "A return with processed items can't be canceled.", "INVALID_STATE")
            ret["status"] = "canceled"
            for rfo in ret["rfos"]:
                rfo["status"] = "canceled"
            self.sandbox.save_return(ret, order)
            return {"return": self._return_node(ret, order)}, [("returns/cancel", return_payload(ret, order))]

        return self._mutate(action)

    def reverseDeliveryCreateWithShipping(
        self,
        info,
        reverseFulfillmentOrderId,
        reverseDeliveryLineItems,
        trackingInput=None,
        labelInput=None,
        notifyCustomer=True,
    ) -> dict:
        def action():
            found = self.sandbox.find_rfo(
                parse_gid(str(reverseFulfillmentOrderId), "ReverseFulfillmentOrder")
            )
            if found is None:
                raise _fail(
                    ["reverseFulfillmentOrderId"], "Reverse fulfillment order does not exist.", "NOT_FOUND"
                )
            ret, rfo = found
            order = self.sandbox.load_order(ret["order_id"])
            assert order is not None
            rfo = next(r for r in ret["rfos"] if r["id"] == rfo["id"])
            if ret["status"] != "open" or rfo["status"] != "open":
                raise _fail(
                    ["reverseFulfillmentOrderId"],
                    "The reverse fulfillment order is not open.",
                    "INVALID_STATE",
                )
            by_id = {line["id"]: line for line in rfo["lines"]}
            lines = []
            if not reverseDeliveryLineItems:
                lines = [(line["id"], line["total_quantity"]) for line in rfo["lines"]]
            for index, item in enumerate(reverseDeliveryLineItems or []):
                where = ["reverseDeliveryLineItems", str(index)]
                number = parse_gid(
                    str(item.get("reverseFulfillmentOrderLineItemId")), "ReverseFulfillmentOrderLineItem"
                )
                line = by_id.get(number or 0)
                if line is None:
                    raise _fail(
                        [*where, "reverseFulfillmentOrderLineItemId"],
                        "Reverse fulfillment order line item does not exist.",
                        "NOT_FOUND",
                    )
                quantity = int(item.get("quantity") or 0)
                if quantity <= 0:
                    raise _fail([*where, "quantity"], "Quantity must be greater than 0.", "GREATER_THAN")
                if quantity > line["total_quantity"]:
                    raise _fail(
                        [*where, "quantity"],
                        f"Quantity must be less than or equal to {line['total_quantity']}.",
                        "LESS_THAN_OR_EQUAL_TO",
                    )
                lines.append((line["id"], quantity))
            tracking = None
            if trackingInput:
                url = trackingInput.get("url")
                if url is not None and not _is_url(url):
                    raise _fail(["trackingInput", "url"], "Url is invalid.", "INVALID")
                number = trackingInput.get("number")
                guess = detect_carrier(number) if number else None
                tracking = {
                    "number": number,
                    "url": url or (guess[1] if guess else None),
                    "carrier_name": guess[0] if guess else None,
                }
            label = None
            if labelInput:
                if not _is_url(labelInput.get("fileUrl")):
                    raise _fail(["labelInput", "fileUrl"], "File url is invalid.", "INVALID")
                label = {"file_url": labelInput["fileUrl"], "created_at": shop_time(self.world.now())}
            delivery_id = self.sandbox.return_id("reverse_delivery")
            delivery = {
                "id": delivery_id,
                "lines": [
                    {
                        "id": self.sandbox.return_id("reverse_delivery_line"),
                        "rfo_line_id": line_id,
                        "quantity": q,
                    }
                    for line_id, q in lines
                ],
                "tracking": tracking,
                "label": label,
                "notify_customer": bool(notifyCustomer),
                "created_at": shop_time(self.world.now()),
            }
            rfo.setdefault("deliveries", []).append(delivery)
            self.sandbox.save_return(ret, order)
            rfo_node = self._rfo_node(rfo, ret, order)
            node = next(
                d for d in rfo_node["reverseDeliveries"] if d["id"] == gid("ReverseDelivery", delivery_id)
            )
            events = [("reverse_deliveries/attach_deliverable", delivery_payload(ret, delivery))]
            return {"reverseDelivery": node}, events

        return self._mutate(action, "reverseDelivery")

    def returnProcess(self, info, input) -> dict:
        def action():
            ret, order = self._require(input.get("returnId"), ["input", "returnId"])
            if ret["status"] != "open":
                raise _fail(["input", "returnId"], f"Return is {ret['status']}, not open.", "INVALID_STATE")
            if input.get("exchangeLineItems"):
                raise _fail(["input", "exchangeLineItems"], "Exchanges are not supported here.", "INVALID")
            items = list(input.get("returnLineItems") or [])
            if not items:
                raise _fail(["input", "returnLineItems"], "Return line items can't be blank.", "BLANK")
            lines = {line["id"]: line for line in ret["lines"]}
            rfo_lines = {rl["id"]: rl for rfo in ret["rfos"] for rl in rfo["lines"]}
            asked: dict[int, int] = {}
            plan = []  # (return line, quantity, [(rfo line, quantity, type, location)])
            for index, item in enumerate(items):
                where = ["input", "returnLineItems", str(index)]
                line = lines.get(parse_gid(str(item.get("id")), "ReturnLineItem") or 0)
                if line is None:
                    raise _fail([*where, "id"], "Return line item does not exist.", "NOT_FOUND")
                quantity = int(item.get("quantity") or 0)
                if quantity <= 0:
                    raise _fail([*where, "quantity"], "Quantity must be greater than 0.", "GREATER_THAN")
                asked[line["id"]] = asked.get(line["id"], 0) + quantity
                left = int(line["quantity"]) - int(line["processed_quantity"])
                if asked[line["id"]] > left:
                    raise _fail(
                        [*where, "quantity"],
                        f"Quantity must be less than or equal to the unprocessed quantity ({left}).",
                        "LESS_THAN_OR_EQUAL_TO",
                    )
                plan.append(
                    (line, quantity, self._dispositions(item, line, quantity, rfo_lines, order, where))
                )
            refund = self._return_refund(input, ret, order, plan)
            now = shop_time(self.world.now())
            for line, quantity, dispositions in plan:
                line["processed_quantity"] += quantity
                if refund is not None:
                    line["refunded_quantity"] = int(line.get("refunded_quantity", 0)) + quantity
                for rfo_line, count, kind, location in dispositions:
                    rfo_line["dispositions"].append(
                        {
                            "id": self.sandbox.return_id("disposition"),
                            "type": kind,
                            "quantity": count,
                            "location_id": location,
                            "created_at": now,
                        }
                    )
                    if kind == "restocked":
                        order_line = next(
                            li for li in order["line_items"] if li["id"] == line["line_item_id"]
                        )
                        self.sandbox.inventory.restock_at(order_line, location, count)
            events: list[tuple[str, dict]] = []
            if refund is not None:
                ret.setdefault("refund_ids", []).append(refund["id"])
                events.append(("refunds/create", dict(refund)))
            self.sandbox.save_return(ret, order)
            events.append(("returns/process", return_payload(ret, order)))
            if refund is not None:
                events.append(("orders/updated", public_order(order)))
            return {"return": self._return_node(ret, order)}, events

        return self._mutate(action)

    def _dispositions(
        self, item, line, quantity, rfo_lines, order, where
    ) -> list[tuple[dict, int, str, int | None]]:
        given = item.get("dispositions") or []
        if not given:
            return []
        chosen = []
        for index, disposition in enumerate(given):
            here = [*where, "dispositions", str(index)]
            number = parse_gid(
                str(disposition.get("reverseFulfillmentOrderLineItemId")), "ReverseFulfillmentOrderLineItem"
            )
            rfo_line = rfo_lines.get(number or 0)
            if rfo_line is None or rfo_line["return_line_id"] != line["id"]:
                raise _fail(
                    [*here, "reverseFulfillmentOrderLineItemId"],
                    "Reverse fulfillment order line item does not belong to this return line item.",
                    "NOT_FOUND",
                )
            count = int(disposition.get("quantity") or 0)
            if count <= 0:
                raise _fail([*here, "quantity"], "Quantity must be greater than 0.", "GREATER_THAN")
            kind = str(disposition.get("dispositionType") or "").lower()
            location = None
            if disposition.get("locationId"):
                location = parse_gid(str(disposition["locationId"]), "Location")
                if location not in {x.shopify_location_id for x in self.catalog.locations}:
                    raise _fail([*here, "locationId"], "Location does not exist.", "NOT_FOUND")
            elif kind == "restocked":
                location = _fulfilled_from(order, line)
            chosen.append((rfo_line, count, kind, location))
        if sum(count for _, count, _, _ in chosen) != quantity:
            raise _fail(
                [*where, "dispositions"], "Dispositions must add up to the quantity processed.", "INVALID"
            )
        return chosen

    def _return_refund(self, input, ret, order, plan) -> dict[str, Any] | None:
        """Book the refund of ``financialTransfer.issueRefund`` (None without one)."""
        issue = (input.get("financialTransfer") or {}).get("issueRefund")
        if not issue:
            return None
        transactions = []
        for index, tx in enumerate(issue.get("orderTransactions") or []):
            where = ["input", "financialTransfer", "issueRefund", "orderTransactions", str(index)]
            amount = tx.get("transactionAmount") or {}
            if str(amount.get("currencyCode") or "").upper() != order["currency"]:
                raise _fail(
                    [*where, "transactionAmount"], "Currency must be the order's currency.", "INVALID"
                )
            parent_number = parse_gid(str(tx.get("parentId")), "OrderTransaction")
            parent = next((t for t in order.get("_transactions") or [] if t["id"] == parent_number), None)
            transactions.append(
                {
                    "orderId": order["admin_graphql_api_id"],
                    "parentId": tx.get("parentId"),
                    "gateway": (parent or {}).get("gateway"),
                    "kind": "REFUND",
                    "amount": str(dec(amount.get("amount"))),
                }
            )
        request: dict[str, Any] = {
            "orderId": order["admin_graphql_api_id"],
            "note": input.get("note"),
            "notify": bool(input.get("notifyCustomer")),
            "refundLineItems": [
                {
                    "lineItemId": gid("LineItem", line["line_item_id"]),
                    "quantity": quantity,
                    "restockType": "RETURN",
                }
                for line, quantity, _ in plan
            ],
            "transactions": transactions,
            "allowOverRefunding": bool(issue.get("allowOverRefunding")),
        }
        shipping = input.get("refundShipping") or {}
        if shipping.get("fullRefund"):
            request["shipping"] = {"fullRefund": True}
        elif shipping.get("shippingRefundAmount"):
            request["shipping"] = {"amount": str(dec(shipping["shippingRefundAmount"].get("amount")))}
        try:
            refund, _ = apply_refund(
                order, request, new_id=self.sandbox.money_id, now=shop_time(self.world.now())
            )
        except UserErrors as error:
            problem = UserErrors(None, "")
            problem.errors = [
                {
                    "field": ["input", "financialTransfer", *(e["field"] or [])],
                    "message": e["message"],
                    "code": "INVALID",
                }
                for e in error.errors
            ]
            raise problem from None
        refund["return"] = {"id": ret["id"], "admin_graphql_api_id": ret["admin_graphql_api_id"]}
        from mienne_ops.sandbox.shopify_orders import recompute_current_totals

        recompute_current_totals(order)
        return refund


def _fulfilled_from(order: dict[str, Any], line: dict[str, Any]) -> int | None:
    """The location the return line's units were fulfilled from."""
    for fulfillment in order.get("fulfillments") or []:
        if fulfillment["id"] == line.get("fulfillment_id") and fulfillment.get("location_id"):
            return int(fulfillment["location_id"])
    for fo in order.get("_fulfillment_orders") or []:
        if any(li["line_item_id"] == line["line_item_id"] for li in fo["line_items"]):
            return int(fo["assigned_location_id"])
    return None


def _disposition_node(disposition: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    from mienne_ops.sandbox.shopify_orders import location_node

    location = next(
        (x for x in catalog.locations if x.shopify_location_id == disposition.get("location_id")), None
    )
    return {
        "__typename": "ReverseFulfillmentOrderDisposition",
        "id": gid("ReverseFulfillmentOrderDisposition", disposition["id"]),
        "type": disposition["type"].upper(),
        "quantity": disposition["quantity"],
        "createdAt": disposition["created_at"],
        "location": location_node(location) if location else None,
    }


# `return(id:)`: the root field's name is a Python keyword, so the resolver is attached by name.
setattr(ReturnResolvers, "return", ReturnResolvers._return_query)
