"""An order's gaps: an earlier side effect missing although the journey went on (pure, no I/O).

Every flow step writes to a vendor first and records it in the ledger after, so a crash in between
leaves the vendor ahead of the ledger, and the next flow moves the stage on regardless: flow B
dispatches any approved sales order, flow C ships what DCL shipped. What such a journey may lack:

- flow A's steps (`import_gaps`): the StateSet order (created but not bound, or never created), the
  Shopify tag, the completion marker — an import that did not finish; and the tag of a finished
  import that Shopify no longer shows (the repair sweep notes that in the ledger: ``tagged_at``
  cleared);
- flow C's (`SHIPMENT_GAPS`): the StateSet order moved to shipped once DCL shipped everything (flow
  C skips StateSet when no StateSet order was bound yet), a shipment's tracking on Shopify, flow C's
  booking (cash sale or invoice) of a complete shipment.

`journey_gaps` reads them from the ledger alone (what `mienne-ops order status` shows); the repair
sweep (`sync.repair`) finishes them. An order still at *received* or *in NetSuite* is flow A's to
finish, and a shipped one flow C's, until it has been left alone for the grace period (its run died);
a lost tag is nobody's, so it is due at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from mienne_ops.domain.journey import CLOSED_STAGES, OrderJourney, ShipmentProgress, Stage


class Gap(StrEnum):
    """A side effect a journey lacks; the value is how `order status` names it."""

    SALES_ORDER = "NetSuite sales order"
    STATESET_ORDER = "StateSet order"
    SHOPIFY_TAG = "Shopify tag"
    IMPORT_MARKER = "flow A's import"
    STATESET_SHIPPED = "StateSet status SHIPPED"
    SHOPIFY_FULFILLMENT = "Shopify fulfillment"
    SHIPMENT_BOOKING = "flow C's booking (cash sale or invoice)"


#: Flow A's gaps: finished by flow A's own resumable import (`OrderIngestor.ingest`).
IMPORT_GAPS = frozenset({Gap.SALES_ORDER, Gap.STATESET_ORDER, Gap.SHOPIFY_TAG, Gap.IMPORT_MARKER})
#: Flow C's gaps: the fulfillment and the booking are finished by a flow C run of the order (it
#: re-reads DCL and Shopify before writing); StateSet shipped by the repair job. Flow C may be writing
#: any of them right now (it moves the stage to shipped before StateSet's ship), so each waits out the
#: grace period.
SHIPMENT_GAPS = frozenset({Gap.SHOPIFY_FULFILLMENT, Gap.SHIPMENT_BOOKING, Gap.STATESET_SHIPPED})
#: Of those, what only a flow C run finishes.
FLOW_C_GAPS = frozenset({Gap.SHOPIFY_FULFILLMENT, Gap.SHIPMENT_BOOKING})


@dataclass(frozen=True)
class JourneyGaps:
    """One order's gaps (empty: nothing missing) and whether the repair sweep should act now."""

    journey: OrderJourney
    gaps: tuple[Gap, ...]
    # False while the order may still be worked on by its flow (at *received*, inside the grace).
    due: bool = True
    # Shipments whose tracking is not on Shopify (for `Gap.SHOPIFY_FULFILLMENT`).
    shipment_keys: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return str(self.journey.shopify_order_id)

    @property
    def tag_lost(self) -> bool:
        """A finished import whose tag Shopify no longer shows (no flow will add it again)."""
        return self.journey.imported_at is not None and Gap.SHOPIFY_TAG in self.gaps

    @property
    def import_unfinished(self) -> bool:
        """Flow A's import has to be finished (a tag lost after import is not one)."""
        return self.journey.imported_at is None and any(gap in IMPORT_GAPS for gap in self.gaps)

    def __bool__(self) -> bool:
        return bool(self.gaps)


def moved_on(journey: OrderJourney) -> bool:
    """Flow B or C moved the journey past flow A's stages (its import can no longer be in flight)."""
    return journey.stage not in (Stage.RECEIVED, Stage.IN_NETSUITE) and journey.stage not in CLOSED_STAGES


def import_gaps(journey: OrderJourney) -> list[Gap]:
    """Flow A's steps the ledger does not show as done (once the import finished: only a tag the
    repair sweep found missing in Shopify)."""
    if journey.shopify_order_id is None or journey.stage in CLOSED_STAGES:
        return []
    if journey.imported_at:
        return [Gap.SHOPIFY_TAG] if journey.tagged_at is None else []
    gaps = []
    if not journey.netsuite_sales_order_id:
        gaps.append(Gap.SALES_ORDER)
    if not journey.stateset_order_id:
        gaps.append(Gap.STATESET_ORDER)
    if journey.tagged_at is None:
        gaps.append(Gap.SHOPIFY_TAG)
    return gaps or [Gap.IMPORT_MARKER]


def journey_gaps(
    journey: OrderJourney,
    shipments: Sequence[ShipmentProgress] = (),
    *,
    now: datetime | None = None,
    grace: timedelta = timedelta(0),
) -> JourneyGaps:
    """What the journey lacks, from the ledger.

    ``now`` and ``grace``: an order whose last change is younger than ``grace`` is not *due* — its
    flow may be running on it right now — unless flow B or C already moved it on past flow A (and
    flow C has nothing left to write), or only a lost tag is missing.
    """
    if journey.shopify_order_id is None or journey.stage in CLOSED_STAGES:
        return JourneyGaps(journey, ())
    gaps = import_gaps(journey)
    if journey.stage == Stage.SHIPPED and journey.stateset_shipped_at is None:
        # Flow C moves the StateSet order to shipped when everything shipped; it skips an order whose
        # StateSet order was not bound yet (an import that stopped after creating it).
        gaps.append(Gap.STATESET_SHIPPED)
    unsent = tuple(s.shipment_key for s in shipments if not s.on_shopify)
    if unsent:
        gaps.append(Gap.SHOPIFY_FULFILLMENT)
    elif journey.stage == Stage.SHIPPED and shipments and not journey.complete_for(len(shipments)):
        # Everything shipped and is on Shopify, but flow C never marked the order complete (a crash
        # before its cash sale or invoice was recorded).
        gaps.append(Gap.SHIPMENT_BOOKING)
    quiet = now is None or journey.updated_at is None or now - journey.updated_at >= grace
    # Flow C may be writing right now: its own gaps, or StateSet's ship (it sets the stage first) —
    # not when no StateSet order is bound, which flow C skips, nor once flow C marked the order
    # complete, which it does only after StateSet's ship (or its skip: the import bound the StateSet
    # order later, when it resumed after flow C had shipped).
    flow_c_finished = bool(shipments) and journey.complete_for(len(shipments))
    shipping = any(gap in FLOW_C_GAPS for gap in gaps) or (
        Gap.STATESET_SHIPPED in gaps and journey.stateset_order_id is not None and not flow_c_finished
    )
    tag_lost = journey.imported_at is not None and gaps == [Gap.SHOPIFY_TAG]
    due = bool(gaps) and (quiet or tag_lost or (moved_on(journey) and not shipping))
    return JourneyGaps(journey, tuple(gaps), due=due, shipment_keys=unsent)


def describe(gap: Gap, *, imported_tag: str, due: bool) -> str:
    """One line of `order status` for a gap."""
    name = f"{gap.value} {imported_tag}" if gap == Gap.SHOPIFY_TAG else gap.value
    state = "not finished" if gap == Gap.IMPORT_MARKER else "missing"
    return f"{name}: {state} — {'repair pending' if due else 'in progress (its flow may still finish it)'}"
