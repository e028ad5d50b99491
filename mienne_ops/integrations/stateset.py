"""Typed client and Dagster resource for StateSet orders (stateset-node SDK paths and shapes).

StateSet has no idempotency key, so an order is created only after looking it up by our external
reference (``data.metadata.external_id``); state changes go through the action sub-resources, and
shipping an order that already carries the same tracking number counts as done. Errors arrive as
``{"error": {"code", "message"}}``; the client branches on the HTTP status only.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from mienne_ops.errors import AmbiguousWriteError, RemoteValidationError
from mienne_ops.integrations.http import HttpCore
from mienne_ops.integrations.resource import ClientResource

SYSTEM = "stateset"
SHIPPED_OR_LATER = ("SHIPPED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED")


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
        body = self._call(
            "GET",
            "orders/search",
            operation="orders_search",
            record=external_id,
            params={"external_id": external_id},
        )
        matches = body.get("data") or []
        return matches[0] if matches else None

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
        self, order_id: str, *, carrier: str, tracking_number: str, tracking_url: str | None = None
    ) -> dict:
        """Move the order to SHIPPED with this tracking; already shipped with it counts as success."""
        details = {"carrier": carrier, "tracking_number": tracking_number}
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


def _carries_tracking(order: dict, tracking_number: str) -> bool:
    data = order.get("data") or {}
    shipments = data.get("shipments") or []
    details = data.get("shipping_details") or {}
    return details.get("tracking_number") == tracking_number or any(
        s.get("tracking_number") == tracking_number for s in shipments
    )


class StateSetResource(ClientResource):
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
