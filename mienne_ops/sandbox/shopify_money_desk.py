"""The Shopify fake's refund desk: booking refunds and cancellations, orderCancel jobs, resolvers.

`MoneyDesk` is mixed into the Shopify `Sandbox` and `RefundResolvers` into its GraphQL `Resolvers`:
one code path books ``refundCreate`` (with its ``@idempotent`` key: the same key and input replay
the first refund, the same key with other input is ``IDEMPOTENCY_KEY_PARAMETER_MISMATCH``, another
key is another refund, as on Shopify), the merchant's admin refund (control route) and the refund a
cancellation makes; the rules themselves are `shopify_refunds`. ``orderCancel`` is checked when it
is asked and done by a job that finishes a few API requests later (`cancel_job_requests`, a knob:
Shopify documents the job, not how long it takes).
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from graphql import GraphQLError

from mienne_ops.sandbox.catalog import Catalog
from mienne_ops.sandbox.shopify_graphql import gid, parse_gid
from mienne_ops.sandbox.shopify_inventory import _idempotency_key
from mienne_ops.sandbox.shopify_orders import (
    UserErrors,
    money,
    order_node,
    public_order,
    recompute_current_totals,
    shop_time,
)
from mienne_ops.sandbox.shopify_refunds import (
    apply_refund,
    calculate,
    dec,
    payments,
    refund_node,
    refundable_quantity,
    remaining_on,
    shipping_charged,
    shipping_refunded,
    suggested_transactions,
)

SYSTEM = "shopify"
CANCEL_REASONS = ("customer", "declined", "fraud", "inventory", "staff", "other")


class MoneyDesk:
    """Refunds and cancellations for the Shopify `Sandbox` (mixed in; uses its world, ids, inventory
    and webhook emitter). One code path for ``refundCreate``, the merchant's admin refund (control
    route) and the refund a cancellation makes."""

    world: Any
    catalog: Catalog
    inventory: Any
    cancel_job_requests: int = 1  # later API requests before an orderCancel job is done (knob)

    def _new_id(self, kind: str, start: int) -> int:  # provided by the Sandbox
        raise NotImplementedError

    def load_order(self, order_id: int) -> dict[str, Any] | None:  # provided by the Sandbox
        raise NotImplementedError

    def save_order(self, order: dict[str, Any]) -> None:  # provided by the Sandbox
        raise NotImplementedError

    def emit(self, topic: str, payload: dict[str, Any]) -> None:  # provided by the Sandbox
        raise NotImplementedError

    def money_id(self, kind: str) -> int:
        starts = {
            "transaction": 7_000_000_000_000_000_001,
            "refund": 8_900_000_000_000_000_001,
            "refund_line_item": 8_910_000_000_000_000_001,
            "refund_shipping_line": 8_920_000_000_000_000_001,
            "order_adjustment": 8_930_000_000_000_000_001,
        }
        return self._new_id(kind, starts[kind])

    # -- refunds --------------------------------------------------------------------------------
    def create_refund(
        self, order_id: int, request: dict[str, Any], *, idempotency_key: str | None = None
    ) -> tuple[dict[str, Any], dict[str, Any], list[tuple[str, dict]]]:
        """Book a refund (``RefundInput`` shape); returns (refund, order, webhooks to send).

        With a key, the same key and request replay the first refund (nothing booked twice); the same
        key with another request is refused (`IdempotencyMismatch`). Raises `UserErrors`.
        """
        fingerprint = _fingerprint(request)
        with self.world.tx():
            if idempotency_key is not None:
                seen = self.world.get(SYSTEM, "refund_idempotency", idempotency_key)
                if seen is not None:
                    if seen["fingerprint"] != fingerprint:
                        raise IdempotencyMismatch()
                    first = self.load_order(seen["order_id"]) or {}
                    refund = next(r for r in first["refunds"] if r["id"] == seen["refund_id"])
                    return refund, first, []
            order = self.load_order(order_id)
            if order is None:
                raise UserErrors(["orderId"], "Order does not exist", "NOT_FOUND")
            refund, restock = apply_refund(
                order, request, new_id=self.money_id, now=shop_time(self.world.now())
            )
            recompute_current_totals(order)
            self.save_order(order)
            if restock:
                self.inventory.record_restock(order, restock)
            if idempotency_key is not None:
                self.world.put(
                    SYSTEM,
                    "refund_idempotency",
                    idempotency_key,
                    {"fingerprint": fingerprint, "order_id": order["id"], "refund_id": refund["id"]},
                )
        events = [("refunds/create", refund_payload(refund)), ("orders/updated", public_order(order))]
        return refund, order, events

    def admin_refund(self, order_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """A merchant refunds in the Shopify admin: lines by SKU, optional shipping amount and note;
        the money goes back to the original payments as Shopify suggests. Fires refunds/create."""
        with self.world.tx():
            order = self.load_order(order_id)
            if order is None:
                raise UserErrors(["orderId"], "Order does not exist", "NOT_FOUND")
            lines = []
            for index, wanted in enumerate(body.get("lines") or []):
                quantity = int(wanted.get("quantity") or 1)
                line = next(
                    (
                        li
                        for li in order["line_items"]
                        if li.get("sku") == wanted.get("sku") and refundable_quantity(li) >= quantity
                    ),
                    None,
                ) or next((li for li in order["line_items"] if li.get("sku") == wanted.get("sku")), None)
                if line is None:
                    raise UserErrors(
                        ["lines", str(index), "sku"], f"No line item with SKU {wanted.get('sku')!r}"
                    )
                restock = "cancel" if body.get("restock") else "no_restock"
                lines.append(
                    {"lineItemId": gid("LineItem", line["id"]), "quantity": quantity, "restockType": restock}
                )
            shipping = body.get("shipping")
            calc = calculate(order, lines, shipping_amount=shipping, cap_shipping=False)
            if calc.errors:
                error = UserErrors(None, "")
                error.errors = calc.errors
                raise error
            amount = calc.amount(bool(order.get("taxes_included")))
            if body.get("amount") not in (None, ""):
                amount = dec(body["amount"])  # the merchant typed another amount
            request: dict[str, Any] = {
                "orderId": order["admin_graphql_api_id"],
                "note": body.get("note"),
                "notify": bool(body.get("notify")),
                "refundLineItems": lines,
                "transactions": [
                    {
                        "orderId": order["admin_graphql_api_id"],
                        "parentId": gid("OrderTransaction", payment["id"]),
                        "gateway": payment.get("gateway"),
                        "kind": "REFUND",
                        "amount": money(share),
                    }
                    for payment, share in suggested_transactions(order, amount)
                ],
            }
            if shipping not in (None, ""):
                request["shipping"] = {"amount": money(dec(shipping))}
            refund, _, events = self.create_refund(order_id, request)
        for topic, payload in events:
            self.emit(topic, payload)
        return refund

    # -- cancellation ---------------------------------------------------------------------------
    def check_cancel(self, order_id: int) -> dict[str, Any]:
        """The order, when it may be cancelled; raises `UserErrors` (orderCancelUserErrors) if not."""
        order = self.load_order(order_id)
        if order is None:
            raise UserErrors(["orderId"], "Order does not exist", "NOT_FOUND")
        if order.get("cancelled_at"):
            raise UserErrors(["orderId"], "Order has already been cancelled", "INVALID")
        if order.get("fulfillment_status") in ("fulfilled", "partial") or any(
            int(li.get("current_quantity", li["quantity"])) > int(li.get("fulfillable_quantity", 0))
            for li in order["line_items"]
            if li.get("requires_shipping", True)
        ):
            raise UserErrors(["orderId"], "Cannot cancel an order with fulfilled items", "INVALID")
        if any(t["kind"] == "authorization" and t.get("status") == "pending" for t in order["_transactions"]):
            raise UserErrors(["orderId"], "Cannot cancel an order with a pending authorization", "INVALID")
        return order

    def cancel_order(
        self,
        order_id: int,
        reason: str = "customer",
        refund: bool = True,
        *,
        restock: bool = False,
        staff_note: str | None = None,
    ) -> None:
        """Cancel an order now (the merchant's admin, and an orderCancel job when it runs): refund
        what is left of the money to the original payments when asked, put unfulfilled units back in
        stock when asked, close its fulfillment orders. Raises `UserErrors` when not allowed."""
        events: list[tuple[str, dict]] = []
        with self.world.tx():
            order = self.check_cancel(order_id)
            now = shop_time(self.world.now())
            paid = bool(payments(order))
            restocked = {
                li["id"]: int(li.get("fulfillable_quantity", 0))
                for li in order["line_items"]
                if restock and int(li.get("fulfillable_quantity", 0))
            }
            if paid and refund:
                request = self._full_refund_request(order, restock)
                if request["refundLineItems"] or request["transactions"] or request.get("shipping"):
                    booked, restocked_by_refund = apply_refund(order, request, new_id=self.money_id, now=now)
                    events.append(("refunds/create", refund_payload(booked)))
                    restocked = restocked_by_refund
            elif not paid:
                for auth in [t for t in order["_transactions"] if t["kind"] == "authorization"]:
                    order["_transactions"].append(
                        {
                            "id": self.money_id("transaction"),
                            "kind": "void",
                            "status": "success",
                            "gateway": auth.get("gateway"),
                            "amount": auth["amount"],
                            "currency": auth.get("currency") or order["currency"],
                            "parent_id": auth["id"],
                            "created_at": now,
                            "processed_at": now,
                        }
                    )
                order["financial_status"] = "voided"
            order["cancelled_at"] = order["closed_at"] = now
            order["cancel_reason"] = reason.lower()
            if staff_note:  # staff-only, on the order's timeline (not its note, not in webhooks)
                self.world.put(SYSTEM, "cancel_staff_note", order["id"], {"note": staff_note, "at": now})
            for fo in order["_fulfillment_orders"]:
                fo["status"], fo["supported_actions"], fo["updated_at"] = "closed", [], now
            recompute_current_totals(order)
            self.save_order(order)
            if restocked:
                self.inventory.record_restock(order, restocked)
        for topic, payload in events:
            self.emit(topic, payload)
        self.emit("orders/cancelled", public_order(order))
        self.emit("orders/updated", public_order(order))

    def _full_refund_request(self, order: dict[str, Any], restock: bool) -> dict[str, Any]:
        """Everything still refundable: the lines left, the shipping left, each payment's remainder."""
        lines = [
            {
                "lineItemId": gid("LineItem", li["id"]),
                "quantity": refundable_quantity(li),
                "restockType": "cancel"
                if restock and int(li.get("fulfillable_quantity", 0))
                else "no_restock",
            }
            for li in order["line_items"]
            if refundable_quantity(li)
        ]
        left, _ = shipping_charged(order)
        done, _ = shipping_refunded(order)
        request: dict[str, Any] = {
            "orderId": order["admin_graphql_api_id"],
            "refundLineItems": lines,
            "transactions": [
                {
                    "parentId": gid("OrderTransaction", p["id"]),
                    "gateway": p.get("gateway"),
                    "kind": "REFUND",
                    "amount": money(remaining_on(order, p)),
                }
                for p in payments(order)
                if remaining_on(order, p) > 0
            ],
        }
        if left - done > 0:
            request["shipping"] = {"fullRefund": True}
        return request

    def start_cancel_job(self, order_id: int, args: dict[str, Any]) -> dict[str, Any]:
        """orderCancel: checked now, done by a job after `cancel_job_requests` later API requests
        (the job's `done` says so), as Shopify runs cancellations asynchronously (unverified)."""
        self.check_cancel(order_id)
        job: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "order_id": order_id,
            "args": args,
            "requests_left": self.cancel_job_requests,
            "done": False,
        }
        if self.cancel_job_requests <= 0:
            self._finish_job(job)
        else:
            self.world.put(SYSTEM, "job", job["id"], job)
            self.world.put(SYSTEM, "pending_job", job["id"], {"id": job["id"]})
        return job

    def run_due_jobs(self) -> None:
        """Called before every API request: pending jobs count down and run when due."""
        with self.world.tx():
            for pending in self.world.list(SYSTEM, "pending_job"):
                job = self.world.get(SYSTEM, "job", pending["id"])
                if job is None:
                    self.world.delete(SYSTEM, "pending_job", pending["id"])
                    continue
                job["requests_left"] -= 1
                if job["requests_left"] <= 0:
                    self.world.delete(SYSTEM, "pending_job", job["id"])
                    self._finish_job(job)
                self.world.put(SYSTEM, "job", job["id"], job)

    def _finish_job(self, job: dict[str, Any]) -> None:
        args = job["args"]
        try:
            self.cancel_order(
                job["order_id"],
                args["reason"],
                args["refund"],
                restock=args["restock"],
                staff_note=args.get("staff_note"),
            )
        except UserErrors as error:  # e.g. cancelled meanwhile by someone else: the job still ends
            job["error"] = str(error)
        job["done"] = True
        self.world.put(SYSTEM, "job", job["id"], job)


class IdempotencyMismatch(Exception):
    """The same @idempotent key was sent with other parameters."""


def _fingerprint(request: dict[str, Any]) -> str:
    return json.dumps(request, sort_keys=True, default=str)


def refund_payload(refund: dict[str, Any]) -> dict[str, Any]:
    """The refunds/create webhook body: the REST refund object (with ``order_id``)."""
    return copy.deepcopy(refund)


class RefundResolvers:
    """Root fields of refunds and cancellations (mixed into the Shopify fake's `Resolvers`)."""

    sandbox: Any
    catalog: Catalog

    def _emit(self, topic: str, payload: dict[str, Any]) -> None:  # provided by Resolvers
        raise NotImplementedError

    def refundCreate(self, info, input) -> dict:
        key = _idempotency_key(info)
        number = parse_gid(str(input.get("orderId")), "Order") or 0
        try:
            refund, order, events = self.sandbox.create_refund(number, dict(input), idempotency_key=key)
        except IdempotencyMismatch:
            raise GraphQLError(
                "The same idempotency key was used with different parameters.",
                extensions={"code": "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"},
            ) from None
        except UserErrors as error:
            problems = [{"field": e["field"], "message": e["message"]} for e in error.errors]
            return {"refund": None, "order": None, "userErrors": problems}
        for topic, payload in events:
            self._emit(topic, payload)
        return {
            "refund": refund_node(refund, order, self.catalog),
            "order": order_node(order, self.catalog),
            "userErrors": [],
        }

    def orderCancel(
        self,
        info,
        orderId,
        reason,
        restock,
        refund=None,
        refundMethod=None,
        notifyCustomer=False,
        staffNote=None,
        **_,
    ) -> dict:
        number = parse_gid(orderId, "Order") or 0
        # 2026-04: `refundMethod.originalPaymentMethodsRefund`; the deprecated `refund` still works.
        refunding = bool((refundMethod or {}).get("originalPaymentMethodsRefund")) or bool(refund)
        if (refundMethod or {}).get("storeCreditRefund"):
            problem = UserErrors(["refundMethod"], "Store credit refunds are not supported here", "INVALID")
            return _cancel_failed(problem)
        args = {
            "reason": str(reason).lower(),
            "refund": refunding,
            "restock": bool(restock),
            "staff_note": staffNote,
        }
        try:
            job = self.sandbox.start_cancel_job(number, args)
        except UserErrors as error:
            return _cancel_failed(error)
        return {"job": _job_node(job), "orderCancelUserErrors": [], "userErrors": []}

    def job(self, info, id) -> dict | None:
        key = str(id).rsplit("/", 1)[-1]
        found = self.sandbox.world.get(SYSTEM, "job", key)
        return _job_node(found) if found else None


def _job_node(job: dict[str, Any]) -> dict[str, Any]:
    return {"__typename": "Job", "id": gid("Job", job["id"]), "done": bool(job["done"]), "query": None}


def _cancel_failed(error: UserErrors) -> dict[str, Any]:
    return {
        "job": None,
        "orderCancelUserErrors": error.errors,
        "userErrors": [{"field": e["field"], "message": e["message"]} for e in error.errors],
    }
