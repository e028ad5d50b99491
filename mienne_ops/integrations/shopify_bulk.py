"""Bulk query operations for the Shopify client: run, poll, stream the JSONL, rebuild the objects.

Large reads (flow E's 20,000 inventory items, an order backfill) go through Shopify's bulk
operations instead of pages: one ``bulkOperationRunQuery`` (10 points, its query is not priced), a
few cheap polls of ``bulkOperation(id:)``, and a JSONL file streamed from the signed ``url`` that
the result carries (no access token is sent there). Shopify writes one line per connection node;
a node of a nested connection carries ``__parentId`` and may come anywhere after its parent, so
`assemble_bulk_rows` holds the objects until the file ends and hands back each top-level object
with its nested nodes under ``__children``.

Shopify runs one bulk query per app and shop at a time (five from 2026-01 on, says its guide). A
refused run waits for the operation in the way (polling ``currentBulkOperation``) and tries again;
past the polling budget it fails with a `TransientError` that names the blocking operation. Polls
back off from a quarter second to ``max_delay``, sleeping through the HTTP core's (injectable)
``sleep``. Bulk query documents live in ``graphql/bulk/`` and take no variables.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from mienne_ops.errors import AuthError, NotFoundError, RemoteValidationError, TransientError
from mienne_ops.integrations.http import HttpCore

SYSTEM = "shopify"
IN_PROGRESS = frozenset({"CREATED", "RUNNING", "CANCELING"})
BUSY_CODES = frozenset({"OPERATION_IN_PROGRESS", "LIMIT_REACHED"})
SEARCH_PLACEHOLDER = '"__SEARCH__"'
BULK_ORDER_TRANSACTIONS = 250  # `transactions(first:)` of the bulk order read (a plain list)
MAX_RUN_ATTEMPTS = 5  # refusals waited out before giving up (five may run at once from 2026-01)


@dataclass(frozen=True)
class BulkPolling:
    """How long to wait for a bulk operation: backoff from ``first_delay`` to ``max_delay``."""

    first_delay: float = 0.25
    max_delay: float = 10.0
    max_wait: float = 3600.0  # seconds of sleep before giving up on one operation

    def delays(self) -> Iterator[float]:
        waited, delay = 0.0, self.first_delay
        while waited + delay <= self.max_wait:
            yield delay
            waited += delay
            delay = min(self.max_delay, delay * 2)


@cache
def bulk_document(name: str) -> str:
    """The text of ``graphql/bulk/<name>.graphql`` plus the shared fragments it uses."""
    from mienne_ops.integrations.shopify import with_fragments

    folder = resources.files("mienne_ops.integrations.graphql").joinpath("bulk")
    return with_fragments(folder.joinpath(f"{name}.graphql").read_text())


def bulk_document_names() -> list[str]:
    folder = resources.files("mienne_ops.integrations.graphql").joinpath("bulk")
    return sorted(p.name.removesuffix(".graphql") for p in folder.iterdir() if p.name.endswith(".graphql"))


def with_search(document: str, search: str) -> str:
    """A bulk document with its search in place of ``"__SEARCH__"`` (JSON strings are GraphQL strings)."""
    if SEARCH_PLACEHOLDER not in document:
        raise ValueError("the bulk document has no search placeholder")
    return document.replace(SEARCH_PLACEHOLDER, json.dumps(search))


def order_node(row: dict[str, Any]) -> dict[str, Any]:
    """An assembled bulk order row rebuilt as the `OrderFields` node `get_order` returns:
    its JSONL children back under ``lineItems`` / ``shippingLines``, complete (no next page)."""
    node = {key: value for key, value in row.items() if key != "__children"}
    lists: dict[str, list[dict[str, Any]]] = {"LineItem": [], "ShippingLine": []}
    for child in row["__children"]:
        kind = child.get("__typename")
        if kind not in lists:
            raise RemoteValidationError(
                f"bulk order result has an unexpected nested line: {kind}",
                system=SYSTEM,
                operation="bulk_orders",
                record=row.get("id"),
            )
        lists[kind].append({k: v for k, v in child.items() if k not in ("__typename", "__children")})
    complete = {"hasNextPage": False, "endCursor": None}
    node["shippingLines"] = {"nodes": lists["ShippingLine"], "pageInfo": dict(complete)}
    node["lineItems"] = {"nodes": lists["LineItem"], "pageInfo": dict(complete)}
    return node


def assemble_bulk_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Top-level objects in file order, each nested connection node under its parent's ``__children``.

    Shopify puts a child after its parent but (without ``groupObjects``) anywhere after it, so
    nothing is final before the end of the file; a child whose parent never appears is an error.
    """
    by_id: dict[str, dict[str, Any]] = {}
    roots: list[dict[str, Any]] = []
    children: list[tuple[str, dict[str, Any]]] = []
    for raw in rows:
        row = {**raw, "__children": []}
        parent_id = row.pop("__parentId", None)
        if parent_id is None:
            roots.append(row)
        else:
            children.append((parent_id, row))
        if row.get("id"):
            by_id[row["id"]] = row
    for parent_id, row in children:
        parent = by_id.get(parent_id)
        if parent is None:
            raise RemoteValidationError(
                f"bulk result line points at a parent that is not in the file: {parent_id}",
                system=SYSTEM,
                operation="bulk_operation_result",
            )
        parent["__children"].append(row)
    return roots


class BulkQueries:
    """The bulk-operation calls of `ShopifyClient` (mixed in; uses its transport)."""

    core: HttpCore
    bulk_polling: BulkPolling = BulkPolling()

    def _run(
        self, name: str, variables: dict[str, Any], *, record: str | None = None, idempotent: bool = True
    ) -> dict[str, Any]:
        raise NotImplementedError  # provided by ShopifyClient

    # -- reads built on bulk operations -----------------------------------------------------------
    def bulk_inventory_items(self) -> list[dict]:
        """Every inventory item (the shape of `ShopifyClient.iter_inventory_items`) in one bulk read."""
        from mienne_ops.integrations.shopify import inventory_item

        items = self.bulk_query(bulk_document("inventory_items"), operation="bulk_inventory_items")
        return [inventory_item({**item, "inventoryLevels": {"nodes": item["__children"]}}) for item in items]

    def bulk_order_ids(self, search: str) -> list[str]:
        """The numeric ids (as strings) of every order matching a search, in one bulk read."""
        document = with_search(bulk_document("order_ids"), search)
        return [str(o["legacyResourceId"]) for o in self.bulk_query(document, operation="bulk_order_ids")]

    def bulk_orders(self, search: str) -> list[dict]:
        """Every order matching a search, each node in the shape of `ShopifyClient.get_order`
        (`OrderFields`, every line item, shipping line and transaction), in one bulk read.

        An order whose transactions may not all have come back (the list is read up to
        ``BULK_ORDER_TRANSACTIONS``) is left out: its caller reads it alone, as usual.
        """
        document = with_search(bulk_document("orders"), search)
        orders = self.bulk_query(document, operation="bulk_orders")
        return [
            order_node(row) for row in orders if len(row.get("transactions") or []) < BULK_ORDER_TRANSACTIONS
        ]

    # -- the operation ----------------------------------------------------------------------------
    def bulk_query(self, query: str, *, operation: str, group_objects: bool = False) -> list[dict]:
        """Run ``query`` as a bulk operation, wait for it, and return its objects assembled."""
        started = self.run_bulk_query(query, group_objects=group_objects, operation=operation)
        done = self.wait_for_bulk_operation(started["id"])
        if not done.get("url"):  # Shopify gives no file when the query matched nothing
            return []
        return assemble_bulk_rows(self.iter_bulk_rows(done["url"], record=done["id"]))

    def run_bulk_query(self, query: str, *, group_objects: bool = False, operation: str = "bulk") -> dict:
        """Start a bulk query; while another one blocks it, wait for that one and try again."""
        blocking: dict[str, Any] | None = None
        for _ in range(MAX_RUN_ATTEMPTS):
            data = self._run(
                "bulk_operation_run_query", {"query": query, "groupObjects": group_objects}, record=operation
            )
            payload = data["bulkOperationRunQuery"]
            errors = payload.get("userErrors") or []
            if not errors:
                return payload["bulkOperation"]
            if not any(e.get("code") in BUSY_CODES for e in errors):
                message = "; ".join(str(e.get("message")) for e in errors)
                raise RemoteValidationError(
                    message, system=SYSTEM, operation="bulk_operation_run_query", record=operation,
                    code=errors[0].get("code"),
                )  # fmt: skip
            blocking = self.current_bulk_operation()
            if blocking and blocking["status"] in IN_PROGRESS:
                self._poll_until_finished(blocking["id"])
        raise TransientError(
            f"another bulk query is still running ({(blocking or {}).get('id', 'unknown')}); try again later",
            system=SYSTEM,
            operation="bulk_operation_run_query",
            record=operation,
            code="OPERATION_IN_PROGRESS",
        )

    def bulk_operation(self, op_id: str) -> dict:
        found = self._run("bulk_operation", {"id": op_id}, record=op_id)["bulkOperation"]
        if found is None:
            raise NotFoundError(
                "bulk operation not found", system=SYSTEM, operation="bulk_operation", record=op_id
            )
        return found

    def current_bulk_operation(self) -> dict | None:
        return self._run("current_bulk_operation", {})["currentBulkOperation"]

    def wait_for_bulk_operation(self, op_id: str) -> dict:
        """Poll until the operation has finished; anything but COMPLETED raises, saying why."""
        done = self._poll_until_finished(op_id)
        status = done["status"]
        if status == "COMPLETED":
            return done
        context: dict[str, Any] = {
            "system": SYSTEM,
            "operation": "bulk_operation",
            "record": op_id,
            "code": done.get("errorCode"),
        }
        if done.get("errorCode") == "ACCESS_DENIED":
            raise AuthError("bulk query denied: the app lacks an access scope it reads", **context)
        # TIMEOUT and INTERNAL_SERVER_ERROR may pass on a new run (Shopify's advice); so may a run
        # cancelled by someone else or whose file expired before it was read.
        raise TransientError(f"bulk operation ended {status}; run it again", **context)

    def _poll_until_finished(self, op_id: str) -> dict:
        current = self.bulk_operation(op_id)
        for delay in self.bulk_polling.delays():
            if current["status"] not in IN_PROGRESS:
                return current
            self.core.sleep(delay)
            current = self.bulk_operation(op_id)
        if current["status"] not in IN_PROGRESS:
            return current
        raise TransientError(
            f"bulk operation still {current['status']} after {self.bulk_polling.max_wait:.0f} s of polling",
            system=SYSTEM,
            operation="bulk_operation",
            record=op_id,
            code="BULK_OPERATION_RUNNING",
        )

    def iter_bulk_rows(self, url: str, *, record: str | None = None) -> Iterator[dict[str, Any]]:
        """The JSONL lines of a bulk result, streamed (the signed URL needs no token)."""
        for line in self.core.stream_lines(url, operation="bulk_operation_result", record=record):
            if line.strip():
                yield json.loads(line)
