"""Shopify returns over the GraphQL Admin API (2026-04), mixed into `ShopifyClient`.

What can be returned (``returnableFulfillments``), the returns of an order, opening one
(``returnCreate``), answering a customer's request (``returnApproveRequest`` /
``returnDeclineRequest``), attaching our label (``reverseDeliveryCreateWithShipping`` on the return's
reverse fulfillment order), processing returned units with their dispositions and the refund
(``returnProcess`` with ``financialTransfer.issueRefund``), closing and cancelling, and the poll
behind the ``returns/*`` webhooks.

Idempotency, as Shopify offers it:

- ``returnCreate``, ``returnProcess`` and ``reverseDeliveryCreateWithShipping`` take no
  ``@idempotent`` key (2026-04 schema). They are sent once (``idempotent=False``: a lost answer is an
  `AmbiguousWriteError`, never a silent resend); the caller reads `order_returns` /
  ``processed_quantity`` before writing. `attach_return_label` does that read itself: a reverse
  delivery with the same tracking number already on the return is the answer.
- Approve, decline, close and cancel are state changes: when Shopify answers ``INVALID_STATE`` the
  return is read again and a return already in the wanted state is success.

``process_return``'s ``note`` is sent as ``ReturnProcessInput.note`` ("The note for the return");
that Shopify copies it to the refund it creates is our design choice (unverified) — the sandbox does,
and the refund is found on the order by that note, so a crashed run's refund can be found again.

Listing returns: the Admin API has ``return(id:)`` and ``Order.returns`` but no ``returns(query:)``,
so `iter_returns` pages ``orders(query: "updated_at:>=… status:any")`` (optionally
``-return_status:no_return``, a documented `orders` search field) and reads each order's returns.
That a return's changes move its order's ``updated_at`` is (unverified); the sandbox does it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from mienne_ops.domain.money import cents
from mienne_ops.domain.shopify_money import OrderMoney, OrderRefund, SuggestedTransaction
from mienne_ops.domain.shopify_returns import ReturnableLine, ShopifyReturn, shopify_time
from mienne_ops.errors import NotFoundError, PermanentError, RemoteValidationError

SYSTEM = "shopify"
#: `ReturnReason` values (deprecated in inputs for `returnReasonDefinitionId`, still accepted).
RETURN_REASONS = (
    "SIZE_TOO_SMALL",
    "SIZE_TOO_LARGE",
    "UNWANTED",
    "NOT_AS_DESCRIBED",
    "WRONG_ITEM",
    "DEFECTIVE",
    "STYLE",
    "COLOR",
    "OTHER",
    "UNKNOWN",
)
DECLINE_REASONS = ("RETURN_PERIOD_ENDED", "FINAL_SALE", "OTHER")  # `ReturnDeclineReason`
RETURN_LINES_READ = 20  # lines read with a return (ReturnFields); the rest 100 a page
RETURN_RFOS_READ = 3  # reverse fulfillment orders read with a return
RETURN_DELIVERIES_READ = 5  # reverse deliveries read with each
RETURNABLE_LINES_READ = 20  # returnable lines read with each returnable fulfillment


def return_gid(return_id: int | str) -> str:
    if str(return_id).startswith("gid://"):
        return str(return_id)
    return f"gid://shopify/Return/{return_id}"


def _order_gid(order_id: int | str) -> str:
    if str(order_id).startswith("gid://"):
        return str(order_id)
    return f"gid://shopify/Order/{order_id}"


def _reason(reason: str) -> tuple[str, str]:
    """(ReturnReason, note): a ReturnReason name as itself, anything else OTHER with the text."""
    upper = reason.strip().upper().replace("-", "_").replace(" ", "_")
    if upper in RETURN_REASONS:
        return upper, ""
    return "OTHER", reason.strip()


class ShopifyReturns:
    """Return calls of `ShopifyClient` (mixed in; uses its `_run` and `order_money`)."""

    def _run(
        self, name: str, variables: dict[str, Any], *, record: str | None = None, idempotent: bool = True
    ) -> dict[str, Any]:  # provided by ShopifyClient
        raise NotImplementedError

    def order_money(self, order_id: str) -> OrderMoney:  # provided by ShopifyClient
        raise NotImplementedError

    # -- reads ----------------------------------------------------------------------------------
    def returnable_lines(self, order_id: int | str) -> list[ReturnableLine]:
        """Every fulfillment line item of the order with units returnable now (none: left out)."""
        record = str(order_id)
        lines: list[ReturnableLine] = []
        after = None
        while True:
            variables = {"orderId": _order_gid(order_id), "after": after}
            connection = self._run("returnable_fulfillments", variables, record=record)[
                "returnableFulfillments"
            ]
            for returnable in connection["nodes"]:
                items = returnable["returnableFulfillmentLineItems"]
                nodes = list(items["nodes"])
                if items["pageInfo"]["hasNextPage"]:
                    nodes = list(self._returnable_items(returnable["id"]))
                lines.extend(
                    ReturnableLine.from_graphql(returnable["fulfillment"], n)
                    for n in nodes
                    if n["quantity"] > 0
                )
            if not connection["pageInfo"]["hasNextPage"]:
                return lines
            after = connection["pageInfo"]["endCursor"]

    def _returnable_items(self, returnable_id: str) -> Iterator[dict]:
        after = None
        while True:
            data = self._run(
                "returnable_fulfillment_line_items",
                {"id": returnable_id, "after": after},
                record=returnable_id,
            )
            connection = (data.get("returnableFulfillment") or {}).get("returnableFulfillmentLineItems") or {}
            yield from connection.get("nodes") or []
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return
            after = info["endCursor"]

    def fulfillment_line_dates(self, order_id: int | str) -> dict[str, tuple[datetime, datetime | None]]:
        """When each fulfillment line item (gid) of the order shipped and was delivered."""
        data = self._run("fulfillment_line_dates", {"id": _order_gid(order_id)}, record=str(order_id))
        dates: dict[str, tuple[datetime, datetime | None]] = {}
        for fulfillment in (data.get("order") or {}).get("fulfillments") or []:
            created = shopify_time(fulfillment["createdAt"])
            assert created is not None, "a fulfillment always has its createdAt"
            delivered = shopify_time(fulfillment.get("deliveredAt"))
            items = fulfillment["fulfillmentLineItems"]
            if items["pageInfo"]["hasNextPage"]:
                raise PermanentError(
                    "a fulfillment of more than 30 lines",
                    system="shopify",
                    operation="fulfillment_line_dates",
                )
            for item in items["nodes"]:
                dates[item["id"]] = (created, delivered)
        return dates

    def get_return(self, return_id: int | str) -> ShopifyReturn:
        """One return; `NotFoundError` when Shopify has none with that id."""
        return ShopifyReturn.from_graphql(self._return_node(return_id))

    def _return_node(self, return_id: int | str) -> dict[str, Any]:
        gid = return_gid(return_id)
        node = self._run("return", {"id": gid}, record=gid).get("return")
        if node is None:
            raise NotFoundError("return not found", system=SYSTEM, operation="return", record=gid)
        return self._complete_return(node)

    def _complete_return(self, node: dict[str, Any]) -> dict[str, Any]:
        """Read the lines past the first page; refuse a return whose other lists did not fit."""
        lines = node["returnLineItems"]
        info = lines["pageInfo"]
        while info.get("hasNextPage"):
            data = self._run(
                "return_line_items", {"id": node["id"], "after": info["endCursor"]}, record=node["id"]
            )
            more = (data.get("return") or {}).get("returnLineItems")
            if more is None:
                break
            lines["nodes"].extend(more["nodes"])
            info = more["pageInfo"]
        rfos = node["reverseFulfillmentOrders"]
        too_many = rfos["pageInfo"]["hasNextPage"] or any(
            rfo["lineItems"]["pageInfo"]["hasNextPage"] or rfo["reverseDeliveries"]["pageInfo"]["hasNextPage"]
            for rfo in rfos["nodes"]
        )
        if too_many:  # never seen: 3 reverse fulfillment orders or 5 deliveries on one return
            raise RemoteValidationError(
                "return has more reverse fulfillment orders or deliveries than one page", system=SYSTEM,
                operation="return", record=node["id"], code="too_many_reverse_parts",
            )  # fmt: skip
        return node

    def order_returns(self, order_id: int | str) -> list[ShopifyReturn]:
        """Every return of the order (any status), oldest first."""
        return [self.get_return(gid) for gid in self._order_return_ids(order_id)]

    def _order_return_ids(self, order_id: int | str) -> list[str]:
        ids: list[str] = []
        after = None
        while True:
            data = self._run(
                "order_returns", {"id": _order_gid(order_id), "after": after}, record=str(order_id)
            )
            if data.get("order") is None:
                raise NotFoundError(
                    "order not found", system=SYSTEM, operation="order_returns", record=str(order_id)
                )
            connection = data["order"]["returns"]
            ids.extend(n["id"] for n in connection["nodes"])
            if not connection["pageInfo"]["hasNextPage"]:
                return ids
            after = connection["pageInfo"]["endCursor"]

    def iter_returns(self, *, updated_since: datetime, active_only: bool = False) -> Iterator[ShopifyReturn]:
        """Every return of every order updated since ``updated_since`` (the returns/* webhooks' poll).

        ``active_only`` leaves out orders whose ``returnStatus`` is NO_RETURN (those with only
        declined or cancelled returns, as the sandbox reads that status (unverified)).
        """
        since = updated_since if updated_since.tzinfo else updated_since.replace(tzinfo=UTC)
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        search = f"updated_at:>='{stamp}' status:any" + (" -return_status:no_return" if active_only else "")
        seen: set[str] = set()
        after = None
        while True:
            data = self._run("orders_with_returns", {"query": search, "after": after}, record=search)
            connection = data["orders"]
            for order in connection["nodes"]:
                returns = order["returns"]
                ids = [n["id"] for n in returns["nodes"]]
                if returns["pageInfo"]["hasNextPage"]:
                    ids = self._order_return_ids(order["id"])
                for gid in ids:
                    if gid not in seen:
                        seen.add(gid)
                        yield self.get_return(gid)
            if not connection["pageInfo"]["hasNextPage"]:
                return
            after = connection["pageInfo"]["endCursor"]

    # -- writes ---------------------------------------------------------------------------------
    def create_return(
        self,
        order_id: int | str,
        lines: list[tuple[str, int]],
        *,
        reason: str,
        requested_at: datetime | None = None,
    ) -> ShopifyReturn:
        """``returnCreate``: an OPEN return of ``lines`` ((fulfillment line item GID, quantity)).

        ``reason`` is a `ReturnReason` name (``SIZE_TOO_SMALL`` …) or our own text (sent as OTHER
        with the text as the reason note). Not idempotent: read `order_returns` first.
        """
        return_reason, note = _reason(reason)
        payload: dict[str, Any] = {
            "orderId": _order_gid(order_id),
            "returnLineItems": [
                {
                    "fulfillmentLineItemId": fli,
                    "quantity": int(quantity),
                    "returnReason": return_reason,
                    "returnReasonNote": note,
                }
                for fli, quantity in lines
            ],
        }
        if requested_at is not None:
            moment = requested_at if requested_at.tzinfo else requested_at.replace(tzinfo=UTC)
            payload["requestedAt"] = moment.isoformat()
        data = self._run("return_create", {"input": payload}, record=str(order_id), idempotent=False)
        result = data.get("returnCreate") or {}
        _user_errors(result, "return_create", str(order_id))
        return ShopifyReturn.from_graphql(self._complete_return(result["return"]))

    def approve_return_request(self, return_id: int | str) -> ShopifyReturn:
        """``returnApproveRequest``: REQUESTED -> OPEN; an OPEN return is returned as it is."""
        gid = return_gid(return_id)
        data = self._run(
            "return_approve_request", {"input": {"id": gid, "notifyCustomer": False}}, record=gid
        )
        result = data.get("returnApproveRequest") or {}
        if not self._already(result, gid, "OPEN", "return_approve_request"):
            return ShopifyReturn.from_graphql(self._complete_return(result["return"]))
        return self.get_return(gid)

    def decline_return_request(self, return_id: int | str, *, reason: str, note: str) -> ShopifyReturn:
        """``returnDeclineRequest`` with a `ReturnDeclineReason` (RETURN_PERIOD_ENDED, FINAL_SALE,
        OTHER); a return already DECLINED is returned as it is."""
        gid = return_gid(return_id)
        decline_reason = reason.strip().upper()
        if decline_reason not in DECLINE_REASONS:
            raise ValueError(f"decline reason must be one of {DECLINE_REASONS}, not {reason!r}")
        variables = {
            "input": {
                "id": gid,
                "declineReason": decline_reason,
                "declineNote": note,
                "notifyCustomer": False,
            }
        }
        result = self._run("return_decline_request", variables, record=gid).get("returnDeclineRequest") or {}
        if not self._already(result, gid, "DECLINED", "return_decline_request"):
            return ShopifyReturn.from_graphql(self._complete_return(result["return"]))
        return self.get_return(gid)

    def close_return(self, return_id: int | str) -> None:
        """``returnClose``: OPEN -> CLOSED; already CLOSED is success."""
        gid = return_gid(return_id)
        result = self._run("return_close", {"id": gid}, record=gid).get("returnClose") or {}
        self._already(result, gid, "CLOSED", "return_close")

    def cancel_return(self, return_id: int | str) -> None:
        """``returnCancel``: OPEN -> CANCELED before anything was processed; already CANCELED is
        success; a processed return raises `RemoteValidationError` (INVALID_STATE)."""
        gid = return_gid(return_id)
        result = self._run("return_cancel", {"id": gid}, record=gid).get("returnCancel") or {}
        self._already(result, gid, "CANCELED", "return_cancel")

    def _already(self, result: dict[str, Any], gid: str, wanted: str, operation: str) -> bool:
        """False when the mutation succeeded; True when it was refused because the return is
        already ``wanted``; raises on any other refusal."""
        problems = result.get("userErrors") or []
        if not problems:
            return False
        if problems[0].get("code") == "INVALID_STATE":
            node = self._run("return", {"id": gid}, record=gid).get("return")
            if node is not None and node["status"] == wanted:
                return True
        _user_errors(result, operation, gid)
        return False  # not reached: _user_errors raised

    def attach_return_label(
        self,
        return_id: int | str,
        *,
        tracking_number: str,
        tracking_url: str | None,
        label_url: str,
        notify: bool = True,
    ) -> str:
        """Attach our label and tracking to the return's reverse fulfillment order (every unit);
        returns the reverse delivery's id. A delivery with this tracking number already on the
        return is returned instead (no second one)."""
        node = self._return_node(return_id)
        for rfo in node["reverseFulfillmentOrders"]["nodes"]:
            for delivery in rfo["reverseDeliveries"]["nodes"]:
                tracking = (delivery.get("deliverable") or {}).get("tracking") or {}
                if tracking.get("number") == tracking_number:
                    return str(delivery["id"])
        open_rfos = [r for r in node["reverseFulfillmentOrders"]["nodes"] if r["status"] == "OPEN"]
        if not open_rfos:
            raise RemoteValidationError(
                f"return {node['name']} ({node['status']}) has no open reverse fulfillment order",
                system=SYSTEM, operation="reverse_delivery_create", record=node["id"], code="INVALID_STATE",
            )  # fmt: skip
        variables = {
            "reverseFulfillmentOrderId": open_rfos[0]["id"],
            "lines": [],  # every unit of the reverse fulfillment order
            "tracking": {"number": tracking_number, **({"url": tracking_url} if tracking_url else {})},
            "label": {"fileUrl": label_url},
            "notifyCustomer": bool(notify),
        }
        data = self._run("reverse_delivery_create", variables, record=node["id"], idempotent=False)
        result = data.get("reverseDeliveryCreateWithShipping") or {}
        _user_errors(result, "reverse_delivery_create", node["id"])
        return str(result["reverseDelivery"]["id"])

    def process_return(
        self,
        return_id: int | str,
        lines: list[tuple[str, int, bool]],
        *,
        transactions: list[SuggestedTransaction] | None,
        note: str,
        notify: bool = True,
        location_id: str | None = None,
    ) -> OrderRefund | None:
        """``returnProcess`` of ``lines`` ((return line item GID, quantity, restock)).

        Each line's units get one disposition: RESTOCKED (at ``location_id``, or where Shopify
        puts them when None) or NOT_RESTOCKED. With ``transactions`` (usually the suggested ones,
        each needing its parent payment) the units are refunded through
        ``financialTransfer.issueRefund``; the refund created is returned (found on the order by
        ``note``), None when no money moved. Not idempotent: read ``processed_quantity`` first.
        """
        node = self._return_node(return_id)
        record = node["id"]
        rfo_lines = {
            (line.get("fulfillmentLineItem") or {}).get("id"): line["id"]
            for rfo in node["reverseFulfillmentOrders"]["nodes"]
            for line in rfo["lineItems"]["nodes"]
        }
        by_id = {n["id"]: n for n in node["returnLineItems"]["nodes"]}
        items = []
        for return_line_id, quantity, restock in lines:
            line = by_id.get(return_line_id)
            if line is None:
                raise RemoteValidationError(
                    f"{return_line_id} is not a line of return {node['name']}", system=SYSTEM,
                    operation="return_process", record=record, code="NOT_FOUND",
                )  # fmt: skip
            item: dict[str, Any] = {"id": return_line_id, "quantity": int(quantity)}
            rfo_line = rfo_lines.get((line.get("fulfillmentLineItem") or {}).get("id"))
            if rfo_line is not None:
                disposition: dict[str, Any] = {
                    "reverseFulfillmentOrderLineItemId": rfo_line,
                    "quantity": int(quantity),
                    "dispositionType": "RESTOCKED" if restock else "NOT_RESTOCKED",
                }
                if restock and location_id:
                    disposition["locationId"] = location_id
                item["dispositions"] = [disposition]
            items.append(item)
        payload: dict[str, Any] = {
            "returnId": record,
            "returnLineItems": items,
            "note": note,
            "notifyCustomer": bool(notify),
        }
        money = [t for t in transactions or [] if t.amount > 0]
        before: set[str] = set()
        if money:
            if any(not t.parent_gid for t in money):
                raise ValueError("every refund transaction of a return needs its parent payment (parent_gid)")
            order = self.order_money(node["order"]["id"])
            before = {r.gid for r in order.refunds}
            payload["financialTransfer"] = {
                "issueRefund": {
                    "orderTransactions": [
                        {
                            "parentId": t.parent_gid,
                            "transactionAmount": {
                                "amount": str(cents(t.amount)),
                                "currencyCode": order.currency,
                            },
                        }
                        for t in money
                    ]
                }
            }
        data = self._run("return_process", {"input": payload}, record=record, idempotent=False)
        result = data.get("returnProcess") or {}
        _user_errors(result, "return_process", record)
        if not money:
            return None
        return self.refund_by_note(node["order"]["id"], note, exclude=before)

    def refund_by_note(
        self, order_id: int | str, note: str, *, exclude: set[str] | None = None
    ) -> OrderRefund | None:
        """The newest refund of the order whose note is ``note`` (not one of ``exclude``), or None."""
        refunds = [
            r
            for r in self.order_money(str(order_id)).refunds
            if r.note == note and r.gid not in (exclude or set())
        ]
        return refunds[-1] if refunds else None


def _user_errors(payload: dict[str, Any] | None, operation: str, record: str | None) -> None:
    from mienne_ops.integrations.shopify import user_errors

    user_errors(payload, operation, record)
