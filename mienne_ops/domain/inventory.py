"""Flow E, pure: bundle availability, available-to-sell and push planning (no I/O, no Dagster).

- **Bundle math**: a kit sells ``min over components of floor(component available / quantity per
  kit)``. A kit with a missing or inactive component, an empty BOM or a non-positive quantity is
  0 and *flagged*, never an error for the other kits.
- **Available to sell** per SKU and location: NetSuite available − quantities of Shopify orders
  already taken but not yet in NetSuite (kits expanded to their components) − a safety buffer (per
  SKU, else per location, else a default). Kits are computed from their components' sellable stock,
  so an in-flight component sale lowers every kit that uses it.
- **Push planning**: only quantities that differ from what was last pushed (or from what Shopify
  shows, when it was read) are sent; a quantity computed from data older than what was already
  pushed is never sent (a delayed run or an old backfill must not overwrite fresher numbers); Shopify
  drops since our last push that the ledger cannot explain yet (a sale whose webhook is not ingested)
  are held back too, so a sale racing a push cannot be overwritten.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

FLAG_MISSING = "missing_component"
FLAG_INACTIVE = "inactive_component"
FLAG_EMPTY = "empty_bom"
FLAG_BAD_QUANTITY = "bad_quantity"


@dataclass(frozen=True)
class BomLine:
    component: str
    quantity: int


@dataclass(frozen=True)
class BundleResult:
    sku: str
    available: int
    limiting: str | None = None  # the component that caps the kit
    flag: str | None = None  # why the kit is 0 (not an error)
    detail: str | None = None  # e.g. the missing component's SKU


def bundle_available(
    sku: str,
    bom: Sequence[BomLine],
    stock: Mapping[str, int],
    inactive: frozenset[str] | set[str] = frozenset(),
) -> BundleResult:
    """Sellable kits from component stock; 0 and flagged when the BOM cannot be built."""
    if not bom:
        return BundleResult(sku, 0, flag=FLAG_EMPTY)
    best: int | None = None
    limiting = None
    for line in bom:
        if line.quantity <= 0:
            return BundleResult(sku, 0, flag=FLAG_BAD_QUANTITY, detail=line.component)
        if line.component in inactive:
            return BundleResult(sku, 0, flag=FLAG_INACTIVE, detail=line.component)
        if line.component not in stock:
            return BundleResult(sku, 0, flag=FLAG_MISSING, detail=line.component)
        kits = max(0, stock[line.component]) // line.quantity
        if best is None or kits < best:
            best, limiting = kits, line.component
    return BundleResult(sku, best or 0, limiting=limiting)


def expand_kits(lines: Iterable[Mapping], boms: Mapping[str, Sequence[BomLine]]) -> Counter[str]:
    """SKU -> units held by order lines (``{"sku", "quantity"}``); kit lines become their components."""
    held: Counter[str] = Counter()
    for line in lines:
        sku, quantity = line.get("sku"), int(line.get("quantity") or 0)
        if not sku or quantity <= 0:
            continue
        bom = boms.get(sku)
        if bom:
            for member in bom:
                held[member.component] += quantity * member.quantity
        else:
            held[sku] += quantity
    return held


def in_flight_quantities(
    order_lines: Iterable[Sequence[Mapping]], boms: Mapping[str, Sequence[BomLine]]
) -> Counter[str]:
    """Units taken in Shopify but not yet in NetSuite, from each order's lines in the ledger."""
    total: Counter[str] = Counter()
    for lines in order_lines:
        total.update(expand_kits(list(lines), boms))
    return total


@dataclass(frozen=True)
class BufferPolicy:
    """Safety stock held back from Shopify: per SKU, else per location, else ``default``.

    Kits take only a per-SKU buffer: their components' buffers already hold stock back.
    """

    per_sku: Mapping[str, int] = field(default_factory=dict)
    per_location: Mapping[str, int] = field(default_factory=dict)
    default: int = 0

    def for_item(self, sku: str, location: str, is_bundle: bool = False) -> int:
        if sku in self.per_sku:
            return max(0, int(self.per_sku[sku]))
        if is_bundle:
            return 0
        return max(0, int(self.per_location.get(location, self.default)))


@dataclass(frozen=True)
class AtsRow:
    sku: str
    location: str
    available: int  # what Shopify should show
    netsuite: int  # NetSuite available (components: own stock; kits: bundle math before buffer)
    in_flight: int
    buffer: int
    is_bundle: bool = False
    limiting: str | None = None
    flag: str | None = None
    detail: str | None = None


def available_to_sell(
    location: str,
    skus: Iterable[str],
    netsuite_available: Mapping[str, int],
    in_flight: Mapping[str, int],
    boms: Mapping[str, Sequence[BomLine]],
    buffers: BufferPolicy,
    inactive: frozenset[str] | set[str] = frozenset(),
) -> dict[str, AtsRow]:
    """Available to sell for every SKU at one location (plain items first, then kits from them)."""
    wanted = list(dict.fromkeys(skus))
    rows: dict[str, AtsRow] = {}
    sellable: dict[str, int] = {}
    for sku, stock in netsuite_available.items():
        held = int(in_flight.get(sku, 0))
        buffer = buffers.for_item(sku, location)
        sellable[sku] = max(0, int(stock) - held - buffer)
    for sku in wanted:
        if sku in boms:
            continue
        stock = int(netsuite_available.get(sku, 0))
        held = int(in_flight.get(sku, 0))
        buffer = buffers.for_item(sku, location)
        flag = FLAG_INACTIVE if sku in inactive else None
        available = 0 if flag else max(0, stock - held - buffer)
        rows[sku] = AtsRow(sku, location, available, stock, held, buffer, flag=flag)
    for sku in wanted:
        bom = boms.get(sku)
        if bom is None:
            continue
        kit = bundle_available(sku, bom, sellable, inactive)
        buffer = buffers.for_item(sku, location, is_bundle=True)
        rows[sku] = AtsRow(
            sku,
            location,
            max(0, kit.available - buffer),
            kit.available,
            0,
            buffer,
            is_bundle=True,
            limiting=kit.limiting,
            flag=kit.flag,
            detail=kit.detail,
        )
    return rows


# -- push planning --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pushed:
    """The last quantity we successfully pushed for one SKU and location, and the data's age."""

    quantity: int
    as_of: datetime


@dataclass(frozen=True)
class Change:
    sku: str
    quantity: int
    change_from: int | None  # None: Shopify's current quantity is unknown (read it first)
    held_back: int = 0  # units withheld for Shopify sales the ledger cannot explain yet


@dataclass
class PushPlan:
    changes: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # fresher data was already pushed
    skipped: list[str] = field(default_factory=list)  # Shopify-managed bundle parents, unmapped


def plan_push(
    targets: Mapping[str, int],
    as_of: datetime,
    pushed: Mapping[str, Pushed],
    shopify_now: Mapping[str, int] | None = None,
    recorded_since_push: Mapping[str, int] | None = None,
    skip: Iterable[str] = (),
) -> PushPlan:
    """What to send for one location.

    ``shopify_now`` (when Shopify was read) is the CAS baseline; otherwise the last pushed quantity
    is. ``recorded_since_push`` is, per SKU, the units of orders the ledger learned about since the
    last push: a Shopify drop beyond them is a sale we do not know yet, so it is held back.
    """
    plan = PushPlan()
    skipped = set(skip)
    current = shopify_now or {}
    recorded = recorded_since_push or {}
    for sku in sorted(targets):
        if sku in skipped:
            plan.skipped.append(sku)
            continue
        last = pushed.get(sku)
        if last is not None and last.as_of > as_of:
            plan.stale.append(sku)
            continue
        target = max(0, int(targets[sku]))
        now = current.get(sku)
        held_back = 0
        if last is not None and now is not None:
            unexplained = max(0, last.quantity - now) - int(recorded.get(sku, 0))
            held_back = min(target, max(0, unexplained))
            target -= held_back
        baseline = now if now is not None else (last.quantity if last is not None else None)
        if baseline is not None and baseline == target:
            plan.unchanged.append(sku)
            continue
        plan.changes.append(Change(sku, target, baseline, held_back))
    return plan


def retarget_after_stale(target: int, expected: int, actual: int, recorded: int = 0) -> int:
    """A CAS lost to a concurrent change: withhold what Shopify lost since our baseline (a sale),
    except the units of orders the ledger already counts (``recorded``: already in ``target``)."""
    return max(0, target - max(0, expected - actual - recorded))


# -- reconciliation ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Discrepancy:
    sku: str
    location: str
    netsuite: int | None
    dcl: int | None
    shopify: int | None
    expected_shopify: int | None
    netsuite_vs_dcl: int
    shopify_vs_expected: int

    @property
    def worst(self) -> int:
        return max(abs(self.netsuite_vs_dcl), abs(self.shopify_vs_expected))


def reconcile(
    location: str,
    netsuite: Mapping[str, int],
    dcl: Mapping[str, int],
    shopify: Mapping[str, int],
    expected_shopify: Mapping[str, int],
    dcl_items: Iterable[str] | None = None,
) -> list[Discrepancy]:
    """Per SKU: NetSuite vs DCL (for items DCL stocks) and Shopify vs what we meant it to show."""
    dcl_scope = set(dcl_items) if dcl_items is not None else set(dcl)
    rows = []
    for sku in sorted(set(netsuite) | set(dcl) | set(shopify) | set(expected_shopify)):
        ns, wh, sh, exp = netsuite.get(sku), dcl.get(sku), shopify.get(sku), expected_shopify.get(sku)
        ns_vs_dcl = (ns or 0) - (wh or 0) if sku in dcl_scope and ns is not None else 0
        sh_vs_exp = (sh or 0) - exp if exp is not None and sh is not None else 0
        if ns_vs_dcl or sh_vs_exp:
            rows.append(Discrepancy(sku, location, ns, wh, sh, exp, ns_vs_dcl, sh_vs_exp))
    rows.sort(key=lambda d: (-d.worst, d.sku))
    return rows


def low_stock(rows: Iterable[AtsRow], threshold: int) -> list[AtsRow]:
    """Sellable SKUs at or below the threshold (unflagged; flagged kits are reported separately)."""
    return sorted(
        (r for r in rows if r.flag is None and r.available <= threshold), key=lambda r: (r.available, r.sku)
    )
