"""Fulfillment orders in the Shopify fake: the FO mutations and `fulfillmentCreate`.

The FO model (statuses, routing, GraphQL shape) lives in `shopify_orders`; this module is the
GraphQL surface over it, a mixin of the fake's root `Resolvers`:

- ``fulfillmentCreate``: lines of fulfillment orders of ONE order and ONE assigned location
  (shopify.md §3.4; the mutation's description in the 2026-04 schema), only OPEN / IN_PROGRESS
  fulfillment orders ("Fulfillment order N has an unfulfillable status= closed." is Shopify's own
  text; the same template for the other statuses is our assumption). An FO whose units are all
  fulfilled becomes CLOSED.
- ``fulfillmentOrderHold`` / ``fulfillmentOrderReleaseHold``: holds with reason and handle (at most
  10, unique handles, as the schema's descriptions say; an IN_PROGRESS FO a fulfillment service
  accepted is refused — our assumption); a hold on some lines splits them off, the
  rest staying OPEN in ``remainingFulfillmentOrder``; released, the FO goes back to OPEN (or
  IN_PROGRESS when partly fulfilled).
- ``fulfillmentOrderMove``: without lines, an FO with no fulfilled units is moved as a whole (same
  id, new location); with lines (or with fulfilled units) the moved units go to a new FO at the new
  location and an emptied original is CLOSED (REST example ``fulfillment_order.move``).
- ``fulfillmentOrderSplit``: the given units move to a new FO at the same location.
- ``fulfillmentOrderOpen`` / ``fulfillmentOrderReschedule``: SCHEDULED -> OPEN, or a new `fulfillAt`.

User-error codes are the schema's enums; messages the schema does not give are our wording.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from mienne_ops.sandbox.shopify_graphql import gid, parse_gid, parse_time
from mienne_ops.sandbox.shopify_orders import (
    FULFILLABLE_STATUSES,
    MAX_HOLDS_PER_APP,
    UserErrors,
    detect_carrier,
    fulfillment_node,
    fulfillment_order_node,
    has_progress,
    hold_node,
    new_fulfillment_order,
    public_order,
    refresh_actions,
    remaining_units,
    settle_status,
    shop_time,
)

SYSTEM = "shopify"
NOT_FOUND = "Fulfillment order does not exist."


class FulfillmentResolvers:
    """Root fields for fulfillment orders; mixed into the fake's `Resolvers`."""

    sandbox: Any
    catalog: Any
    world: Any

    def _emit(self, topic: str, payload: dict[str, Any]) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    # -- queries --------------------------------------------------------------------------------
    def fulfillmentOrder(self, info, id) -> dict | None:
        found = self._find_fulfillment_order(id)
        return self._fo_node(found[1], found[0]) if found else None

    # -- holds ----------------------------------------------------------------------------------
    def fulfillmentOrderHold(self, info, id, fulfillmentHold) -> dict:
        empty = {"fulfillmentHold": None, "fulfillmentOrder": None, "remainingFulfillmentOrder": None}
        try:
            order, fo = self._require_fo(id, ["id"], "FULFILLMENT_ORDER_NOT_FOUND")
            if fo["status"] not in ("open", "in_progress", "on_hold"):
                raise UserErrors(["id"], f"Fulfillment order with status {fo['status']} can't be held.")
            if fo["status"] == "in_progress" and fo.get("request_status") == "accepted":
                # Assumption (undocumented): a fulfillment service that accepted the request is
                # working on it; the merchant's app cannot hold it (a merchant-managed FO partly
                # fulfilled, also IN_PROGRESS, can be held).
                refused = "The fulfillment order is being fulfilled by a fulfillment service"
                raise UserErrors(["id"], f"{refused} and can't be held.")
            handle = fulfillmentHold.get("handle") or ""
            holds = fo.setdefault("fulfillment_holds", [])
            if any((h.get("handle") or "") == handle for h in holds):
                raise UserErrors(
                    ["fulfillmentHold", "handle"],
                    "The handle provided for the fulfillment hold is already in use by this app for "
                    "another hold on this fulfillment order.",
                    "DUPLICATE_FULFILLMENT_HOLD_HANDLE",
                )
            if len(holds) >= MAX_HOLDS_PER_APP:
                raise UserErrors(
                    ["id"],
                    "The maximum number of fulfillment holds for this fulfillment order has been reached "
                    "for this app.",
                    "FULFILLMENT_ORDER_HOLD_LIMIT_REACHED",
                )
            requested = fulfillmentHold.get("fulfillmentOrderLineItems") or []
            if requested and fo["status"] == "on_hold":
                raise UserErrors(
                    ["fulfillmentHold", "fulfillmentOrderLineItems"],
                    "The fulfillment order is not in a splittable state.",
                    "FULFILLMENT_ORDER_NOT_SPLITTABLE",
                )
            now = shop_time(self.world.now())
            remaining_fo = None
            if requested:
                picked = _picked_units(
                    fo, requested, ["fulfillmentHold", "fulfillmentOrderLineItems"], hold=True
                )
                if sum(picked.values()) < remaining_units(fo):
                    # The held units stay on this FO; the others go on, unheld, in a new one.
                    remaining_fo = self._carve(order, fo, _complement(fo, picked), fo["assigned_location_id"])
            hold = {
                "id": self.sandbox._new_id("fulfillment_hold", 7_100_000_000_000_000_001),
                "reason": fulfillmentHold["reason"].lower(),
                "reason_notes": fulfillmentHold.get("reasonNotes"),
                "handle": handle,
                "notify_merchant": bool(fulfillmentHold.get("notifyMerchant")),
                "external_id": fulfillmentHold.get("externalId"),
            }
            holds.append(hold)
            fo["status"], fo["updated_at"] = "on_hold", now
            refresh_actions(fo)
            self._save(order)
        except UserErrors as error:
            return {**empty, "userErrors": error.errors}
        self._emit("fulfillment_orders/placed_on_hold", {"fulfillment_order": _fo_payload(fo)})
        return {
            "fulfillmentHold": hold_node(hold),
            "fulfillmentOrder": self._fo_node(fo, order),
            "remainingFulfillmentOrder": self._fo_node(remaining_fo, order) if remaining_fo else None,
            "userErrors": [],
        }

    def fulfillmentOrderReleaseHold(self, info, id, holdIds=None, externalId=None) -> dict:
        try:
            order, fo = self._require_fo(id, ["id"], "FULFILLMENT_ORDER_NOT_FOUND")
            if fo["status"] != "on_hold":
                raise UserErrors(["id"], "The fulfillment order is not on hold.")
            if holdIds is None:
                fo["fulfillment_holds"] = []
            else:
                # Only holds of this FO are released; other ids are ignored (the schema's words).
                wanted = {parse_gid(h, "FulfillmentHold") for h in holdIds}
                fo["fulfillment_holds"] = [h for h in fo["fulfillment_holds"] if h["id"] not in wanted]
            settle_status(fo)
            fo["updated_at"] = shop_time(self.world.now())
            self._save(order)
        except UserErrors as error:
            return {"fulfillmentOrder": None, "userErrors": error.errors}
        if fo["status"] != "on_hold":
            self._emit("fulfillment_orders/hold_released", {"fulfillment_order": _fo_payload(fo)})
        return {"fulfillmentOrder": self._fo_node(fo, order), "userErrors": []}

    # -- scheduling -----------------------------------------------------------------------------
    def fulfillmentOrderOpen(self, info, id) -> dict:
        try:
            order, fo = self._require_fo(id, ["id"], None)
            if fo["status"] != "scheduled":
                raise UserErrors(["id"], f"Fulfillment order with status {fo['status']} can't be opened.")
            settle_status(fo)
            fo["updated_at"] = shop_time(self.world.now())
            self._save(order)
        except UserErrors as error:
            return {"fulfillmentOrder": None, "userErrors": _plain(error)}
        return {"fulfillmentOrder": self._fo_node(fo, order), "userErrors": []}

    def fulfillmentOrderReschedule(self, info, id, fulfillAt) -> dict:
        try:
            order, fo = self._require_fo(id, ["id"], "FULFILLMENT_ORDER_NOT_FOUND")
            if fo["status"] != "scheduled":
                raise UserErrors(
                    ["id"], f"Fulfillment order with status {fo['status']} can't be rescheduled."
                )
            when = parse_time(str(fulfillAt))
            if when is None or when <= self.world.now():
                raise UserErrors(["fulfillAt"], "Fulfill at must be in the future.")
            fo["fulfill_at"], fo["updated_at"] = shop_time(when), shop_time(self.world.now())
            self._save(order)
        except UserErrors as error:
            return {"fulfillmentOrder": None, "userErrors": error.errors}
        return {"fulfillmentOrder": self._fo_node(fo, order), "userErrors": []}

    # -- move and split -------------------------------------------------------------------------
    def fulfillmentOrderMove(self, info, id, newLocationId, fulfillmentOrderLineItems=None) -> dict:
        empty = {
            "movedFulfillmentOrder": None,
            "originalFulfillmentOrder": None,
            "remainingFulfillmentOrder": None,
        }
        try:
            order, fo = self._require_fo(id, ["id"], None)
            location = parse_gid(newLocationId, "Location") or 0
            if location not in {x.shopify_location_id for x in self.catalog.locations}:
                raise UserErrors(["newLocationId"], "Location could not be found.")
            if "move" not in fo["supported_actions"]:
                raise UserErrors(["id"], f"Cannot move a fulfillment order with status {fo['status']}.")
            if location == fo["assigned_location_id"]:
                raise UserErrors(
                    ["newLocationId"], "The fulfillment order is already assigned to this location."
                )
            if not fulfillmentOrderLineItems and not has_progress(fo):
                # The whole FO changes location and keeps its id (first scenario of the docs).
                fo["assigned_location_id"], fo["updated_at"] = location, shop_time(self.world.now())
                moved = fo
            else:
                requested = fulfillmentOrderLineItems or [
                    {"id": gid("FulfillmentOrderLineItem", li["id"]), "quantity": li["fulfillable_quantity"]}
                    for li in fo["line_items"]
                    if li["fulfillable_quantity"] > 0
                ]
                picked = _picked_units(fo, requested, ["fulfillmentOrderLineItems"])
                moved = self._carve(order, fo, picked, location, keep_state=True)
            self._save(order)
        except UserErrors as error:
            return {**empty, "userErrors": error.errors}
        return {
            "movedFulfillmentOrder": self._fo_node(moved, order),
            "originalFulfillmentOrder": self._fo_node(fo, order),
            "remainingFulfillmentOrder": None,
            "userErrors": [],
        }

    def fulfillmentOrderSplit(self, info, fulfillmentOrderSplits) -> dict:
        results = []
        try:
            touched: dict[int, dict] = {}
            for index, split in enumerate(fulfillmentOrderSplits):
                field = ["fulfillmentOrderSplits", str(index)]
                order, fo = self._require_fo(
                    split["fulfillmentOrderId"],
                    [*field, "fulfillmentOrderId"],
                    "FULFILLMENT_ORDER_NOT_FOUND",
                    touched,
                )
                requested = split.get("fulfillmentOrderLineItems") or []
                if not requested:
                    raise UserErrors(
                        [*field, "fulfillmentOrderLineItems"],
                        "The fulfillment order must have at least one line item input to split.",
                        "NO_LINE_ITEMS_PROVIDED_TO_SPLIT",
                    )
                if "split" not in fo["supported_actions"] and fo["status"] not in ("on_hold", "scheduled"):
                    raise UserErrors([*field, "fulfillmentOrderId"], "The fulfillment order can't be split.")
                picked = _picked_units(fo, requested, [*field, "fulfillmentOrderLineItems"], split=True)
                if sum(picked.values()) >= remaining_units(fo):
                    raise UserErrors(
                        [*field, "fulfillmentOrderLineItems"],
                        "The fulfillment order line item quantity is invalid.",
                        "INVALID_LINE_ITEM_QUANTITY",
                    )
                new_fo = self._carve(order, fo, picked, fo["assigned_location_id"], keep_state=True)
                touched[order["id"]] = order
                results.append((order, fo, new_fo))
            for order in touched.values():
                self._save(order)
        except UserErrors as error:
            return {"fulfillmentOrderSplits": None, "userErrors": error.errors}
        return {
            "fulfillmentOrderSplits": [
                {
                    "fulfillmentOrder": self._fo_node(fo, order),
                    "remainingFulfillmentOrder": self._fo_node(new_fo, order),
                    "replacementFulfillmentOrder": None,
                }
                for order, fo, new_fo in results
            ],
            "userErrors": [],
        }

    # -- fulfillments ---------------------------------------------------------------------------
    def fulfillmentCreate(self, info, fulfillment, message=None) -> dict:
        try:
            created, order = self._create_fulfillment(fulfillment)
        except UserErrors as error:
            return {"fulfillment": None, "userErrors": _plain(error)}
        return {"fulfillment": fulfillment_node(created, order, self.catalog), "userErrors": []}

    def _create_fulfillment(self, request: dict[str, Any]) -> tuple[dict, dict]:
        groups = request.get("lineItemsByFulfillmentOrder") or []
        if not groups:
            raise UserErrors(
                ["fulfillment", "lineItemsByFulfillmentOrder"],
                "Line items by fulfillment order can't be blank",
            )
        order: dict[str, Any] | None = None
        picks: list[tuple[dict, dict, int]] = []
        for index, group in enumerate(groups):
            found = self._find_fulfillment_order(group["fulfillmentOrderId"])
            field = ["fulfillment", "lineItemsByFulfillmentOrder", str(index), "fulfillmentOrderId"]
            if found is None:
                raise UserErrors(field, NOT_FOUND)
            if order is not None and found[0]["id"] != order["id"]:
                raise UserErrors(field, "All fulfillment orders must belong to the same order.")
            # Keep one copy of the order so every group's changes land in the document saved.
            order = order or found[0]
            fo = next(f for f in order["_fulfillment_orders"] if f["id"] == found[1]["id"])
            if fo["status"] not in FULFILLABLE_STATUSES:
                raise UserErrors(
                    ["fulfillment"],
                    f"Fulfillment order {fo['id']} has an unfulfillable status= {fo['status']}.",
                )
            if picks and fo["assigned_location_id"] != picks[0][0]["assigned_location_id"]:
                raise UserErrors(
                    ["fulfillment"], "All fulfillment orders must be assigned to the same location."
                )
            group_picks = _pick_lines(fo, group.get("fulfillmentOrderLineItems"), index)
            picks.extend(group_picks)
        if not picks or order is None:
            raise UserErrors(["fulfillment"], "No remaining line items to fulfill.")
        return self._apply_fulfillment(
            order, picks, request.get("trackingInfo") or {}, request.get("notifyCustomer")
        ), order

    def _apply_fulfillment(self, order, picks, tracking, notify) -> dict:
        now = shop_time(self.world.now())
        lines = {li["id"]: li for li in order["line_items"]}
        fulfilled: dict[int, int] = {}
        for _fo, fo_line, quantity in picks:
            fo_line["fulfillable_quantity"] -= quantity
            fulfilled[fo_line["line_item_id"]] = fulfilled.get(fo_line["line_item_id"], 0) + quantity
        for fo in {id(fo): fo for fo, _, _ in picks}.values():
            settle_status(fo)
            fo["updated_at"] = now
        for line_id, quantity in fulfilled.items():
            line = lines[line_id]
            line["fulfillable_quantity"] = max(0, line["fulfillable_quantity"] - quantity)
            line["fulfillment_status"] = "fulfilled" if line["fulfillable_quantity"] == 0 else "partial"
        shippable = [li for li in order["line_items"] if li.get("requires_shipping", True)]
        order["fulfillment_status"] = (
            "fulfilled" if all(li["fulfillable_quantity"] == 0 for li in shippable) else "partial"
        )
        record = self._fulfillment_record(order, fulfilled, tracking, now, notify, picks[0][0])
        order["fulfillments"].append(record)
        self.sandbox.save_order(order)
        self._emit("fulfillments/create", record)
        whole = order["fulfillment_status"] == "fulfilled"
        self._emit("orders/fulfilled" if whole else "orders/partially_fulfilled", public_order(order))
        self._emit("orders/updated", public_order(order))
        return record

    def _fulfillment_record(self, order, fulfilled, tracking, now, notify, fo) -> dict:
        numbers = list(tracking.get("numbers") or ([tracking["number"]] if tracking.get("number") else []))
        urls = list(tracking.get("urls") or ([tracking["url"]] if tracking.get("url") else []))
        company = tracking.get("company")
        if numbers and not company:
            guess = detect_carrier(numbers[0])
            if guess:
                company = guess[0]
                urls = urls or [g[1] if g else "" for g in map(detect_carrier, numbers)]
        fulfillment_id = self.sandbox._new_id("fulfillment", 5_500_000_000_000_000_001)
        lines = {li["id"]: li for li in order["line_items"]}
        return {
            "id": fulfillment_id,
            "admin_graphql_api_id": gid("Fulfillment", fulfillment_id),
            "order_id": order["id"],
            "name": f"{order['name']}.{len(order['fulfillments']) + 1}",
            "status": "success",
            "service": "manual",
            "location_id": fo["assigned_location_id"],
            "tracking_company": company,
            "tracking_number": numbers[0] if numbers else None,
            "tracking_numbers": numbers,
            "tracking_url": urls[0] if urls else None,
            "tracking_urls": urls,
            "notify_customer": bool(notify),
            "shipment_status": None,
            "created_at": now,
            "updated_at": now,
            "line_items": [
                {
                    **{
                        k: lines[line_id].get(k)
                        for k in ("id", "sku", "variant_id", "title", "name", "price")
                    },
                    "quantity": quantity,
                    "fulfillment_status": "fulfilled",
                    "fulfillment_line_item_id": self.sandbox._new_id(
                        "fulfillment_line", 5_600_000_000_000_000_001
                    ),
                }
                for line_id, quantity in fulfilled.items()
            ],
        }

    # -- helpers --------------------------------------------------------------------------------
    def _find_fulfillment_order(self, fo_gid: str) -> tuple[dict, dict] | None:
        number = parse_gid(fo_gid, "FulfillmentOrder")
        index = self.world.get(SYSTEM, "fo_index", number) if number else None
        order = self.sandbox.load_order(index["order_id"]) if index else None
        if order is None:
            return None
        fo = next(f for f in order["_fulfillment_orders"] if f["id"] == number)
        return order, fo

    def _require_fo(self, fo_gid, field, code, loaded: dict[int, dict] | None = None) -> tuple[dict, dict]:
        found = self._find_fulfillment_order(fo_gid)
        if found is None:
            raise UserErrors(field, NOT_FOUND, code)
        order = (loaded or {}).get(found[0]["id"], found[0])
        return order, next(f for f in order["_fulfillment_orders"] if f["id"] == found[1]["id"])

    def _carve(self, order, fo, picked: Counter, location_id: int, keep_state: bool = False) -> dict:
        """Move ``picked`` units (FO line id -> quantity) of ``fo`` into a new FO at ``location_id``."""
        now = shop_time(self.world.now())
        lines = []
        for fo_line in fo["line_items"]:
            quantity = picked.get(fo_line["id"], 0)
            if quantity:
                fo_line["quantity"] -= quantity
                fo_line["fulfillable_quantity"] -= quantity
                lines.append((fo_line["line_item_id"], fo_line.get("variant_id"), quantity, quantity))
        fo["line_items"] = [li for li in fo["line_items"] if li["quantity"] > 0]
        new_fo = new_fulfillment_order(
            order,
            location_id,
            lines,
            now=now,
            new_id=self.sandbox._fo_id,
            fulfill_at=fo.get("fulfill_at") if keep_state else None,
            holds=[dict(h) for h in fo.get("fulfillment_holds") or []] if keep_state else None,
        )
        if keep_state and fo["status"] == "scheduled":
            new_fo["status"] = "scheduled"
            refresh_actions(new_fo)
        if fo["status"] != "scheduled":
            settle_status(fo)
        fo["updated_at"] = now
        order["_fulfillment_orders"].append(new_fo)
        self.world.put(SYSTEM, "fo_index", new_fo["id"], {"order_id": order["id"]})
        return new_fo

    def _save(self, order: dict[str, Any]) -> None:
        self.sandbox.save_order(order)

    def _fo_node(self, fo: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
        return fulfillment_order_node(fo, order, self.catalog)


def _picked_units(
    fo: dict, requested: list[dict], field: list[str], *, hold: bool = False, split: bool = False
) -> Counter:
    """FO line id -> quantity from ``[{id, quantity}]``, checked against what each line has left."""
    by_id = {li["id"]: li for li in fo["line_items"]}
    picked: Counter = Counter()
    for position, item in enumerate(requested):
        where = [*field, str(position)]
        number = parse_gid(item["id"], "FulfillmentOrderLineItem") or 0
        if number in picked:
            raise UserErrors(
                where,
                "The fulfillment order line items are not unique.",
                "DUPLICATED_FULFILLMENT_ORDER_LINE_ITEMS",
            )
        line = by_id.get(number)
        if item["quantity"] <= 0:
            positive = "GREATER_THAN" if split else "GREATER_THAN_ZERO"
            raise UserErrors(
                [*where, "quantity"],
                "The fulfillment order line item quantity must be greater than 0.",
                positive,
            )
        if line is None or item["quantity"] > line["fulfillable_quantity"]:
            code = "INVALID_LINE_ITEM_QUANTITY" if hold or split else None
            raise UserErrors(
                [*where, "quantity"], "The fulfillment order line item quantity is invalid.", code
            )
        picked[number] = item["quantity"]
    return picked


def _complement(fo: dict, picked: Counter) -> Counter:
    """The units of ``fo`` still to fulfil that are not in ``picked``."""
    rest: Counter = Counter()
    for line in fo["line_items"]:
        left = line["fulfillable_quantity"] - picked.get(line["id"], 0)
        if left > 0:
            rest[line["id"]] = left
    return rest


def _pick_lines(fo: dict, requested: list[dict] | None, index: int) -> list[tuple[dict, dict, int]]:
    """(fo, fo line, quantity) to fulfil; all remaining lines when none are named."""
    if not requested:
        return [
            (fo, li, li["fulfillable_quantity"]) for li in fo["line_items"] if li["fulfillable_quantity"] > 0
        ]
    by_id = {li["id"]: li for li in fo["line_items"]}
    picks = []
    for position, item in enumerate(requested):
        field = [
            "fulfillment",
            "lineItemsByFulfillmentOrder",
            str(index),
            "fulfillmentOrderLineItems",
            str(position),
        ]
        line = by_id.get(parse_gid(item["id"], "FulfillmentOrderLineItem") or 0)
        if line is None:
            raise UserErrors([*field, "id"], "Fulfillment order line item does not exist.")
        quantity = item["quantity"]
        if quantity <= 0 or quantity > line["fulfillable_quantity"]:
            raise UserErrors(["fulfillment"], "Invalid fulfillment order line item quantity requested.")
        picks.append((fo, line, quantity))
    return picks


def _plain(error: UserErrors) -> list[dict[str, Any]]:
    """userErrors of type `UserError` (field and message, no code)."""
    return [{"field": e["field"], "message": e["message"]} for e in error.errors]


def _fo_payload(fo: dict[str, Any]) -> dict[str, Any]:
    """The fulfillment_orders/* webhook body (id, status; holds as REST shows them)."""
    return {
        "id": gid("FulfillmentOrder", fo["id"]),
        "status": fo["status"],
        "fulfillment_holds": [
            {"reason": h["reason"], "reason_notes": h.get("reason_notes")}
            for h in fo.get("fulfillment_holds") or []
        ],
    }
