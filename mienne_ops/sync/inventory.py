"""Flow E's I/O, no Dagster: read NetSuite / DCL / Shopify inventory, compute, push to Shopify.

Each step reads or writes one location's slice and keeps its snapshot in the ledger
(`InventoryLedger`), so the steps can run as separate Dagster assets, from the CLI, or from the
benchmark. The push sends only what changed, ``<= 250`` quantities per ``inventorySetQuantities``
call, each call under its own ``@idempotent`` key (derived from its content, so a retry reuses it)
and every quantity with ``changeFromQuantity``. A stale quantity (a sale won the race) is re-read
and retried with what Shopify lost held back; a Shopify-managed bundle parent is skipped; any other
rejected item is quarantined while the rest of its batch is resent — one bad item never fails a
batch.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mienne_ops.domain.inventory import (
    AtsRow,
    BomLine,
    BufferPolicy,
    Change,
    Pushed,
    available_to_sell,
    bundle_available,
    in_flight_quantities,
    plan_push,
    retarget_after_stale,
)
from mienne_ops.domain.journey import Flow, Stage
from mienne_ops.integrations.dcl import DclClient
from mienne_ops.integrations.netsuite import NetSuiteClient, suiteql_literal
from mienne_ops.integrations.shopify import MAX_INVENTORY_QUANTITIES, ShopifyClient
from mienne_ops.ledger import Ledger
from mienne_ops.ledger.inventory import InventoryLedger, SaveResult, iso, parse_iso

log = logging.getLogger("mienne_ops.sync.inventory")

FLOW = Flow.INVENTORY.value  # a plain str: it is also a Dagster run tag, which must not be an Enum
ENTITY = "inventory"
IN_FLIGHT_STAGES = (Stage.RECEIVED,)  # taken in Shopify, not yet a NetSuite sales order
MAX_PUSH_ROUNDS = 4
RECORDED_LOOKBACK = timedelta(days=2)

LEVELS_QUERY = (
    "SELECT i.itemid AS sku, ail.quantityavailable, ail.quantityonhand "
    "FROM aggregateItemLocation ail JOIN item i ON i.id = ail.item "
    "WHERE ail.location = {location} AND i.isinactive = 'F'{skus} ORDER BY ail.item"
)
BOM_QUERY = (
    "SELECT p.itemid AS kit_sku, c.itemid AS component_sku, im.item AS component_id, im.quantity, "
    "c.isinactive AS component_inactive FROM itemMember im JOIN item p ON p.id = im.parentitem "
    "LEFT JOIN item c ON c.id = im.item WHERE p.itemtype = 'Kit' AND p.isinactive = 'F' "
    "ORDER BY p.itemid, im.linenumber"
)


def shopify_location_gid(location_id: int) -> str:
    return f"gid://shopify/Location/{location_id}"


@dataclass(frozen=True)
class InventorySettings:
    """Flow E's slice of the business rules (plain values: the sync layer knows no Dagster)."""

    netsuite_locations: dict[str, int]
    shopify_locations: dict[str, int]
    buffers: BufferPolicy = field(default_factory=BufferPolicy)
    booking_location: str | None = None  # where flow A books orders: in-flight units are held there
    low_stock_threshold: int = 3
    tolerance: int = 0
    warn_discrepancies: int = 0
    fail_discrepancies: int = 25

    @classmethod
    def from_rules(cls, rules: Any) -> InventorySettings:
        booking = next(
            (c for c, ns in rules.netsuite_location_by_warehouse.items() if ns == rules.netsuite_location_id),
            None,
        )
        return cls(
            netsuite_locations=dict(rules.netsuite_location_by_warehouse),
            shopify_locations=dict(rules.shopify_location_by_warehouse),
            buffers=BufferPolicy(
                per_sku=dict(rules.inventory_buffer_by_sku),
                per_location=dict(rules.inventory_buffer_by_location),
                default=rules.inventory_default_buffer,
            ),
            booking_location=booking,
            low_stock_threshold=rules.inventory_low_stock_threshold,
            tolerance=rules.inventory_discrepancy_tolerance,
            warn_discrepancies=rules.inventory_discrepancy_warn,
            fail_discrepancies=rules.inventory_discrepancy_fail,
        )


@dataclass
class PushReport:
    location: str
    planned: int = 0
    pushed: int = 0
    unchanged: int = 0
    stale: int = 0  # fresher data was already pushed: left alone
    skipped: int = 0  # Shopify-managed bundle parents, SKUs unknown to Shopify
    raced: int = 0  # CAS lost to a concurrent change, re-read and retried
    held_back: int = 0  # units withheld for Shopify sales the ledger does not know yet
    calls: int = 0
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (sku, code, message)
    unresolved: list[str] = field(default_factory=list)  # still racing after every round

    def summary(self) -> str:
        return (
            f"{self.location}: {self.pushed} pushed in {self.calls} call(s), {self.unchanged} unchanged, "
            f"{self.stale} stale, {self.skipped} skipped, {self.raced} raced, {len(self.failed)} failed"
        )


class InventorySync:
    def __init__(
        self,
        netsuite: NetSuiteClient | None,
        dcl: DclClient | None,
        shopify: ShopifyClient | None,
        ledger: Ledger,
        settings: InventorySettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.netsuite = netsuite
        self.dcl = dcl
        self.shopify = shopify
        self.ledger = ledger
        self.store = InventoryLedger(ledger)
        self.settings = settings
        self.clock = clock

    # -- reads ------------------------------------------------------------------------------------
    def read_netsuite(self, location: str, as_of: datetime, skus: Iterable[str] = ()) -> SaveResult:
        """NetSuite available per SKU at one location (SuiteQL, 1,000 rows a page)."""
        assert self.netsuite is not None
        wanted = list(skus)
        where = f" AND i.itemid IN ({', '.join(suiteql_literal(s) for s in wanted)})" if wanted else ""
        query = LEVELS_QUERY.format(location=int(self.settings.netsuite_locations[location]), skus=where)
        quantities = {
            row["sku"]: int(float(row["quantityavailable"] or 0))
            for row in self.netsuite.suiteql(query, page_size=1000)
        }
        return self.store.save_levels("netsuite", location, quantities, as_of)

    def read_boms(self) -> tuple[dict[str, list[BomLine]], set[str]]:
        """Every kit's BOM (``itemMember``); an unknown component keeps a placeholder SKU."""
        assert self.netsuite is not None
        kits: dict[str, list[BomLine]] = {}
        inactive: set[str] = set()
        for row in self.netsuite.suiteql(BOM_QUERY, page_size=1000):
            component = row["component_sku"] or f"#missing-item-{row['component_id']}"
            kits.setdefault(row["kit_sku"], []).append(BomLine(component, int(float(row["quantity"] or 0))))
            if row["component_inactive"] == "T":
                inactive.add(component)
        self.store.save_boms(kits, inactive)
        return kits, inactive

    def read_dcl(self, location: str, as_of: datetime, skus: Iterable[str] = ()) -> SaveResult:
        """DCL ``available`` per item in one warehouse (``inventory_type`` = warehouse code)."""
        assert self.dcl is not None
        wanted = list(skus) or None
        quantities = {
            row["item_number"]: int(row.get("available") or 0)
            for row in self.dcl.iter_items(item_numbers=wanted, inventory_type=location)
        }
        return self.store.save_levels("dcl", location, quantities, as_of)

    def read_shopify(self, as_of: datetime, skus: Iterable[str] = ()) -> int:
        """Shopify items (bundle flag) and ``available`` at every mapped location.

        The full read is one bulk operation (20,000 items cost Shopify's bucket nothing but the
        mutation and a few polls); a read of a few SKUs stays an ordinary query.
        """
        assert self.shopify is not None
        wanted = list(skus)
        if wanted:
            nodes = [n for s in wanted for n in self.shopify.iter_inventory_items(query=f"sku:{s}")]
        else:
            nodes = self.shopify.bulk_inventory_items()
        self._store_shopify(nodes, as_of)
        return len(nodes)

    def _store_shopify(self, nodes: list[dict], as_of: datetime) -> None:
        self.store.save_items((n["sku"], n["id"], n["requires_components"]) for n in nodes if n["sku"])
        for location, location_id in self.settings.shopify_locations.items():
            gid = shopify_location_gid(location_id)
            found = {
                n["sku"]: n["levels"][gid] for n in nodes if n["sku"] and n["levels"].get(gid) is not None
            }
            if found:
                self.store.save_levels("shopify", location, found, as_of)

    # -- computations -----------------------------------------------------------------------------
    def compute_bundles(self, location: str) -> list[Any]:
        """Kits buildable from NetSuite's component stock at one location (flags kept)."""
        kits, inactive = self.store.boms()
        stock = self.store.levels("netsuite", location)
        results = [bundle_available(kit, bom, stock, inactive) for kit, bom in sorted(kits.items())]
        as_of = self._snapshot_as_of("netsuite", location)
        self.store.save_levels(
            "bundle",
            location,
            {r.sku: r.available for r in results},
            as_of,
            details={r.sku: {"flag": r.flag, "detail": r.detail, "limiting": r.limiting} for r in results},
        )
        return results

    def compute_ats(self, location: str) -> dict[str, AtsRow]:
        """Available to sell for every SKU NetSuite or the BOMs know at one location."""
        kits, inactive = self.store.boms()
        stock = self.store.levels("netsuite", location)
        held = (
            in_flight_quantities(self.store.in_flight_orders(IN_FLIGHT_STAGES), kits)
            if location == self.settings.booking_location
            else {}
        )
        skus = sorted(set(stock) | set(kits))
        rows = available_to_sell(location, skus, stock, held, kits, self.settings.buffers, inactive)
        details = {
            sku: {
                "netsuite": r.netsuite,
                "in_flight": r.in_flight,
                "buffer": r.buffer,
                "is_bundle": r.is_bundle,
                "flag": r.flag,
                "detail": r.detail,
                "limiting": r.limiting,
            }
            for sku, r in rows.items()
        }
        as_of = self._snapshot_as_of("netsuite", location)
        self.store.save_levels("ats", location, {s: r.available for s, r in rows.items()}, as_of, details)
        return rows

    def _snapshot_as_of(self, source: str, location: str) -> datetime:
        snapshot = self.store.latest_snapshot(source, location)
        return parse_iso(snapshot["as_of"]) if snapshot else self.clock()

    # -- the push ---------------------------------------------------------------------------------
    def push(
        self, location: str, skus: Iterable[str] = (), read_shopify: bool = False, fresh_shopify: bool = False
    ) -> PushReport:
        """Send the location's changed available-to-sell quantities to Shopify.

        ``read_shopify`` reads every Shopify level first; ``fresh_shopify`` says the stored Shopify
        snapshot was just taken (e.g. one read for all locations). Either makes Shopify's numbers
        the CAS baseline; otherwise the last push is, and only unknown items are read.
        """
        assert self.shopify is not None
        report = PushReport(location)
        as_of = self._snapshot_as_of("ats", location)
        items = self.store.items()
        if read_shopify or not items:
            self.read_shopify(self.clock())
            items = self.store.items()
        wanted = set(skus)
        ats = self.store.levels("ats", location)
        targets = {s: q for s, q in ats.items() if s in items and (not wanted or s in wanted)}
        report.skipped += len([s for s in ats if s not in items and (not wanted or s in wanted)])
        pushed = self.store.pushed(location)
        shopify_now = self.store.levels("shopify", location) if read_shopify or fresh_shopify else None
        recorded = self._recorded_since_push(pushed, targets)
        plan = plan_push(
            targets, as_of, pushed, shopify_now, recorded, skip={s for s in targets if items[s][1]}
        )
        if shopify_now is not None:
            # Shopify already shows these (read just now): remember them as in sync.
            self.store.record_pushes(location, {s: targets[s] for s in plan.unchanged}, as_of, None)
        report.unchanged, report.stale, report.skipped = (
            len(plan.unchanged),
            len(plan.stale),
            report.skipped + len(plan.skipped),
        )
        changes = self._with_baselines(plan.changes, items, location, as_of, pushed, recorded, report)
        report.planned = len(changes)
        report.held_back = sum(c.held_back for c in changes)
        self._send(location, changes, items, as_of, recorded, report)
        log.info(report.summary())
        return report

    def _recorded_since_push(self, pushed: dict[str, Pushed], targets: dict[str, int]) -> dict[str, int]:
        """Per SKU, units of orders the ledger first saw after that SKU's last push."""
        times = [pushed[s].as_of for s in targets if s in pushed]
        if not times:
            return {}
        since = max(min(times), self.clock() - RECORDED_LOOKBACK)
        recorded: dict[str, int] = {}
        for seen_at, lines in self.store.orders_recorded_since(since):
            for line in lines:
                sku = line.get("sku")
                if sku in pushed and seen_at > pushed[sku].as_of:
                    recorded[sku] = recorded.get(sku, 0) + int(line.get("quantity") or 0)
        return recorded

    def _with_baselines(self, changes, items, location, as_of, pushed, recorded, report) -> list[Change]:
        """Changes whose Shopify quantity is unknown get it read now (one call per 250 items)."""
        unknown = [c for c in changes if c.change_from is None]
        if not unknown:
            return changes
        assert self.shopify is not None
        gid = shopify_location_gid(self.settings.shopify_locations[location])
        read = self.shopify.inventory_items_by_id([items[c.sku][0] for c in unknown])
        self._store_shopify(read, self.clock())
        current = {n["sku"]: n["levels"].get(gid) for n in read}
        targets = {c.sku: c.quantity + c.held_back for c in unknown}
        replan = plan_push(
            targets, as_of, pushed, {s: q for s, q in current.items() if q is not None}, recorded
        )
        report.unchanged += len(replan.unchanged)
        known = [c for c in changes if c.change_from is not None]
        return known + [c for c in replan.changes if c.change_from is not None]

    def _send(self, location, changes, items, as_of, recorded, report) -> None:
        assert self.shopify is not None
        location_gid = shopify_location_gid(self.settings.shopify_locations[location])
        by_item = {items[c.sku][0]: c.sku for c in changes}
        pending = {c.sku: c for c in changes}
        for round_number in range(1, MAX_PUSH_ROUNDS + 1):
            if not pending:
                return
            raced: dict[str, Change] = {}
            retry: dict[str, Change] = {}
            ordered = sorted(pending)
            for start in range(0, len(ordered), MAX_INVENTORY_QUANTITIES):
                batch = [pending[s] for s in ordered[start : start + MAX_INVENTORY_QUANTITIES]]
                outcome = self._send_batch(location, location_gid, batch, items, by_item, as_of, round_number)
                report.calls += 1
                report.pushed += len(outcome["applied"])
                for change, code, message in outcome["errors"]:
                    if code == "CHANGE_FROM_QUANTITY_STALE":
                        raced[change.sku] = change
                    elif code == "NON_MUTABLE_INVENTORY_ITEM":
                        report.skipped += 1
                        self.store.save_items([(change.sku, items[change.sku][0], True)])
                    else:
                        report.failed.append((change.sku, code or "ERROR", message))
                        self.ledger.quarantine(
                            FLOW, ENTITY, f"{location}:{change.sku}", code or "shopify_rejected", message
                        )
                retry.update({c.sku: c for c in outcome["untouched"]})
            report.raced += len(raced)
            retry.update(self._retarget(location_gid, raced, items, recorded, location, as_of))
            pending = retry
        report.unresolved = sorted(pending)
        for sku in pending:
            self.ledger.quarantine(
                FLOW, ENTITY, f"{location}:{sku}", "stale", "lost every compare-and-swap", retrying=True
            )

    def _send_batch(self, location, location_gid, batch, items, by_item, as_of, round_number) -> dict:
        quantities = [
            {
                "inventoryItemId": items[c.sku][0],
                "locationId": location_gid,
                "quantity": c.quantity,
                "changeFromQuantity": c.change_from,
            }
            for c in batch
        ]
        key = _batch_key(location, as_of, round_number, quantities)
        result = self.shopify.set_inventory_quantities(  # type: ignore[union-attr]
            quantities,
            idempotency_key=key,
            reference_document_uri=f"gid://mienne-ops/InventorySync/{location}-{iso(as_of)}",
        )
        errors = []
        failed_skus = set()
        for error in result["user_errors"]:
            field_path = error.get("field") or []
            if len(field_path) >= 3 and field_path[1] == "quantities" and str(field_path[2]).isdigit():
                change = batch[int(field_path[2])]
                errors.append((change, error.get("code"), error.get("message") or ""))
                failed_skus.add(change.sku)
        if result["user_errors"] and not errors:
            raise RuntimeError(f"inventorySetQuantities rejected the batch: {result['user_errors']}")
        applied_skus = {by_item.get(ch["item"]["id"]) for ch in result["changes"]}
        if not result["user_errors"]:
            applied_skus = {c.sku for c in batch}
        applied = [c for c in batch if c.sku in applied_skus]
        untouched = [c for c in batch if c.sku not in applied_skus and c.sku not in failed_skus]
        self.store.record_pushes(location, {c.sku: c.quantity for c in applied}, as_of, key)
        self._resolve_exceptions(location, [c.sku for c in applied])
        return {"applied": applied, "errors": errors, "untouched": untouched}

    def _retarget(self, location_gid, raced, items, recorded, location, as_of) -> dict[str, Change]:
        """Re-read items that lost the CAS; hold back what Shopify sold since our baseline."""
        if not raced:
            return {}
        assert self.shopify is not None
        read = self.shopify.inventory_items_by_id([items[s][0] for s in raced])
        current = {n["sku"]: n["levels"].get(location_gid) for n in read}
        retry = {}
        for sku, change in raced.items():
            actual = current.get(sku)
            if actual is None:
                continue
            expected = change.change_from if change.change_from is not None else actual
            target = retarget_after_stale(change.quantity, expected, actual, recorded.get(sku, 0))
            if target == actual:
                self.store.record_pushes(location, {sku: actual}, as_of, None)
                continue
            retry[sku] = Change(sku, target, actual, change.held_back + change.quantity - target)
        return retry

    def _resolve_exceptions(self, location: str, skus: list[str]) -> None:
        open_keys = self.ledger.keys_with_exceptions(FLOW, ENTITY, ["open", "retrying"])
        for sku in skus:
            if f"{location}:{sku}" in open_keys:
                self.ledger.resolve(FLOW, ENTITY, f"{location}:{sku}")


def _batch_key(location: str, as_of: datetime, round_number: int, quantities: list[dict]) -> str:
    """One key per logical batch: the same content (a retry) gets the same key."""
    body = "|".join(f"{q['inventoryItemId']}:{q['quantity']}:{q['changeFromQuantity']}" for q in quantities)
    digest = hashlib.sha256(f"{location}|{iso(as_of)}|{round_number}|{body}".encode()).hexdigest()
    return f"mienne-inv-{digest[:40]}"
