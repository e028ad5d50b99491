"""Inventory in the Shopify fake: inventory items, levels per location and `inventorySetQuantities`.

Follows ``shared/docs/api/shopify.md`` §4 with the 2026-04 rules:

- ``@idempotent(key:)`` is required (checked before execution by the fake's runner); the same key
  with the same input replays the first answer, with a different input answers
  ``IDEMPOTENCY_KEY_PARAMETER_MISMATCH``;
- every quantity must carry ``changeFromQuantity`` (``null`` opts out of compare-and-swap); a value
  that is not the stored one answers ``CHANGE_FROM_QUANTITY_STALE``;
- at most 250 quantities per call; a Shopify-managed bundle parent (``requiresComponents``) answers
  ``NON_MUTABLE_INVENTORY_ITEM``; also ``INVALID_INVENTORY_ITEM``, ``INVALID_LOCATION``,
  ``ITEM_NOT_STOCKED_AT_LOCATION``, ``INVALID_QUANTITY_NEGATIVE`` / ``_TOO_HIGH``, ``INVALID_NAME``,
  ``INVALID_REASON``, ``NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR``.
- The mutation is all-or-nothing (our design choice, as Shopify documents no partial apply): any
  user error means nothing changed; the client isolates the bad item and resends the rest.
- Placing an order lowers ``available`` at the order's location (Shopify's own decrement), so a sale
  can race a push in tests. Kits that are not Shopify bundles are plain variants to Shopify.

Seeded from the catalog: one inventory item per SKU (the catalog's ids), one level per location.
Every 6th kit (``MN-KIT-06``, ``-12``, …) is a Shopify-managed bundle (``requiresComponents``).
Control plane (under ``/_sandbox/shopify``): ``POST /inventory`` ``{"levels": [{"sku" |
``"inventory_item_id", "location_id", "available"}]}`` sets levels; ``GET /inventory?sku=`` reads them.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterable
from typing import Any

from graphql import GraphQLError, value_from_ast_untyped
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from mienne_ops.sandbox.catalog import Catalog
from mienne_ops.sandbox.shopify_graphql import (
    MAX_PAGE_SIZE,
    UNBOUNDED_PAGES,
    connection_page,
    decode_cursor,
    gid,
    parse_gid,
)
from mienne_ops.sandbox.shopify_orders import shop_time

SYSTEM = "shopify"
MAX_QUANTITIES = 250
MAX_QUANTITY = 1_000_000_000
NAMES = ("available", "on_hand")
REASONS = frozenset(
    {
        "correction",
        "cycle_count_available",
        "damaged",
        "movement_created",
        "movement_updated",
        "movement_received",
        "movement_canceled",
        "other",
        "promotion",
        "quality_control",
        "received",
        "reservation_created",
        "reservation_deleted",
        "reservation_updated",
        "restock",
        "safety_stock",
        "shrinkage",
    }
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shopify_inventory_items (
    id INTEGER PRIMARY KEY, sku TEXT NOT NULL, variant_id INTEGER NOT NULL,
    requires_components INTEGER NOT NULL DEFAULT 0, tracked INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS shopify_inventory_items_sku ON shopify_inventory_items (sku);
CREATE TABLE IF NOT EXISTS shopify_inventory_levels (
    item_id INTEGER NOT NULL, location_id INTEGER NOT NULL, available INTEGER NOT NULL,
    updated_at TEXT NOT NULL, PRIMARY KEY (item_id, location_id)
);
"""


def is_shopify_bundle(sku: str) -> bool:
    """Every 6th kit of the catalog is a Shopify-managed bundle parent (our design choice)."""
    if not sku.startswith("MN-KIT-"):
        return False
    suffix = sku.rsplit("-", 1)[-1]
    return suffix.isdigit() and int(suffix) % 6 == 0


class ShopifyInventory:
    """Storage and rules of Shopify inventory inside the sandbox world."""

    def __init__(self, world) -> None:
        self.world = world
        self.catalog: Catalog | None = None
        with world.tx() as conn:
            # Statement by statement: executescript would commit the world's open transaction.
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)

    # -- lifecycle --------------------------------------------------------------------------------
    def reset(self, catalog: Catalog) -> None:
        self.catalog = catalog
        now = shop_time(self.world.now())
        with self.world.tx() as conn:
            conn.execute("DELETE FROM shopify_inventory_items")
            conn.execute("DELETE FROM shopify_inventory_levels")
            conn.executemany(
                "INSERT INTO shopify_inventory_items (id, sku, variant_id, requires_components) "
                "VALUES (?, ?, ?, ?)",
                [
                    (s.shopify_inventory_item_id, s.sku, s.shopify_variant_id, int(is_shopify_bundle(s.sku)))
                    for s in catalog.skus
                ],
            )
            conn.executemany(
                "INSERT INTO shopify_inventory_levels VALUES (?, ?, ?, ?)",
                [
                    (
                        s.shopify_inventory_item_id,
                        loc.shopify_location_id,
                        _seed_available(s.sku, loc.code),
                        now,
                    )
                    for s in catalog.skus
                    for loc in catalog.locations
                ],
            )

    def location_ids(self) -> set[int]:
        return {loc.shopify_location_id for loc in self.catalog.locations} if self.catalog else set()

    def state(self) -> dict[str, Any]:
        with self.world.tx() as conn:
            rows = conn.execute(
                "SELECT i.sku, i.id, i.requires_components, l.location_id, l.available "
                "FROM shopify_inventory_levels l JOIN shopify_inventory_items i ON i.id = l.item_id "
                "ORDER BY i.sku, l.location_id"
            ).fetchall()
        return {
            "levels": [
                {
                    "sku": r["sku"],
                    "inventory_item_id": r["id"],
                    "location_id": r["location_id"],
                    "available": r["available"],
                    "requires_components": bool(r["requires_components"]),
                }
                for r in rows
            ]
        }

    def levels_of(self, conn: sqlite3.Connection, item_ids: Iterable[int]) -> dict[int, list[sqlite3.Row]]:
        ids = list(item_ids)
        found: dict[int, list[sqlite3.Row]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = conn.execute(
                f"SELECT * FROM shopify_inventory_levels WHERE item_id IN ({','.join('?' * len(chunk))}) "
                "ORDER BY location_id",
                chunk,
            ).fetchall()
            for row in rows:
                found[row["item_id"]].append(row)
        return found

    # -- Shopify's own decrement ------------------------------------------------------------------
    def record_sale(self, order: dict[str, Any]) -> None:
        """An order lowers ``available`` where each line is assigned (may go below zero: oversold)."""
        self._move(
            order, {line["id"]: -int(line.get("quantity") or 0) for line in order.get("line_items", [])}
        )

    def record_restock(self, order: dict[str, Any], units: dict[int, int]) -> None:
        """Refunded or cancelled units put back into ``available`` where their lines were assigned."""
        self._move(order, {line_id: abs(count) for line_id, count in units.items()})

    def restock_at(self, line: dict[str, Any], location_id: int, quantity: int) -> None:
        """Returned units of one order line put back into ``available`` at ``location_id`` (a return's
        RESTOCKED disposition)."""
        with self.world.tx() as conn:
            item = conn.execute(
                "SELECT id FROM shopify_inventory_items WHERE (sku = ? OR variant_id = ?) "
                "AND requires_components = 0",
                (line.get("sku") or "", line.get("variant_id") or 0),
            ).fetchone()
            if item is None:
                return
            conn.execute(
                "UPDATE shopify_inventory_levels SET available = available + ?, updated_at = ? "
                "WHERE item_id = ? AND location_id = ?",
                (int(quantity), shop_time(self.world.now()), item["id"], location_id),
            )

    def _move(self, order: dict[str, Any], deltas: dict[int, int]) -> None:
        located = {
            fo_line["line_item_id"]: fo["assigned_location_id"]
            for fo in order.get("_fulfillment_orders") or []
            for fo_line in fo["line_items"]
        }
        now = shop_time(self.world.now())
        with self.world.tx() as conn:
            for line in order.get("line_items", []):
                if not deltas.get(line["id"]):
                    continue
                item = conn.execute(
                    "SELECT id FROM shopify_inventory_items WHERE (sku = ? OR variant_id = ?) "
                    "AND requires_components = 0",
                    (line.get("sku") or "", line.get("variant_id") or 0),
                ).fetchone()
                if item is None:
                    continue
                conn.execute(
                    "UPDATE shopify_inventory_levels SET available = available + ?, updated_at = ? "
                    "WHERE item_id = ? AND location_id = ?",
                    (
                        deltas[line["id"]],
                        now,
                        item["id"],
                        located.get(line["id"], order.get("location_id")),
                    ),
                )

    # -- control plane ----------------------------------------------------------------------------
    def control_routes(self) -> list[BaseRoute]:
        return [Route("/inventory", self._inventory_route, methods=["GET", "POST"])]

    async def _inventory_route(self, request: Request) -> JSONResponse:
        if request.method == "GET":
            sku = request.query_params.get("sku")
            levels = self.state()["levels"]
            return JSONResponse({"levels": [lv for lv in levels if not sku or lv["sku"] == sku]})
        body = json.loads(await request.body() or b"{}")
        try:
            count = await run_in_threadpool(self.set_levels, body.get("levels") or [])
        except (KeyError, ValueError) as error:
            return JSONResponse({"errors": f"bad level: {error}"}, status_code=400)
        return JSONResponse({"ok": True, "levels": count})

    def set_levels(self, levels: list[dict[str, Any]]) -> int:
        now = shop_time(self.world.now())
        with self.world.tx() as conn:
            for level in levels:
                item_id = level.get("inventory_item_id")
                if item_id is None:
                    row = conn.execute(
                        "SELECT id FROM shopify_inventory_items WHERE sku = ?", (level["sku"],)
                    ).fetchone()
                    if row is None:
                        raise ValueError(f"unknown sku {level['sku']}")
                    item_id = row["id"]
                conn.execute(
                    "INSERT INTO shopify_inventory_levels VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(item_id, location_id) DO UPDATE SET available = excluded.available, "
                    "updated_at = excluded.updated_at",
                    (int(item_id), int(level["location_id"]), int(level["available"]), now),
                )
        return len(levels)


def _seed_available(sku: str, location_code: str) -> int:
    """Shopify starts with its own (stale) numbers, so the first sync has real work to do."""
    return random.Random(f"shopify-stock|{sku}|{location_code}").randrange(0, 60)


# -- GraphQL presentation ---------------------------------------------------------------------------
def _level_gid(item_id: int, location_id: int) -> str:
    return f"{gid('InventoryLevel', location_id)}?inventory_item_id={item_id}"


def _quantities(row: sqlite3.Row):
    def resolve(info, names):
        return [
            {
                "__typename": "InventoryQuantity",
                "id": f"{gid('InventoryQuantity', row['location_id'])}?inventory_item_id={row['item_id']}"
                f"&name={name}",
                "name": name,
                "quantity": row["available"] if name in NAMES else 0,
                "updatedAt": row["updated_at"],
            }
            for name in names
        ]

    return resolve


def _location_ref(location_id: int, names: dict[int, str]) -> dict[str, Any]:
    return {
        "__typename": "Location",
        "id": gid("Location", location_id),
        "legacyResourceId": str(location_id),
        "name": names.get(location_id, f"Location {location_id}"),
    }


def level_node(row: sqlite3.Row, item: sqlite3.Row, names: dict[int, str]) -> dict[str, Any]:
    return {
        "__typename": "InventoryLevel",
        "id": _level_gid(row["item_id"], row["location_id"]),
        "isActive": True,
        "canDeactivate": True,
        "createdAt": row["updated_at"],
        "updatedAt": row["updated_at"],
        "location": _location_ref(row["location_id"], names),
        "item": {"__typename": "InventoryItem", "id": gid("InventoryItem", item["id"]), "sku": item["sku"]},
        "quantities": _quantities(row),
    }


def item_node(item: sqlite3.Row, levels: list[sqlite3.Row], names: dict[int, str]) -> dict[str, Any]:
    level_nodes = [level_node(row, item, names) for row in levels]
    by_location = {row["location_id"]: node for row, node in zip(levels, level_nodes, strict=True)}
    return {
        "__typename": "InventoryItem",
        "id": gid("InventoryItem", item["id"]),
        "legacyResourceId": str(item["id"]),
        "sku": item["sku"],
        "tracked": bool(item["tracked"]),
        "requiresShipping": True,
        "locationsCount": {"count": len(levels), "precision": "EXACT"},
        "variant": {
            "__typename": "ProductVariant",
            "id": gid("ProductVariant", item["variant_id"]),
            "legacyResourceId": str(item["variant_id"]),
            "sku": item["sku"],
            "requiresComponents": bool(item["requires_components"]),
        },
        "inventoryLevels": level_nodes,
        "inventoryLevel": lambda info, locationId: by_location.get(parse_gid(locationId, "Location") or 0),
    }


class InventoryResolvers:
    """Root fields for inventory, mixed into the Shopify fake's `Resolvers`."""

    sandbox: Any
    version: str = "2026-04"

    def _names(self) -> dict[int, str]:
        catalog = self.sandbox.inventory.catalog
        return {loc.shopify_location_id: loc.name for loc in catalog.locations} if catalog else {}

    # -- queries ----------------------------------------------------------------------------------
    def inventoryItems(self, info, first=None, after=None, query=None, reverse=False, **_args) -> dict:
        """Items by id (``query`` supports ``sku:X``); keyset paging, at most 250 per page.

        Inside a bulk operation every item is read (no page size, no cursor).
        """
        unbounded = UNBOUNDED_PAGES.get()
        if not unbounded and (first is None or not 0 <= first <= MAX_PAGE_SIZE):
            raise GraphQLError(f"The `first` argument must be between 0 and {MAX_PAGE_SIZE}.")
        sql, args = "SELECT * FROM shopify_inventory_items WHERE 1=1", []
        for term in (query or "").split():
            field, _, value = term.partition(":")
            if field == "sku":
                sql += " AND sku = ?"
                args.append(value.strip("'\""))
        if after is not None and not unbounded:
            sql += " AND id > ?"
            args.append(int(decode_cursor(after)))
        sql += " ORDER BY id LIMIT ?"
        args.append(-1 if unbounded else first + 1)  # SQLite: LIMIT -1 is no limit
        with self.sandbox.world.tx() as conn:
            rows = conn.execute(sql, args).fetchall()
            page, has_next = (rows, False) if unbounded else (rows[:first], len(rows) > first)
            levels = self.sandbox.inventory.levels_of(conn, [r["id"] for r in page])
        names = self._names()
        keyed = [(r["id"], item_node(r, levels[r["id"]], names)) for r in page]
        return connection_page(keyed, has_next, after is not None)

    def inventoryItem(self, info, id) -> dict | None:
        found = self._items([id])
        return found[0] if found else None

    def nodes(self, info, ids) -> list[dict | None]:
        """``nodes(ids:)`` for inventory items (other kinds are answered as null here)."""
        by_id = {node["id"]: node for node in self._items(ids)}
        return [by_id.get(i) for i in ids]

    def _items(self, ids: Iterable[str]) -> list[dict]:
        numbers = [n for n in (parse_gid(i, "InventoryItem") for i in ids) if n is not None]
        if not numbers:
            return []
        with self.sandbox.world.tx() as conn:
            rows = conn.execute(
                f"SELECT * FROM shopify_inventory_items WHERE id IN ({','.join('?' * len(numbers))})", numbers
            ).fetchall()
            levels = self.sandbox.inventory.levels_of(conn, [r["id"] for r in rows])
        names = self._names()
        return [item_node(r, levels[r["id"]], names) for r in rows]

    # -- inventorySetQuantities -------------------------------------------------------------------
    def inventorySetQuantities(self, info, input) -> dict:
        key = _idempotency_key(info)
        fingerprint = json.dumps(input, sort_keys=True, default=str)
        world = self.sandbox.world
        with world.tx():
            if key is not None:
                seen = world.get(SYSTEM, "idempotency", key)
                if seen is not None:
                    if seen["fingerprint"] != fingerprint:
                        return _failed(
                            None,
                            "The same idempotency key was used with different parameters.",
                            "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
                        )
                    return seen["result"]
            result = self._set_quantities(input)
            if key is not None:
                world.put(SYSTEM, "idempotency", key, {"fingerprint": fingerprint, "result": result})
        return result

    def _set_quantities(self, request: dict[str, Any]) -> dict[str, Any]:
        quantities = request.get("quantities") or []
        if len(quantities) > MAX_QUANTITIES:
            raise GraphQLError(
                f"The input array size of {len(quantities)} is greater than the maximum allowed of "
                f"{MAX_QUANTITIES}.",
                extensions={"code": "MAX_INPUT_SIZE_EXCEEDED"},
            )
        name, reason = request.get("name"), request.get("reason")
        if name not in NAMES:
            return _failed(
                ["input", "name"], "The quantity name must be available or on_hand.", "INVALID_NAME"
            )
        if reason not in REASONS:
            return _failed(["input", "reason"], "The reason is not valid.", "INVALID_REASON")
        requires_cas = self.version == "unstable" or self.version >= "2026-04"
        world = self.sandbox.world
        errors: list[dict[str, Any]] = []
        planned: list[tuple[sqlite3.Row, sqlite3.Row, int]] = []
        seen: set[tuple[int, int]] = set()
        with world.tx() as conn:
            for index, quantity in enumerate(quantities):
                error = self._check(conn, index, quantity, requires_cas, seen, planned)
                if error:
                    errors.append(error)
            if errors:
                return {"inventoryAdjustmentGroup": None, "userErrors": errors}
            now = shop_time(world.now())
            changes = []
            for level, item, new in planned:
                conn.execute(
                    "UPDATE shopify_inventory_levels SET available = ?, updated_at = ? "
                    "WHERE item_id = ? AND location_id = ?",
                    (new, now, level["item_id"], level["location_id"]),
                )
                changes.append(
                    {
                        "__typename": "InventoryChange",
                        "name": name,
                        "delta": new - level["available"],
                        "quantityAfterChange": new,
                        "ledgerDocumentUri": None,
                        "item": {
                            "__typename": "InventoryItem",
                            "id": gid("InventoryItem", item["id"]),
                            "sku": item["sku"],
                        },
                        "location": _location_ref(level["location_id"], self._names()),
                    }
                )
            group_id = world.next_id(f"{SYSTEM}:inventory_adjustment_group", 9_000_000_001)
        return {
            "inventoryAdjustmentGroup": {
                "__typename": "InventoryAdjustmentGroup",
                "id": gid("InventoryAdjustmentGroup", group_id),
                "createdAt": now,
                "reason": reason,
                "referenceDocumentUri": request.get("referenceDocumentUri"),
                "changes": changes,
            },
            "userErrors": [],
        }

    def _check(self, conn, index, quantity, requires_cas, seen, planned) -> dict[str, Any] | None:
        field = ["input", "quantities", str(index)]
        item_number = parse_gid(quantity.get("inventoryItemId") or "", "InventoryItem")
        location_number = parse_gid(quantity.get("locationId") or "", "Location")
        item = (
            conn.execute("SELECT * FROM shopify_inventory_items WHERE id = ?", (item_number,)).fetchone()
            if item_number
            else None
        )
        if item is None:
            return _error(
                [*field, "inventoryItemId"],
                "The specified inventory item could not be found.",
                "INVALID_INVENTORY_ITEM",
            )
        if location_number not in self.sandbox.inventory.location_ids():
            return _error(
                [*field, "locationId"], "The specified location could not be found.", "INVALID_LOCATION"
            )
        if item["requires_components"]:
            return _error(
                [*field, "inventoryItemId"],
                "The inventory quantity of a bundle parent cannot be changed.",
                "NON_MUTABLE_INVENTORY_ITEM",
            )
        level = conn.execute(
            "SELECT * FROM shopify_inventory_levels WHERE item_id = ? AND location_id = ?",
            (item_number, location_number),
        ).fetchone()
        if level is None:
            return _error(
                [*field, "locationId"],
                "The item is not stocked at the location.",
                "ITEM_NOT_STOCKED_AT_LOCATION",
            )
        if (item_number, location_number) in seen:
            return _error(
                field,
                "The combination of inventoryItemId and locationId must be unique.",
                "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
            )
        seen.add((item_number, location_number))
        new = int(quantity.get("quantity"))
        if new < 0:
            return _error(
                [*field, "quantity"], "The quantity can't be negative.", "INVALID_QUANTITY_NEGATIVE"
            )
        if new > MAX_QUANTITY:
            return _error(
                [*field, "quantity"],
                "The quantity can't be higher than 1,000,000,000.",
                "INVALID_QUANTITY_TOO_HIGH",
            )
        if requires_cas and "changeFromQuantity" not in quantity:
            raise GraphQLError(
                f"Variable input.quantities.{index}: changeFromQuantity is required from API version "
                "2026-04 (pass null to opt out of the compare-and-swap).",
                extensions={"code": "BAD_REQUEST"},
            )
        expected = quantity.get("changeFromQuantity")
        if expected is not None and int(expected) != level["available"]:
            return _error(
                [*field, "changeFromQuantity"],
                "The specified compare quantity does not match the current quantity.",
                "CHANGE_FROM_QUANTITY_STALE",
            )
        planned.append((level, item, new))
        return None


def _idempotency_key(info) -> str | None:
    for node in info.field_nodes:
        for directive in node.directives or ():
            if directive.name.value != "idempotent":
                continue
            for argument in directive.arguments:
                if argument.name.value == "key":
                    value = value_from_ast_untyped(argument.value, info.variable_values)
                    return str(value) if value is not None else None
    return None


def _error(field: list[str] | None, message: str, code: str) -> dict[str, Any]:
    return {"__typename": "InventorySetQuantitiesUserError", "field": field, "message": message, "code": code}


def _failed(field: list[str] | None, message: str, code: str) -> dict[str, Any]:
    return {"inventoryAdjustmentGroup": None, "userErrors": [_error(field, message, code)]}
