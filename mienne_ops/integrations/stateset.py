"""Typed client and Dagster resource for StateSet orders and returns (stateset-node SDK paths and
shapes).

Returns: created once per our key, kept in ``data.metadata.external_id`` (the SDK's
``ReturnData.metadata``; StateSet has no idempotency key) and found through ``GET
returns?order_id=`` (exact match only); one return is read as ``response.return``, as the SDK
does. Each action (approve, receive, refund, cancel, close) is idempotent: a return already at or
past that state is returned as it is (read first, and again after a 409 or a lost answer; a CLOSED
return is checked against its history).

StateSet has no idempotency key, so an order is created only after looking it up by our external
reference (``data.metadata.external_id``). The SDK's only look-up is a full-text search
(``GET orders/search?query=`` -> ``{orders, total}``), which may return unrelated orders whose text
merely contains the key: only a result whose ``metadata.external_id`` equals the key is accepted,
never the first hit on trust. State changes go through the action sub-resources with the SDK's
bodies (``ship`` takes ``ShippingDetails``: ``carrier``, ``method`` and a numeric ``shipping_cost``);
shipping an order that already carries the same tracking number counts as done, cancelling a
CANCELLED order too, and a refund whose amount and reason are already on the order is not sent
again. Errors arrive as ``{"error": {"code", "message"}}``; the client branches on the HTTP status
only.
"""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal
from typing import Any

import httpx

from mienne_ops.errors import AmbiguousWriteError, RemoteValidationError
from mienne_ops.integrations.http import HttpCore
from mienne_ops.integrations.resource import ClientResource

SYSTEM = "stateset"
SHIPPED_OR_LATER = ("SHIPPED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED")
SEARCH_PAGE = 100
#: The SDK's `ReturnReason`, `ReturnCondition` and `RefundMethod` values.
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
#: Return statuses at or past each action (its work is done): the action is not sent again.
_RECEIVED_OR_LATER = ("RECEIVED", "INSPECTING", "PROCESSING_REFUND", "COMPLETED")
RETURN_DONE: dict[str, tuple[str, ...]] = {
    "approve": ("APPROVED", "AWAITING_RECEIPT", *_RECEIVED_OR_LATER),
    "receive": _RECEIVED_OR_LATER,
    "refund": ("COMPLETED",),
    "cancel": ("CANCELLED",),
    "close": ("CLOSED",),
}
RECEIVED_BY = "mienne-ops"

log = logging.getLogger("mienne_ops.integrations.stateset")


def describe_error(response: httpx.Response) -> tuple[str | None, str]:
    error = response.json().get("error") or {}
    return error.get("code"), str(error.get("message") or response.reason_phrase)


class StateSetClient:
    """StateSet's REST API over the shared HTTP core."""

    def __init__(self, core: HttpCore) -> None:
        self.core = core

    def close(self) -> None:
        self.core.close()

    def _call(self, method: str, path: str, *, operation: str, record: str | None = None, **kwargs) -> Any:
        # The SDK sends a request id per call; it makes the sandbox's and StateSet's logs traceable.
        headers = {"X-Request-ID": f"mienne-{uuid.uuid4().hex[:16]}"}
        response = self.core.request(
            method, path, operation=operation, record=record, headers=headers, **kwargs
        )
        return response.json()

    # -- orders ---------------------------------------------------------------------------------
    def find_order_by_external_id(self, external_id: str) -> dict | None:
        """The order whose ``metadata.external_id`` is exactly ``external_id`` (None if there is none).

        Every page of the search is read: an exact match may follow fuzzy ones. Two exact matches
        (a duplicate made outside this client) resolve to the oldest, and are logged.
        """
        exact = [order for order in self._search(external_id) if _external_id(order) == external_id]
        if len(exact) > 1:
            log.warning("stateset: %d orders carry external id %s; using the oldest", len(exact), external_id)
        exact.sort(key=lambda order: str(order.get("created_at") or ""))
        return exact[0] if exact else None

    def _search(self, query: str) -> list[dict]:
        found: list[dict] = []
        while True:
            body = self._call(
                "GET",
                "orders/search",
                operation="orders_search",
                record=query,
                params={"query": query, "limit": SEARCH_PAGE, "offset": len(found)},
            )
            page = body.get("orders") or []
            found.extend(page)
            if not page or len(found) >= int(body.get("total") or 0):
                return found

    def create_order(self, external_id: str, data: dict) -> dict:
        """Create the order unless one with this external id exists (then return that one)."""
        existing = self.find_order_by_external_id(external_id)
        if existing is not None:
            return existing
        metadata = {**(data.get("metadata") or {}), "external_id": external_id}
        try:
            return self._call(
                "POST",
                "orders",
                operation="orders_create",
                record=external_id,
                json={**data, "metadata": metadata},
                idempotent=False,
            )
        except AmbiguousWriteError:
            # The create may have landed: look again before anyone resends it.
            found = self.find_order_by_external_id(external_id)
            if found is None:
                raise
            return found

    def get_order(self, order_id: str) -> dict:
        return self._call("GET", f"orders/{order_id}", operation="orders_get", record=order_id)

    def ship_order(
        self,
        order_id: str,
        *,
        carrier: str,
        method: str,
        tracking_number: str,
        shipping_cost: Decimal = Decimal("0"),
        tracking_url: str | None = None,
    ) -> dict:
        """Move the order to SHIPPED with this tracking; already shipped with it counts as success."""
        details: dict[str, Any] = {
            "carrier": carrier,
            "method": method,
            "tracking_number": tracking_number,
            # The SDK types amounts as numbers; two decimals survive the float exactly enough.
            "shipping_cost": float(shipping_cost),
        }
        if tracking_url:
            details["tracking_url"] = tracking_url
        try:
            return self._call(
                "POST", f"orders/{order_id}/ship", operation="orders_ship", record=order_id, json=details
            )
        except RemoteValidationError as error:
            if error.status != 409:
                raise
            order = self.get_order(order_id)
            if order["status"] in SHIPPED_OR_LATER and _carries_tracking(order, tracking_number):
                return order
            raise

    def cancel_order(self, order_id: str, *, reason: str) -> dict:
        """Cancel the order (``POST orders/{id}/cancel`` with the SDK's ``{reason}``).

        An order already CANCELLED counts as done (a re-run, or a cancel whose answer was lost); one
        StateSet refuses to cancel (shipped or later: 409) raises `RemoteValidationError`.
        """
        try:
            return self._call(
                "POST",
                f"orders/{order_id}/cancel",
                operation="orders_cancel",
                record=order_id,
                json={"reason": reason},
            )
        except (AmbiguousWriteError, RemoteValidationError) as error:
            if isinstance(error, RemoteValidationError) and error.status != 409:
                raise
            order = self.get_order(order_id)
            if order.get("status") == "CANCELLED":
                return order
            raise

    def refund_order(self, order_id: str, *, amount: Decimal, reason: str) -> dict:
        """Record a refund of ``amount`` on the order (``POST orders/{id}/refund``, ``{amount,
        reason}``).

        StateSet has no idempotency key: the ``reason`` is the refund's identity, so it must name the
        refund (e.g. ``"shopify refund 123: damaged"``). A refund of the same amount with the same
        reason already on the order counts as done — looked up before sending, and again after an
        answer that was lost or a refusal (a full refund moves the order to REFUNDED). Refunding more
        than was paid and not yet refunded is a 400 (`RemoteValidationError`).
        """
        order = self.get_order(order_id)
        if _has_refund(order, amount, reason):
            return order
        try:
            return self._call(
                "POST",
                f"orders/{order_id}/refund",
                operation="orders_refund",
                record=order_id,
                # The SDK types amounts as numbers; two decimals survive the float exactly enough.
                json={"amount": float(amount), "reason": reason},
                idempotent=False,
            )
        except (AmbiguousWriteError, RemoteValidationError):
            order = self.get_order(order_id)
            if _has_refund(order, amount, reason):
                return order
            raise

    def add_fulfillment_event(self, order_id: str, event: dict) -> dict:
        return self._call(
            "POST",
            f"orders/{order_id}/fulfillment-events",
            operation="orders_fulfillment_event",
            record=order_id,
            json=event,
        )

    def order_action(self, order_id: str, action: str, body: dict | None = None) -> dict:
        """Any other action sub-resource (confirm, process, deliver, cancel, return, refund)."""
        return self._call(
            "POST",
            f"orders/{order_id}/{action}",
            operation=f"orders_{action}",
            record=order_id,
            json=body or {},
        )

    # -- returns ------------------------------------------------------------------------------------
    def find_return(self, order_id: str, external_id: str) -> dict | None:
        """The return of ``order_id`` whose ``data.metadata.external_id`` is ``external_id``.

        Read through ``GET returns?order_id=`` (the SDK's `ReturnListParams`), every page; only an
        exact metadata match counts. Two matches (a duplicate made outside this client) resolve to
        the oldest, and are logged."""
        found: list[dict] = []
        offset = 0
        while True:
            body = self._call(
                "GET",
                "returns",
                operation="returns_list",
                record=order_id,
                params={"order_id": order_id, "limit": SEARCH_PAGE, "offset": offset},
            )
            page = body.get("returns") or []
            found.extend(r for r in page if _external_id(r) == external_id)
            offset += len(page)
            if not page or offset >= int(body.get("total_count") or 0):
                break
        if len(found) > 1:
            log.warning(
                "stateset: %d returns carry external id %s; using the oldest", len(found), external_id
            )
        found.sort(key=lambda record: str(record.get("created_at") or ""))
        return found[0] if found else None

    def create_return(
        self,
        *,
        order_id: str,
        external_id: str,
        items: list[dict],
        reason: str,
        customer_email: str | None,
        shipping_label: dict | None = None,
    ) -> dict:
        """Create a return of the order (``POST returns``) unless one carrying ``external_id`` exists.

        StateSet has no idempotency key: our key lives in ``data.metadata.external_id`` (the SDK's
        `ReturnData.metadata`) and the order's returns are read first (`find_return`), and again
        after an answer that was lost. ``items`` are `ReturnItem`s (``product_id``, ``quantity``,
        ``refund_amount``; ``order_item_id``, ``condition`` optional); an item without its own
        ``reason`` takes ``reason``; reasons outside the SDK's `ReturnReason` become ``other`` (the
        original kept in ``metadata.reason``). ``customer_id`` is the order's; the email goes to
        ``metadata.customer_email``. ``shipping_label`` is a `ShippingLabel` (numeric ``cost``)."""
        existing = self.find_return(order_id, external_id)
        if existing is not None:
            return existing
        order = self.get_order(order_id)
        data: dict[str, Any] = {
            "order_id": order_id,
            "customer_id": str((order.get("data") or {}).get("customer_id") or ""),
            "items": [_return_item(item, reason) for item in items],
            "metadata": {
                "external_id": external_id,
                "reason": reason,
                **({"customer_email": customer_email} if customer_email else {}),
            },
        }
        if shipping_label is not None:
            data["shipping_label"] = _label(shipping_label)
        try:
            return _unwrap(
                self._call(
                    "POST",
                    "returns",
                    operation="returns_create",
                    record=external_id,
                    json=data,
                    idempotent=False,
                )
            )
        except AmbiguousWriteError:
            found = self.find_return(order_id, external_id)
            if found is None:
                raise
            return found

    def get_return(self, return_id: str) -> dict:
        return _unwrap(self._call("GET", f"returns/{return_id}", operation="returns_get", record=return_id))

    def approve_return(self, return_id: str, *, shipping_label: dict | None = None) -> dict:
        """REQUESTED / PENDING_APPROVAL -> APPROVED (the label, if given, travels with it)."""
        body: dict[str, Any] = {}
        if shipping_label is not None:
            body["shipping_label"] = _label(shipping_label)
        return self._return_action(return_id, "approve", body)

    def receive_return(self, return_id: str, *, items: list[dict], condition: str) -> dict:
        """APPROVED -> RECEIVED with what came back (``items[{product_id, quantity}]``) in the SDK's
        `ReturnCondition` (``new``, ``like_new``, ``used``, ``damaged``, ``unsalvageable``).

        StateSet holds one receipt per return: call it once, with what arrived; a return already
        RECEIVED or later is returned as it is."""
        if condition not in RETURN_CONDITIONS:
            raise ValueError(f"not a StateSet return condition: {condition!r}")
        received = [
            {"product_id": str(item["product_id"]), "quantity": int(item["quantity"]), "condition": condition}
            for item in items
        ]
        body = {"received_by": RECEIVED_BY, "condition_notes": condition, "items": received}
        return self._return_action(return_id, "receive", body)

    def refund_return(self, return_id: str, *, amount: Decimal, method: str = "original_payment") -> dict:
        """RECEIVED (or inspecting) -> COMPLETED with `RefundDetails` ``{method, amount}``; a
        COMPLETED return is returned as it is. Refunding before the receipt is a 409."""
        if method not in REFUND_METHODS:
            raise ValueError(f"not a StateSet refund method: {method!r}")
        # The SDK types amounts as numbers; two decimals survive the float exactly enough.
        return self._return_action(return_id, "refund", {"method": method, "amount": float(amount)})

    def cancel_return(self, return_id: str, *, reason: str) -> dict:
        """Cancel before the goods are received (after: 409, `RemoteValidationError`)."""
        return self._return_action(return_id, "cancel", {"reason": reason})

    def close_return(self, return_id: str, *, reason: str | None = None) -> dict:
        """Close a received, completed, rejected or cancelled return."""
        return self._return_action(return_id, "close", {"reason": reason} if reason else {})

    def _return_action(self, return_id: str, action: str, body: dict) -> dict:
        """Run an action once: a return already at or past its state is returned as it is — read
        first, and again after a refusal (409) or a lost answer."""
        current = self.get_return(return_id)
        if self._already(current, action):
            return current
        try:
            return _unwrap(
                self._call(
                    "POST",
                    f"returns/{return_id}/{action}",
                    operation=f"returns_{action}",
                    record=return_id,
                    json=body,
                    idempotent=False,
                )
            )
        except (AmbiguousWriteError, RemoteValidationError) as error:
            if isinstance(error, RemoteValidationError) and error.status != 409:
                raise
            current = self.get_return(return_id)
            if self._already(current, action):
                return current
            raise

    def _already(self, record: dict, action: str) -> bool:
        status = record.get("status")
        if status in RETURN_DONE[action]:
            return True
        if status != "CLOSED" or action == "close":
            return False
        # A closed return: did it pass through this action before closing? Its history says.
        history = self._call(
            "GET", f"returns/{record['id']}/history", operation="returns_history", record=record["id"]
        )
        return any(entry.get("action") == action for entry in history.get("history") or [])


def _unwrap(body: dict) -> dict:
    """The SDK reads one return as ``response.return``."""
    return body["return"] if isinstance(body.get("return"), dict) else body


def return_reason(reason: str) -> str:
    """A reason as the SDK's `ReturnReason` (anything else is ``other``)."""
    normalized = reason.strip().lower().replace("-", "_").replace(" ", "_")
    return normalized if normalized in RETURN_REASONS else "other"


def _return_item(item: dict, reason: str) -> dict:
    result: dict[str, Any] = {
        "product_id": str(item["product_id"]),
        "quantity": int(item["quantity"]),
        "reason": return_reason(str(item.get("reason") or reason)),
        # The SDK types amounts as numbers; two decimals survive the float exactly enough.
        "refund_amount": float(Decimal(str(item.get("refund_amount", 0)))),
    }
    for key in ("order_item_id", "serial_number", "notes"):
        if item.get(key) is not None:
            result[key] = str(item[key])
    if item.get("condition") is not None:
        result["condition"] = item["condition"]
    return result


def _label(label: dict) -> dict:
    return {**label, "cost": float(Decimal(str(label.get("cost", 0))))}


def _external_id(order: dict) -> str | None:
    metadata = (order.get("data") or {}).get("metadata") or {}
    value = metadata.get("external_id")
    return None if value is None else str(value)


def _has_refund(order: dict, amount: Decimal, reason: str) -> bool:
    """Whether a refund of this amount and reason is on the order (its history, or the last one)."""
    data = order.get("data") or {}
    refunds = [*(data.get("refunds") or []), order.get("refund_details") or {}]
    return any(
        refund.get("reason") == reason and Decimal(str(refund.get("amount", "NaN"))) == amount
        for refund in refunds
        if refund
    )


def _carries_tracking(order: dict, tracking_number: str) -> bool:
    data = order.get("data") or {}
    shipments = data.get("shipments") or []
    details = order.get("shipping_details") or data.get("shipping_details") or {}
    return details.get("tracking_number") == tracking_number or any(
        s.get("tracking_number") == tracking_number for s in shipments
    )


class StateSetResource(ClientResource[StateSetClient]):
    """StateSet connection settings; ``base_url`` is the API root or ``<sandbox>/stateset``."""

    base_url: str
    api_key: str

    def build_client(self) -> StateSetClient:
        core = HttpCore(
            system=SYSTEM,
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"},
            timeout=self.timeout_seconds,
            retry=self.retry_policy(),
            describe_error=describe_error,
        )
        return StateSetClient(core)
