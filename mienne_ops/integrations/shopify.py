"""The Shopify Admin GraphQL client and its Dagster resource.

Every call is one POST to ``/admin/api/{version}/graphql.json`` through the shared `HttpCore`
(timeouts, retries, error classes). What is Shopify's own lives here: the documents (``.graphql``
files beside this module, so a test validates each one against the real schema), the cost-aware
throttle (the last ``throttleStatus`` predicts the bucket; a call waits when its expected cost would
not fit, and a ``THROTTLED`` answer becomes a `TransientError` with the wait Shopify implies),
``userErrors`` turned into `RemoteValidationError`, and webhook HMAC verification.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import httpx

from mienne_ops.domain.money import cents
from mienne_ops.domain.shopify_money import (
    OrderMoney,
    OrderRefund,
    SuggestedRefund,
    SuggestedTransaction,
)
from mienne_ops.errors import NotFoundError, PermanentError, RemoteValidationError, TransientError
from mienne_ops.integrations.http import STATS, HttpCore
from mienne_ops.integrations.resource import ClientResource
from mienne_ops.integrations.shared_limits import SharedCostThrottle, shopify_throttle
from mienne_ops.integrations.shopify_bulk import BulkQueries
from mienne_ops.integrations.shopify_returns import ShopifyReturns

SYSTEM = "shopify"
DEFAULT_API_VERSION = "2026-04"
FRAGMENT_FILES = ("order_fields", "fulfillment_fields", "inventory_fields", "money_fields", "return_fields")
MAX_PAGE_SIZE = 250
MAX_INVENTORY_QUANTITIES = 250  # inventorySetQuantities input-array limit

# Page sizes. Shopify prices a query before running it (`2 + first × one node`, nested lists
# multiply) and refuses one over 1,000 points, so every nested list is read a small page at a time
# with its parent and the rest by its own paged query. `SENT_VARIABLES` prices each document at
# these sizes (mienne_ops_tests/integrations/test_query_cost.py keeps each under 900).
ORDER_LINE_ITEMS = 50  # lines read with one order (order: 704 points)
ORDERS_PAGE = 3  # orders per page of `iter_orders` ...
ORDERS_PAGE_LINE_ITEMS = 10  # ... each with its first 10 lines (674 points)
LINE_ITEMS_PAGE = 50  # later pages of an order's lines (603)
SHIPPING_LINES_PAGE = 50  # later pages of an order's shipping lines (403)
ORDER_TRANSACTIONS_READ = 10  # transactions read with an order (the fragment's `first`)
ALL_TRANSACTIONS = 250  # `transactions` is a plain list: when 10 came back, read them all (753)
FULFILLMENTS_READ = 5  # fulfillments read with details in one call (178 in fulfillments)
FULFILLMENT_IDS = 250  # every fulfillment id, when the first page was full (253)
FULFILLMENTS_BY_ID = 20  # fulfillments read by id per call (700)
FULFILLMENT_TRACKING_READ = 10  # tracking numbers read with a fulfillment (the fragment's `first`)
ALL_TRACKING = 250  # a plain list too: all of them when 10 came back (253)
FULFILLMENT_LINES_PAGE = 100  # later pages of a fulfillment's lines (203)
FULFILLMENT_ORDERS_PAGE = 10  # fulfillment orders per call, each with its first 30 lines (653)
STATE_FULFILLMENT_ORDERS = 5  # fulfillment orders read by fulfillment_state (505 with 5 fulfillments)
# Fulfillment order statuses that accept a hold (an ON_HOLD one takes another app's or reason's hold).
HOLDABLE_FO_STATUSES = ("OPEN", "IN_PROGRESS", "ON_HOLD")
FULFILLMENT_ORDER_LINES_PAGE = 100  # later pages of a fulfillment order's lines (203)
INVENTORY_ITEMS_PAGE = 40  # inventory items per page, each with its first 5 levels (762)
INVENTORY_ITEMS_BY_ID = 40  # items re-read by id per call (760)
INVENTORY_LEVELS_PAGE = 100  # later pages of one item's levels (303)
WEBHOOK_SUBSCRIPTIONS_PAGE = 100
# Money (flow F): one order with its first 30 lines, 20 transactions and 3 refunds of 10 lines each
# (555 points); the rest by the paging documents below.
MONEY_LINE_ITEMS = 30
MONEY_TRANSACTIONS = 20
MONEY_REFUNDS = 3
REFUND_LINES_READ = 10  # lines read with each refund (`$refundLines`)
MONEY_LINES_PAGE = 100  # later pages of an order's lines (303)
ALL_MONEY_TRANSACTIONS = 200  # a plain list: all of them when 20 came back (802)
REFUND_IDS = 250  # every refund id of an order, when 3 came back (252)
REFUNDS_BY_ID = 5  # refunds read by id per call (620)
REFUND_STAMPS_PAGE = 50  # orders per page of the refund poll's first pass, each with ...
REFUND_STAMPS_READ = 5  # ... its first 5 refunds' creation times (402 points)
REFUND_LINES_PAGE = 100  # later pages of a refund's lines (603)
REFUND_CREATE_LINES = 50  # lines read back with a created refund (376)
CANCEL_JOB_POLLS = 20  # orderCancel job polls before giving up (about 30 s in all)

_IDS = "gid://shopify/Node/0"  # any id: `nodes(ids:)` is priced by how many are sent
SENT_VARIABLES: dict[str, dict[str, Any]] = {
    "order": {"lineItems": ORDER_LINE_ITEMS},
    "orders": {"first": ORDERS_PAGE, "lineItems": ORDERS_PAGE_LINE_ITEMS},
    "order_ids": {"first": MAX_PAGE_SIZE},
    "order_line_items": {"first": LINE_ITEMS_PAGE},
    "order_shipping_lines": {"first": SHIPPING_LINES_PAGE},
    "order_transactions": {"first": ALL_TRANSACTIONS},
    "fulfillment_state": {"fulfillments": FULFILLMENTS_READ, "fulfillmentOrders": STATE_FULFILLMENT_ORDERS},
    "fulfillments": {"first": FULFILLMENTS_READ},
    "fulfillment_ids": {"first": FULFILLMENT_IDS},
    "fulfillments_by_id": {"ids": [_IDS] * FULFILLMENTS_BY_ID},
    "fulfillment_line_items": {"first": FULFILLMENT_LINES_PAGE},
    "fulfillment_tracking_info": {"first": ALL_TRACKING},
    "fulfillment_orders": {"first": FULFILLMENT_ORDERS_PAGE},
    "fulfillment_order_release_hold": {"holdIds": [_IDS]},  # one hold per handle per fulfillment order
    "fulfillment_order_line_items": {"first": FULFILLMENT_ORDER_LINES_PAGE},
    "inventory_items": {"first": INVENTORY_ITEMS_PAGE},
    "inventory_items_by_id": {"ids": [_IDS] * INVENTORY_ITEMS_BY_ID},
    "inventory_item_levels": {"first": INVENTORY_LEVELS_PAGE},
    "webhook_subscriptions": {"first": WEBHOOK_SUBSCRIPTIONS_PAGE},
    "order_money": {
        "lineItems": MONEY_LINE_ITEMS,
        "transactions": MONEY_TRANSACTIONS,
        "refunds": MONEY_REFUNDS,
        "refundLines": REFUND_LINES_READ,
    },
    "order_money_line_items": {"first": MONEY_LINES_PAGE},
    "order_money_transactions": {"first": ALL_MONEY_TRANSACTIONS},
    "order_refund_ids": {"first": REFUND_IDS},
    "order_refund_stamps": {"first": REFUND_STAMPS_PAGE, "refunds": REFUND_STAMPS_READ},
    "refunds_by_id": {"ids": [_IDS] * REFUNDS_BY_ID, "refundLines": REFUND_LINES_READ},
    "refund_line_items": {"first": REFUND_LINES_PAGE},
    "refund_create": {"refundLines": REFUND_CREATE_LINES},
}


# -- documents ------------------------------------------------------------------------------------
@cache
def _graphql_file(name: str) -> str:
    return resources.files("mienne_ops.integrations.graphql").joinpath(f"{name}.graphql").read_text()


_FRAGMENT = re.compile(r"(?m)^fragment\s+(\w+)")
_SPREAD = re.compile(r"\.\.\.(\w+)")


@cache
def _shared_fragments() -> dict[str, str]:
    """Every fragment of the shared fragment files, by name."""
    found: dict[str, str] = {}
    for file in FRAGMENT_FILES:
        text = _graphql_file(file)
        starts = list(_FRAGMENT.finditer(text))
        for index, match in enumerate(starts):
            end = starts[index + 1].start() if index + 1 < len(starts) else len(text)
            found[match.group(1)] = text[match.start() : end].strip()
    return found


@cache
def document(name: str) -> str:
    """The text of ``graphql/<name>.graphql`` plus the shared fragments it uses (transitively)."""
    return with_fragments(_graphql_file(name))


def with_fragments(text: str) -> str:
    """A document's text followed by the shared fragments it uses (transitively)."""
    shared = _shared_fragments()
    defined = set(_FRAGMENT.findall(text))
    needed: list[str] = []
    pending = _SPREAD.findall(text)
    while pending:
        fragment = pending.pop(0)
        if fragment in shared and fragment not in defined and fragment not in needed:
            needed.append(fragment)
            pending.extend(_SPREAD.findall(shared[fragment]))
    return "\n\n".join([text, *(shared[f] for f in needed)])


def document_names() -> list[str]:
    """Every operation document the client sends (fragment-only files excluded)."""
    folder = resources.files("mienne_ops.integrations.graphql")
    names = [p.name.removesuffix(".graphql") for p in folder.iterdir() if p.name.endswith(".graphql")]
    return sorted(n for n in names if n not in FRAGMENT_FILES)


# -- ids and helpers ------------------------------------------------------------------------------
def order_gid(order_id: int | str) -> str:
    """``gid://shopify/Order/<id>`` for a numeric id (a GID is returned as it is)."""
    if str(order_id).startswith("gid://"):
        return str(order_id)
    return f"gid://shopify/Order/{order_id}"


def legacy_id(gid: str) -> int:
    return int(gid.rsplit("/", 1)[-1].split("?")[0])


def topic_enum(topic: str) -> str:
    """``orders/create`` or ``ORDERS_CREATE`` -> ``ORDERS_CREATE``."""
    return topic.replace("/", "_").upper()


def verify_webhook(secret: str, raw_body: bytes, hmac_header: str) -> bool:
    """True when ``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of the raw body."""
    if not secret or not hmac_header:
        return False
    digest = base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest())
    # Bytes, not text: compare_digest raises on non-ASCII text, and a forged header must be refused.
    return hmac.compare_digest(digest, hmac_header.encode("utf-8", "surrogateescape"))


def describe_shopify_error(response: httpx.Response) -> tuple[str | None, str]:
    """Shopify error bodies: ``{"errors": "text"}``, ``{"errors": {field: [...]}}`` or a list."""
    errors = response.json().get("errors")
    if isinstance(errors, dict):
        return None, "; ".join(
            f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in errors.items()
        )[:300]
    if isinstance(errors, list):
        return None, "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)[
            :300
        ]
    return None, str(errors or response.reason_phrase)[:300]


def user_errors(payload: dict[str, Any] | None, operation: str, record: str | None = None) -> None:
    """Raise `RemoteValidationError` naming the field and message of a mutation's ``userErrors``."""
    problems = (payload or {}).get("userErrors") or []
    if not problems:
        return
    rendered = "; ".join(f"{'.'.join(e.get('field') or []) or 'base'}: {e.get('message')}" for e in problems)
    raise RemoteValidationError(
        rendered, system=SYSTEM, operation=operation, record=record, code=problems[0].get("code")
    )


class CostThrottle:
    """A client-side copy of Shopify's leaky bucket, shared by every thread using one client.

    Each call reserves its expected cost (the last ``requestedQueryCost`` seen for that operation)
    before it is sent, so concurrent callers queue behind each other instead of all seeing the same
    free bucket and all getting ``THROTTLED``; when the answer arrives the unused part
    (requested − actual) is refunded, as Shopify does, and the estimate is pulled down to Shopify's
    own ``currentlyAvailable`` if that is lower.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock  # injectable so tests can drive the restore deterministically
        self._lock = threading.Lock()
        self._tokens: float | None = None  # unknown until the first throttleStatus
        self._maximum = 0.0
        self._rate = 1.0
        self._updated = 0.0
        self._expected: dict[str, float] = {}

    def reserve(self, operation: str) -> tuple[float, float]:
        """(seconds to wait, points reserved) before sending ``operation``."""
        with self._lock:
            if self._tokens is None or operation not in self._expected:
                return 0.0, 0.0
            self._refill()
            needed = min(self._expected[operation], self._maximum)
            wait = max(0.0, (needed - self._tokens) / self._rate)
            self._tokens -= needed
            return wait, needed

    def observe(self, operation: str, cost: dict[str, Any] | None, reserved: float = 0.0) -> None:
        if not cost:
            return
        with self._lock:
            status = cost.get("throttleStatus") or {}
            if status:
                self._maximum = float(status.get("maximumAvailable") or self._maximum)
                self._rate = float(status.get("restoreRate") or self._rate) or 1.0
                available = float(status.get("currentlyAvailable") or 0)
                if self._tokens is None:
                    self._tokens, self._updated = available, self._clock()
                else:
                    self._refill()
                    actual = cost.get("actualQueryCost")
                    if reserved and actual is not None:
                        self._tokens += reserved - float(actual)
                    self._tokens = min(self._tokens, available, self._maximum)
            if cost.get("requestedQueryCost") is not None:
                self._expected[operation] = float(cost["requestedQueryCost"])

    def _refill(self) -> None:
        now = self._clock()
        assert self._tokens is not None
        self._tokens = min(self._maximum, self._tokens + (now - self._updated) * self._rate)
        self._updated = now


def throttled_wait(body: dict[str, Any]) -> float:
    """Seconds until a THROTTLED request fits: (requested - currentlyAvailable) / restoreRate."""
    cost = (body.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    rate = float(status.get("restoreRate") or 0) or 50.0
    requested = float(cost.get("requestedQueryCost") or 0)
    available = float(status.get("currentlyAvailable") or 0)
    return max(0.0, (requested - available) / rate)


# -- the client -----------------------------------------------------------------------------------
class ShopifyClient(ShopifyReturns, BulkQueries):
    """Typed calls to the Shopify Admin GraphQL API over the shared HTTP core.

    Bulk operations (large reads: run, poll, stream the JSONL) come from `BulkQueries`
    (``shopify_bulk.py``), returns from `ShopifyReturns` (``shopify_returns.py``).
    """

    def __init__(
        self,
        core: HttpCore,
        api_version: str = DEFAULT_API_VERSION,
        throttle: CostThrottle | SharedCostThrottle | None = None,
    ) -> None:
        self.core = core
        self.api_version = api_version
        self.path = f"/admin/api/{api_version}/graphql.json"
        # The shop's bucket in Redis when MIENNE_LIMITER_URL is set (every worker draws on it).
        self.throttle = throttle or shopify_throttle(core.base_url) or CostThrottle()

    def close(self) -> None:
        self.core.close()

    # -- transport ------------------------------------------------------------------------------
    def execute(
        self,
        document: str,
        variables: dict[str, Any] | None = None,
        *,
        operation: str,
        record: str | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """Run one document and return its ``data``; raises on top-level ``errors``.

        ``THROTTLED`` is retried by the core after the wait Shopify implies; any other top-level
        error (invalid document, missing directive) is a `RemoteValidationError`.
        """
        wait, reserved = self.throttle.reserve(operation)
        if wait > 0:
            self.core.sleep(wait)
        context: dict[str, Any] = {"system": SYSTEM, "operation": operation, "record": record}
        parsed: dict[str, Any] = {}

        def inspect(response: httpx.Response) -> None:
            body = response.json()
            cost = (body.get("extensions") or {}).get("cost")
            self.throttle.observe(operation, cost, reserved)
            if cost and cost.get("actualQueryCost"):
                STATS.add_units(f"{SYSTEM}:cost", cost["actualQueryCost"])
            errors = body.get("errors") or []
            if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in errors):
                raise TransientError(
                    "throttled", retry_after=throttled_wait(body), code="THROTTLED", **context
                )
            if errors:
                first: dict[str, Any] = errors[0] if isinstance(errors[0], dict) else {}
                code = (first.get("extensions") or {}).get("code")
                message = "; ".join(str(e.get("message", e)) for e in errors if isinstance(e, dict))[:300]
                raise RemoteValidationError(message or "GraphQL error", code=code, **context)
            parsed.update(body)

        self.core.request(
            "POST",
            self.path,
            operation=operation,
            record=record,
            json={"query": document, "variables": variables or {}},
            idempotent=idempotent,
            inspect=inspect,
        )
        return parsed.get("data") or {}

    def _run(
        self, name: str, variables: dict[str, Any], *, record: str | None = None, idempotent: bool = True
    ) -> dict[str, Any]:
        return self.execute(document(name), variables, operation=name, record=record, idempotent=idempotent)

    def _pages(self, name: str, root: str, variables: dict[str, Any], page_size: int) -> Iterator[dict]:
        after = None
        while True:
            data = self._run(name, {**variables, "first": min(page_size, MAX_PAGE_SIZE), "after": after})
            connection = data[root]
            yield from connection["nodes"]
            if not connection["pageInfo"]["hasNextPage"]:
                return
            after = connection["pageInfo"]["endCursor"]

    def _complete(self, node: dict, field: str, name: str, root: str, page_size: int) -> None:
        """Read the pages of ``node[field]`` (a nested connection) past the first, in place.

        ``name`` is the document that pages that connection under ``root(id:)``; the nodes of every
        page are appended so callers see one complete list (``hasNextPage`` false once every page was read).
        """
        connection = node.get(field)
        info = (connection or {}).get("pageInfo") or {}
        while connection is not None and info.get("hasNextPage"):
            variables = {"id": node["id"], "first": page_size, "after": info["endCursor"]}
            data = self._run(name, variables, record=node["id"])
            more = (data.get(root) or {}).get(field)
            if more is None:  # the parent vanished meanwhile: what was read stays, nothing more to read
                break
            connection["nodes"].extend(more["nodes"])
            info = more["pageInfo"]
        if connection is not None:
            # Still true only when a page could not be read: the order mapping then refuses the
            # order (`truncated_line_items`) instead of booking the lines read so far.
            connection["pageInfo"] = {
                "hasNextPage": bool(info.get("hasNextPage")),
                "endCursor": info.get("endCursor"),
            }

    # -- orders ---------------------------------------------------------------------------------
    def iter_orders(self, search: str, page_size: int = ORDERS_PAGE) -> Iterator[dict]:
        """Order nodes (the `OrderFields` shape, complete) matching a search, oldest change first."""
        variables = {"query": search, "lineItems": ORDERS_PAGE_LINE_ITEMS}
        for node in self._pages("orders", "orders", variables, min(page_size, ORDERS_PAGE)):
            yield self._complete_order(node)

    def iter_order_ids(self, search: str, page_size: int = MAX_PAGE_SIZE) -> Iterator[str]:
        """The numeric ids (as strings) of the orders matching a search; a cheap poll."""
        for node in self._pages("order_ids", "orders", {"query": search}, page_size):
            yield str(node["legacyResourceId"])

    def get_order(self, order_id: int) -> dict | None:
        """One order node (`OrderFields`, every line, shipping line and transaction) or None."""
        variables = {"id": order_gid(order_id), "lineItems": ORDER_LINE_ITEMS}
        node = self._run("order", variables, record=str(order_id))["order"]
        return self._complete_order(node) if node else None

    def _complete_order(self, node: dict) -> dict:
        """Read what did not fit the order's first pages: lines past 50, shipping lines, transactions."""
        self._complete(node, "lineItems", "order_line_items", "order", LINE_ITEMS_PAGE)
        self._complete(node, "shippingLines", "order_shipping_lines", "order", SHIPPING_LINES_PAGE)
        if len(node.get("transactions") or []) >= ORDER_TRANSACTIONS_READ:
            variables = {"id": node["id"], "first": ALL_TRANSACTIONS}
            data = self._run("order_transactions", variables, record=node["id"])
            node["transactions"] = (data.get("order") or node)["transactions"]
        return node

    def add_tags(self, order_id: int, tags: list[str]) -> None:
        """Add tags (tagsAdd is additive and idempotent; existing tags stay)."""
        data = self._run("tags_add", {"id": order_gid(order_id), "tags": tags}, record=str(order_id))
        user_errors(data["tagsAdd"], "tags_add", str(order_id))

    # -- fulfillment ----------------------------------------------------------------------------
    def fulfillment_orders(self, order_id: int) -> list[dict]:
        """Every fulfillment order of an order with every line (shape of `_fulfillment_orders`)."""
        nodes = list(self._fulfillment_order_pages(order_id))
        return _fulfillment_orders(self._complete_fulfillment_orders({"nodes": nodes}))

    def _fulfillment_order_pages(self, order_id: int, after: str | None = None) -> Iterator[dict]:
        """An order's fulfillment orders, page by page (from ``after`` when given)."""
        return self._pages_under(
            "fulfillment_orders",
            "order",
            "fulfillmentOrders",
            order_gid(order_id),
            FULFILLMENT_ORDERS_PAGE,
            after=after,
        )

    def fulfillments(self, order_id: int) -> list[dict]:
        """Every fulfillment of an order with its tracking and lines (shape of `_fulfillments`)."""
        variables = {"id": order_gid(order_id), "first": FULFILLMENTS_READ}
        data = self._run("fulfillments", variables, record=str(order_id))
        return _fulfillments(self._complete_fulfillments(order_gid(order_id), data["order"] or {}))

    def fulfillment_state(self, order_id: int) -> tuple[list[dict], list[dict]]:
        """(fulfillments, fulfillment orders) of an order, shaped as the two above, in one call
        for an ordinary order (more only when a list is longer than its first page)."""
        variables = {
            "id": order_gid(order_id),
            "fulfillments": FULFILLMENTS_READ,
            "fulfillmentOrders": STATE_FULFILLMENT_ORDERS,
        }
        order = self._run("fulfillment_state", variables, record=str(order_id))["order"] or {}
        fulfillment_orders = order.get("fulfillmentOrders") or {"nodes": []}
        info = fulfillment_orders.get("pageInfo") or {}
        if info.get("hasNextPage"):
            fulfillment_orders["nodes"].extend(self._fulfillment_order_pages(order_id, info["endCursor"]))
        self._complete_fulfillment_orders(fulfillment_orders)
        order = self._complete_fulfillments(order_gid(order_id), order)
        return _fulfillments(order), _fulfillment_orders({"fulfillmentOrders": fulfillment_orders})

    # -- fulfillment holds (holds before dispatch, mirrored for the merchant) --------------------
    def hold_fulfillment_orders(self, order_id: int, reason: str, notes: str, handle: str) -> list[str]:
        """Hold every open fulfillment order of an order under ``handle``; returns the hold ids.

        Idempotent: a fulfillment order already holding ``handle`` keeps that hold (its id is
        returned); closed, cancelled or fulfilled ones cannot be held and are left alone.
        """
        hold_ids = []
        for fo in self.fulfillment_orders(order_id):
            existing = [h["id"] for h in fo["holds"] if h["handle"] == handle]
            if existing:
                hold_ids += existing
                continue
            if fo["status"] not in HOLDABLE_FO_STATUSES:
                continue
            hold = {"reason": reason, "reasonNotes": notes[:255], "handle": handle, "notifyMerchant": False}
            data = self._run("fulfillment_order_hold", {"id": fo["id"], "hold": hold}, record=str(order_id))
            user_errors(data["fulfillmentOrderHold"], "fulfillment_order_hold", str(order_id))
            hold_ids.append(data["fulfillmentOrderHold"]["fulfillmentHold"]["id"])
        return hold_ids

    def release_fulfillment_holds(self, order_id: int, handle: str) -> int:
        """Release this app's holds named ``handle`` on the order's fulfillment orders (how many)."""
        released = 0
        for fo in self.fulfillment_orders(order_id):
            ids = [h["id"] for h in fo["holds"] if h["handle"] == handle]
            # Only a fulfillment order on hold can be released; one cancelled or closed since (the
            # order was cancelled) has nothing left to release.
            if not ids or fo.get("status", "ON_HOLD") != "ON_HOLD":
                continue
            data = self._run(
                "fulfillment_order_release_hold", {"id": fo["id"], "holdIds": ids}, record=str(order_id)
            )
            user_errors(data["fulfillmentOrderReleaseHold"], "fulfillment_order_release_hold", str(order_id))
            released += len(ids)
        return released

    def _pages_under(
        self, name: str, root: str, field: str, parent_id: str, page_size: int, after: str | None = None
    ) -> Iterator[dict]:
        """The nodes of the connection ``root(id: parent_id).field``, page after page."""
        while True:
            variables = {"id": parent_id, "first": page_size, "after": after}
            connection = ((self._run(name, variables, record=parent_id).get(root) or {}).get(field)) or {}
            yield from connection.get("nodes") or []
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return
            after = info["endCursor"]

    def _complete_fulfillment_orders(self, connection: dict) -> dict:
        for fo in connection["nodes"]:
            self._complete(
                fo,
                "lineItems",
                "fulfillment_order_line_items",
                "fulfillmentOrder",
                FULFILLMENT_ORDER_LINES_PAGE,
            )
        return {"fulfillmentOrders": connection}

    def _complete_fulfillments(self, order_id: str, order: dict) -> dict:
        """Every fulfillment of ``order`` complete: those past the first few read by id, then each
        one's lines past its first page and its tracking numbers past the first few."""
        fulfillments = list(order.get("fulfillments") or [])
        if len(fulfillments) >= FULFILLMENTS_READ:
            data = self._run("fulfillment_ids", {"id": order_id, "first": FULFILLMENT_IDS}, record=order_id)
            known = {f["id"] for f in fulfillments}
            missing = [
                f["id"] for f in (data.get("order") or {}).get("fulfillments") or [] if f["id"] not in known
            ]
            for start in range(0, len(missing), FULFILLMENTS_BY_ID):
                found = self._run("fulfillments_by_id", {"ids": missing[start : start + FULFILLMENTS_BY_ID]})
                fulfillments.extend(node for node in found["nodes"] if node)
        for fulfillment in fulfillments:
            self._complete(
                fulfillment,
                "fulfillmentLineItems",
                "fulfillment_line_items",
                "fulfillment",
                FULFILLMENT_LINES_PAGE,
            )
            if len(fulfillment.get("trackingInfo") or []) >= FULFILLMENT_TRACKING_READ:
                variables = {"id": fulfillment["id"], "first": ALL_TRACKING}
                data = self._run("fulfillment_tracking_info", variables, record=fulfillment["id"])
                fulfillment["trackingInfo"] = (data.get("fulfillment") or fulfillment)["trackingInfo"]
        return {**order, "fulfillments": fulfillments}

    def create_fulfillment(
        self,
        lines_by_fulfillment_order: list[tuple[str, list[tuple[str, int]]]],
        *,
        tracking_company: str | None,
        tracking_numbers: list[str],
        tracking_urls: list[str] | None = None,
        notify_customer: bool = False,
        record: str | None = None,
    ) -> dict:
        """fulfillmentCreate on fulfillment-order lines (an empty line list fulfils the whole FO)."""
        groups = []
        for fulfillment_order_id, lines in lines_by_fulfillment_order:
            group: dict[str, Any] = {"fulfillmentOrderId": fulfillment_order_id}
            if lines:
                group["fulfillmentOrderLineItems"] = [{"id": i, "quantity": q} for i, q in lines]
            groups.append(group)
        tracking: dict[str, Any] = {"numbers": list(tracking_numbers)}
        if tracking_company:
            tracking["company"] = tracking_company
        if tracking_urls:
            tracking["urls"] = list(tracking_urls)
        variables = {
            "fulfillment": {
                "lineItemsByFulfillmentOrder": groups,
                "trackingInfo": tracking,
                "notifyCustomer": notify_customer,
            }
        }
        # Not idempotent: a resend after a lost answer could fulfil twice, so the core raises
        # AmbiguousWriteError instead and the caller reconciles through `fulfillments()`.
        data = self._run("fulfillment_create", variables, record=record, idempotent=False)
        payload = data["fulfillmentCreate"]
        user_errors(payload, "fulfillment_create", record)
        created = payload["fulfillment"]
        return {"id": created["id"], "tracking_numbers": [t["number"] for t in created["trackingInfo"]]}

    # -- inventory (flow E) ---------------------------------------------------------------------
    def iter_inventory_items(
        self, query: str | None = None, page_size: int = INVENTORY_ITEMS_PAGE
    ) -> Iterator[dict]:
        """Inventory items as ``{id, sku, requires_components, levels: {location gid: available}}``."""
        page_size = min(page_size, INVENTORY_ITEMS_PAGE)
        for node in self._pages("inventory_items", "inventoryItems", {"query": query}, page_size):
            self._complete(
                node, "inventoryLevels", "inventory_item_levels", "inventoryItem", INVENTORY_LEVELS_PAGE
            )
            yield inventory_item(node)

    def inventory_items_by_id(self, ids: list[str]) -> list[dict]:
        """A few inventory items (same shape as `iter_inventory_items`), e.g. after a stale CAS."""
        found: list[dict] = []
        for start in range(0, len(ids), INVENTORY_ITEMS_BY_ID):
            data = self._run("inventory_items_by_id", {"ids": ids[start : start + INVENTORY_ITEMS_BY_ID]})
            for node in data["nodes"]:
                if node:
                    self._complete(
                        node,
                        "inventoryLevels",
                        "inventory_item_levels",
                        "inventoryItem",
                        INVENTORY_LEVELS_PAGE,
                    )
                    found.append(inventory_item(node))
        return found

    def set_inventory_quantities(
        self,
        quantities: list[dict[str, Any]],
        *,
        idempotency_key: str,
        reason: str = "correction",
        reference_document_uri: str | None = None,
    ) -> dict[str, Any]:
        """``inventorySetQuantities`` on ``available`` (<= 250 quantities, CAS on each).

        Each quantity is ``{inventoryItemId, locationId, quantity, changeFromQuantity}``. Returns
        ``{"changes": [...], "user_errors": [...]}`` without raising on user errors: the caller
        decides per item (a stale one is re-read, a bad one is isolated). Resending with the same key
        and input is safe (Shopify replays), so transport retries are allowed.
        """
        if len(quantities) > MAX_INVENTORY_QUANTITIES:
            raise ValueError(f"at most {MAX_INVENTORY_QUANTITIES} quantities per call")
        payload: dict[str, Any] = {
            "name": "available",
            "reason": reason,
            "quantities": [
                {
                    "inventoryItemId": q["inventoryItemId"],
                    "locationId": q["locationId"],
                    "quantity": int(q["quantity"]),
                    "changeFromQuantity": q.get("changeFromQuantity"),
                }
                for q in quantities
            ],
        }
        if reference_document_uri:
            payload["referenceDocumentUri"] = reference_document_uri
        data = self._run(
            "inventory_set_quantities", {"input": payload, "key": idempotency_key}, record=idempotency_key
        )
        result = data["inventorySetQuantities"] or {}
        group = result.get("inventoryAdjustmentGroup") or {}
        return {"changes": group.get("changes") or [], "user_errors": result.get("userErrors") or []}

    # -- money: refunds and cancellations (flow F) ----------------------------------------------
    def order_money(self, order_id: str) -> OrderMoney:
        """One order's money: every line (refundable quantities), transaction and refund.

        Raises `NotFoundError` when Shopify has no such order (or it is older than the app may read).
        """
        variables = {
            "id": order_gid(order_id),
            "lineItems": MONEY_LINE_ITEMS,
            "transactions": MONEY_TRANSACTIONS,
            "refunds": MONEY_REFUNDS,
            "refundLines": REFUND_LINES_READ,
        }
        node = self._run("order_money", variables, record=str(order_id))["order"]
        if node is None:
            raise NotFoundError(
                "order not found", system=SYSTEM, operation="order_money", record=str(order_id)
            )
        return OrderMoney.from_graphql(self._complete_money(node))

    def _complete_money(self, node: dict) -> dict:
        """Read what did not fit the order's first pages: lines, transactions, refunds and their lines."""
        record = node["id"]
        self._complete(node, "lineItems", "order_money_line_items", "order", MONEY_LINES_PAGE)
        if len(node.get("transactions") or []) >= MONEY_TRANSACTIONS:
            data = self._run(
                "order_money_transactions", {"id": record, "first": ALL_MONEY_TRANSACTIONS}, record=record
            )
            node["transactions"] = (data.get("order") or node)["transactions"]
            if len(node["transactions"]) >= ALL_MONEY_TRANSACTIONS:
                raise RemoteValidationError(
                    f"more than {ALL_MONEY_TRANSACTIONS - 1} transactions", system=SYSTEM,
                    operation="order_money", record=record, code="too_many_transactions",
                )  # fmt: skip
        refunds = list(node.get("refunds") or [])
        if len(refunds) >= MONEY_REFUNDS:
            data = self._run("order_refund_ids", {"id": record, "first": REFUND_IDS}, record=record)
            known = {r["id"] for r in refunds}
            missing = [
                r["id"] for r in (data.get("order") or {}).get("refunds") or [] if r["id"] not in known
            ]
            for start in range(0, len(missing), REFUNDS_BY_ID):
                variables = {"ids": missing[start : start + REFUNDS_BY_ID], "refundLines": REFUND_LINES_READ}
                found = self._run("refunds_by_id", variables, record=record)
                refunds.extend(n for n in found["nodes"] if n)
        for refund in refunds:
            self._complete_refund(refund)
        node["refunds"] = sorted(refunds, key=lambda r: (r["createdAt"], r["id"]))
        return node

    def _complete_refund(self, refund: dict) -> dict:
        self._complete(refund, "refundLineItems", "refund_line_items", "refund", REFUND_LINES_PAGE)
        for field in ("refundShippingLines", "transactions"):
            if ((refund.get(field) or {}).get("pageInfo") or {}).get("hasNextPage"):
                # Five shipping lines or ten transactions in one refund: never seen; refuse a half read.
                raise RemoteValidationError(
                    f"refund has more {field} than one page", system=SYSTEM, operation="order_money",
                    record=refund["id"], code="too_many_refund_parts",
                )  # fmt: skip
        return refund

    def suggested_refund(
        self,
        order_id: str,
        *,
        lines: list[tuple[str, int]],
        refund_shipping: bool = False,
        shipping_amount: Decimal | None = None,
    ) -> SuggestedRefund:
        """Shopify's calculation of refunding ``lines`` ((line item GID, quantity)) and shipping
        (all that is left, or ``shipping_amount``); nothing is persisted."""
        variables: dict[str, Any] = {
            "id": order_gid(order_id),
            "refundLineItems": [{"lineItemId": gid, "quantity": int(q)} for gid, q in lines],
            "refundShipping": bool(refund_shipping),
            "shippingAmount": str(cents(shipping_amount)) if shipping_amount is not None else None,
        }
        order = self._run("suggested_refund", variables, record=str(order_id))["order"]
        if order is None:
            raise NotFoundError(
                "order not found", system=SYSTEM, operation="suggested_refund", record=str(order_id)
            )
        return SuggestedRefund.from_graphql(order["suggestedRefund"])

    def create_refund(
        self,
        order_id: str,
        *,
        lines: list[tuple[str, int]],
        shipping_amount: Decimal | None,
        transactions: list[SuggestedTransaction],
        note: str,
        notify: bool,
        restock: bool,
        idempotency_key: str,
    ) -> OrderRefund:
        """``refundCreate`` under ``@idempotent(key: idempotency_key)``.

        The key is the caller's, derived from its request: a resend with the same key and the same
        arguments (a transport retry here, or the caller's retry after an ambiguous failure) gets the
        first refund back and refunds nothing twice. ``transactions`` are usually the suggested ones
        (each becomes a REFUND against its parent payment). ``restock`` puts the units back in stock
        as CANCEL (unfulfilled units only: goods that shipped come back through returns). Userrors
        (above refundable, bad quantity, above a payment's remainder) raise `RemoteValidationError`.
        """
        order = order_gid(order_id)
        payload: dict[str, Any] = {
            "orderId": order,
            "note": note,
            "notify": bool(notify),
            "refundLineItems": [
                {"lineItemId": gid, "quantity": int(q), "restockType": "CANCEL" if restock else "NO_RESTOCK"}
                for gid, q in lines
            ],
            "transactions": [
                {
                    "orderId": order,
                    "gateway": t.gateway,
                    "kind": "REFUND",
                    "amount": str(cents(t.amount)),
                    **({"parentId": t.parent_gid} if t.parent_gid else {}),
                }
                for t in transactions
                if t.amount > 0
            ],
        }
        if shipping_amount is not None:
            payload["shipping"] = {"amount": str(cents(shipping_amount))}
        variables = {"input": payload, "key": idempotency_key, "refundLines": REFUND_CREATE_LINES}
        data = self._run("refund_create", variables, record=str(order_id))
        result = data.get("refundCreate") or {}
        user_errors(result, "refund_create", str(order_id))
        return OrderRefund.from_graphql(self._complete_refund(result["refund"]))

    def cancel_order(
        self,
        order_id: str,
        *,
        reason: str,
        refund: bool,
        restock: bool,
        notify_customer: bool,
        staff_note: str | None = None,
    ) -> None:
        """``orderCancel`` (2026-04: ``refundMethod.originalPaymentMethodsRefund``), then wait for its job.

        ``reason`` is an `OrderCancelReason` (customer, declined, fraud, inventory, staff, other). An
        order already cancelled raises `PermanentError` with code ``already_cancelled`` (also what a
        resend of our own cancel after a lost answer sees); other refusals (fulfilled items, …)
        `RemoteValidationError` with Shopify's code. Returns once the order is cancelled; a job
        still running after the polls raises `TransientError` (``cancel_pending``).
        """
        record = str(order_id)
        variables = {
            "orderId": order_gid(order_id),
            "reason": reason.upper(),
            "refundMethod": {"originalPaymentMethodsRefund": True} if refund else None,
            "restock": bool(restock),
            "notifyCustomer": bool(notify_customer),
            "staffNote": staff_note,
        }
        payload = self._run("order_cancel", variables, record=record).get("orderCancel") or {}
        problems = payload.get("orderCancelUserErrors") or []
        if problems:
            if self._cancelled(order_id):
                raise PermanentError(
                    "order is already cancelled", system=SYSTEM, operation="order_cancel", record=record,
                    code="already_cancelled",
                )  # fmt: skip
            rendered = "; ".join(
                f"{'.'.join(e.get('field') or []) or 'base'}: {e.get('message')}" for e in problems
            )
            raise RemoteValidationError(
                rendered, system=SYSTEM, operation="order_cancel", record=record, code=problems[0].get("code")
            )
        job = payload.get("job") or {}
        self._wait_for_cancel(order_id, job.get("id") if not job.get("done") else None)

    def _cancelled(self, order_id: str) -> bool:
        node = self._run("order_cancelled_at", {"id": order_gid(order_id)}, record=str(order_id))["order"]
        return bool(node and node.get("cancelledAt"))

    def _wait_for_cancel(self, order_id: str, job_id: str | None) -> None:
        """Poll the cancel job (bounded, growing waits), then confirm the order says cancelled."""
        delay = 0.2
        for _ in range(CANCEL_JOB_POLLS if job_id else 0):
            job = self._run("job", {"id": job_id}, record=str(order_id)).get("job")
            if job is None or job.get("done"):
                break
            self.core.sleep(delay)
            delay = min(delay * 1.5, 3.0)
        else:
            if job_id:
                raise TransientError(
                    "the cancel job is still running", system=SYSTEM, operation="order_cancel",
                    record=str(order_id), code="cancel_pending",
                )  # fmt: skip
        if not self._cancelled(order_id):
            raise RemoteValidationError(
                "the cancel job finished but the order is not cancelled", system=SYSTEM,
                operation="order_cancel", record=str(order_id), code="cancel_failed",
            )  # fmt: skip

    def iter_refunds(self, *, created_since: datetime) -> Iterator[tuple[OrderMoney, OrderRefund]]:
        """(order, refund) for every refund created since ``created_since``, for the reconciliation.

        Orders are found by ``updated_at`` (a refund updates its order), any status, with their
        refunds' creation times (one cheap page per 50 orders); only an order with a refund created
        since (or with more refunds than that page shows) is read whole (`order_money`), and only
        those refunds are yielded. Reading every updated order whole cost ~500 requested points per
        order: with a thousand orders moving it starved every other caller of Shopify's bucket.
        """
        since = created_since if created_since.tzinfo else created_since.replace(tzinfo=UTC)
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        variables = {"query": f"updated_at:>='{stamp}' status:any", "refunds": REFUND_STAMPS_READ}
        for node in self._pages("order_refund_stamps", "orders", variables, REFUND_STAMPS_PAGE):
            stamps = node.get("refunds") or []
            if len(stamps) < REFUND_STAMPS_READ and not any(_created_since(r, since) for r in stamps):
                continue
            money = self.order_money(str(node["legacyResourceId"]))
            for refund in money.refunds:
                if refund.created_at >= since:
                    yield money, refund

    # -- webhooks -------------------------------------------------------------------------------
    def list_webhook_subscriptions(self, topic: str | None = None, uri: str | None = None) -> list[dict]:
        variables: dict[str, Any] = {"topics": [topic_enum(topic)] if topic else None, "uri": uri}
        return [
            {"id": s["id"], "topic": s["topic"], "uri": s["uri"], "format": s["format"]}
            for s in self._pages(
                "webhook_subscriptions", "webhookSubscriptions", variables, WEBHOOK_SUBSCRIPTIONS_PAGE
            )
        ]

    def subscribe_webhook(self, topic: str, uri: str) -> str:
        """Subscribe ``uri`` to ``topic`` (``orders/paid`` or ``ORDERS_PAID``); returns the id.

        Idempotent: an existing subscription for the same topic and address is returned as is.
        """
        existing = self.list_webhook_subscriptions(topic, uri)
        if existing:
            return existing[0]["id"]
        data = self._run(
            "webhook_subscription_create",
            {"topic": topic_enum(topic), "subscription": {"uri": uri, "format": "JSON"}},
            record=topic_enum(topic),
            idempotent=False,
        )
        payload = data["webhookSubscriptionCreate"]
        if payload["userErrors"]:
            # A concurrent subscriber may have won the race; its subscription is as good as ours.
            existing = self.list_webhook_subscriptions(topic, uri)
            if existing:
                return existing[0]["id"]
            user_errors(payload, "webhook_subscription_create", topic_enum(topic))
        return payload["webhookSubscription"]["id"]


def inventory_item(node: dict[str, Any]) -> dict[str, Any]:
    """An ``InventoryItemLevels`` node as a plain dict (levels keyed by location GID)."""
    levels = {}
    for level in (node.get("inventoryLevels") or {}).get("nodes") or []:
        quantity = next((q["quantity"] for q in level["quantities"] if q["name"] == "available"), None)
        levels[level["location"]["id"]] = quantity
    variant = node.get("variant") or {}
    return {
        "id": node["id"],
        "sku": node.get("sku"),
        "requires_components": bool(variant.get("requiresComponents")),
        "levels": levels,
    }


# -- the Dagster resource -------------------------------------------------------------------------
def _fulfillment_orders(order: dict[str, Any]) -> list[dict]:
    return [
        {
            "id": fo["id"],
            "status": fo["status"],
            "assigned_location_id": ((fo.get("assignedLocation") or {}).get("location") or {}).get("id"),
            "holds": [
                {"id": h["id"], "handle": h.get("handle") or "", "reason": h["reason"]}
                for h in fo.get("fulfillmentHolds") or []
            ],
            "line_items": [
                {
                    "id": line["id"],
                    "line_item_id": line["lineItem"]["id"],
                    "sku": line["sku"],
                    "remaining_quantity": line["remainingQuantity"],
                    "total_quantity": line["totalQuantity"],
                }
                for line in fo["lineItems"]["nodes"]
            ],
        }
        for fo in (order.get("fulfillmentOrders") or {"nodes": []})["nodes"]
    ]


def _fulfillments(order: dict[str, Any]) -> list[dict]:
    return [
        {
            "id": f["id"],
            "status": f["status"],
            "tracking_numbers": [t["number"] for t in f["trackingInfo"] if t.get("number")],
            "tracking_company": next((t["company"] for t in f["trackingInfo"] if t.get("company")), None),
            "line_items": [
                {"line_item_id": line["lineItem"]["id"], "quantity": line["quantity"]}
                for line in f["fulfillmentLineItems"]["nodes"]
            ],
        }
        for f in order.get("fulfillments") or []
    ]


class ShopifyResource(ClientResource[ShopifyClient]):
    """Shopify Admin API settings; `client` is a `ShopifyClient`."""

    shop_url: str
    access_token: str
    api_version: str = DEFAULT_API_VERSION
    api_secret: str = ""

    def build_client(self) -> ShopifyClient:
        core = HttpCore(
            system=SYSTEM,
            base_url=self.shop_url,
            headers={"X-Shopify-Access-Token": self.access_token, "Content-Type": "application/json"},
            timeout=self.timeout_seconds,
            retry=self.retry_policy(),
            describe_error=describe_shopify_error,
        )
        return ShopifyClient(core, api_version=self.api_version)

    def verify_webhook(self, raw_body: bytes, hmac_header: str) -> bool:
        return verify_webhook(self.api_secret, raw_body, hmac_header)


def _created_since(record: dict[str, Any], since: datetime) -> bool:
    """A record's ``createdAt`` (ISO 8601) at or after ``since``; True when unreadable (read it whole)."""
    try:
        return datetime.fromisoformat(str(record.get("createdAt"))) >= since
    except ValueError:
        return True
