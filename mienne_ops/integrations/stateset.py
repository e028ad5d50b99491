"""Typed client and Dagster resource for StateSet orders (stateset-node SDK paths and shapes).

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
