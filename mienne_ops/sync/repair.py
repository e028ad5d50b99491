"""The repair sweep: find orders whose later stage was reached while an earlier side effect is
missing, and finish those steps once.

A crash between a vendor write and its ledger record leaves the vendor ahead of the ledger, and the
next flow goes on regardless (`domain.journey_gaps`). The sweep compares the ledger's journeys with
the vendors at a bounded cost:

- the ledger: journeys changed within the window (`BusinessRules.repair_window_days`) with a step
  missing — one indexed read (`Ledger.journeys_with_gaps`);
- Shopify: one search for orders changed since the last sweep without the imported tag
  (ids only), intersected with the journeys the ledger shows as tagged: a tag lost after import,
  noted in the ledger (`Ledger.mark_tag_lost`) so it stays found until the tag is back;
- StateSet, only for orders with a gap: the order looked up by external id before it is created
  (flow A's own `create_order`), and its status read before it is moved to shipped.

Each order is finished by the flows' own idempotent steps: flow A's resumable import (StateSet
order, tag, completion marker — `OrderIngestor.ingest`), the tag, StateSet's `ship` with the tracking
the ledger kept; a shipment whose tracking is not on Shopify goes back to flow C (whose path reads
what Shopify has before it writes). Every repair is audited (``repair.<gap>``), and an order still
young (`BusinessRules.repair_grace_minutes`) is left to the flow that may be running on it.

A repair that fails is an exception of its own (`Entity.ORDER_REPAIR`), never the order's: it cannot
resolve an order's open exception (an edit after dispatch that a person must settle) nor be resolved
by an import that skips. An order in flow A's or flow C's exceptions queue is left to that queue;
one whose repair a person holds (open) waits for them, and a repair they retry runs again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from mienne_ops.domain.journey import Entity, Flow, Stage
from mienne_ops.domain.journey_gaps import FLOW_C_GAPS, SHIPMENT_GAPS, Gap, JourneyGaps, journey_gaps
from mienne_ops.errors import NotFoundError
from mienne_ops.integrations.shopify import ShopifyClient
from mienne_ops.integrations.stateset import SHIPPED_OR_LATER, StateSetClient
from mienne_ops.ledger import Ledger
from mienne_ops.ledger.store import ExceptionStatus
from mienne_ops.sync.batch import Outcome
from mienne_ops.sync.orders import OrderIngestor, OrderSystems

if TYPE_CHECKING:
    from mienne_ops.business_rules import BusinessRules

log = logging.getLogger("mienne_ops.sync.repair")

#: Repairs run as flow A (its one-run-at-a-time limit: a repair never races an import of the same
#: order), under their own exceptions entity. Flow C's gaps go to flow C's own runs.
FLOW = Flow.ORDERS.value
ENTITY = Entity.ORDER_REPAIR
QUEUED = (ExceptionStatus.OPEN, ExceptionStatus.RETRYING)
#: Shopify's clock and ours differ: its search starts at least this long before the last sweep.
MIN_OVERLAP = timedelta(minutes=5)


def untagged_search(tag: str, since: datetime) -> str:
    """Orders changed since ``since`` that do not carry the imported tag (ids only: cheap)."""
    return f"-tag:{tag} updated_at:>='{since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}'"


@dataclass(frozen=True)
class SweepWindow:
    """One sweep: journeys changed since ``since``; Shopify's orders changed since ``tags_since``; an
    order changed less than ``grace`` before ``now`` is left to its flow."""

    now: datetime
    since: datetime
    tags_since: datetime
    grace: timedelta

    @classmethod
    def at(
        cls, now: datetime, *, window: timedelta, grace: timedelta, last_sweep: datetime | None = None
    ) -> SweepWindow:
        """The window at ``now``; Shopify is searched from the last sweep (less the grace, at least
        `MIN_OVERLAP`, for its clock), or over the whole window the first time."""
        overlap = max(grace, MIN_OVERLAP)
        tags_since = max(now - window, last_sweep - overlap) if last_sweep else now - window
        return cls(now=now, since=now - window, tags_since=tags_since, grace=grace)


@dataclass
class SweepFindings:
    """What a sweep found: orders to repair (due now) and those left to their flow for now."""

    due: list[JourneyGaps] = field(default_factory=list)
    waiting: list[JourneyGaps] = field(default_factory=list)

    # Repairs a person sent back (retrying): run again even if the gap is gone (then resolved).
    retried: set[str] = field(default_factory=set)

    @property
    def order_keys(self) -> list[str]:
        """Orders the repair job finishes (flow A's gaps, the tag, StateSet shipped)."""
        due = {found.key for found in self.due if set(found.gaps) - FLOW_C_GAPS}
        return sorted(due | self.retried)

    @property
    def dcl_order_numbers(self) -> list[str]:
        """DCL orders flow C must sync again (tracking not on Shopify, a booking not finished)."""
        numbers = {
            str(found.journey.dcl_order_number)
            for found in self.due
            if set(found.gaps) & FLOW_C_GAPS and found.journey.dcl_order_number
        }
        return sorted(numbers)


@dataclass
class JourneyRepair:
    ledger: Ledger
    shopify: ShopifyClient
    stateset: StateSetClient
    imported_tag: str
    # Flow A's ingestor, built only when an import must be finished (it reads NetSuite's catalog).
    ingestor: Callable[[], OrderIngestor]
    _ingestor: OrderIngestor | None = field(default=None, init=False)

    @classmethod
    def from_rules(cls, rules: BusinessRules, systems: OrderSystems) -> JourneyRepair:
        """The sweep as the rules configure it (the sensor, the repair job and the CLI alike)."""
        return cls(
            ledger=systems.ledger,
            shopify=systems.shopify,
            stateset=systems.stateset,
            imported_tag=rules.imported_tag,
            ingestor=lambda: OrderIngestor.from_rules(rules, systems),
        )

    # -- finding --------------------------------------------------------------------------------
    def find(self, window: SweepWindow) -> SweepFindings:
        """The ledger's journeys with a gap, after noting what Shopify says of the tag (one search).

        Left to their own queue: an order in flow A's (its import or edit is a person's or flow A's
        retry's), a shipment in flow C's, a repair a person holds (open)."""
        untagged = self.shopify.iter_order_ids(untagged_search(self.imported_tag, window.tags_since))
        for key in self.ledger.mark_tag_lost(untagged, at=window.now):
            log.info("order %s: the ledger had it tagged, Shopify shows no %s tag", key, self.imported_tag)
        # Flow A's queue (a person's or its sensor's retry) and the repairs a person holds.
        orders_queued = self.ledger.keys_with_exceptions(FLOW, Entity.ORDER, QUEUED)
        held = orders_queued | self.ledger.keys_with_exceptions(FLOW, ENTITY, [ExceptionStatus.OPEN])
        shipments_queued = self.ledger.keys_with_exceptions(Flow.FULFILLMENT, Entity.DCL_ORDER, QUEUED)
        retried = self.ledger.keys_with_exceptions(FLOW, ENTITY, [ExceptionStatus.RETRYING])
        findings = SweepFindings(retried=retried)
        journeys = self.ledger.journeys_with_gaps(window.since)
        shipments = self.ledger.shipments_of_orders(
            j.dcl_order_number for j in journeys if j.dcl_order_number
        )
        for journey in journeys:
            found = journey_gaps(
                journey, shipments.get(str(journey.dcl_order_number), []), now=window.now, grace=window.grace
            )
            if not found:
                continue
            queued = found.key in held or (
                str(journey.dcl_order_number) in shipments_queued and set(found.gaps) & SHIPMENT_GAPS
            )
            (findings.due if found.due and not queued else findings.waiting).append(found)
        return findings

    # -- repairing ------------------------------------------------------------------------------
    def repair(self, key: str) -> Outcome:
        """Finish one order's missing steps (flow A's import, the tag, StateSet shipped), read fresh."""
        journey = self.ledger.journey(key)
        if journey is None:
            raise NotFoundError("no journey for this order", system="ledger", record=key)
        found = journey_gaps(journey)
        did = False
        if found.import_unfinished:
            if self._import().ingest(key) == Outcome.DONE:
                self._audit(key, "repair.import", ", ".join(g.value for g in found.gaps))
                did = True
            journey = self.ledger.journey(key) or journey
        elif Gap.SHOPIFY_TAG in found.gaps:
            self.shopify.add_tags(int(key), [self.imported_tag])
            self.ledger.audit("shopify", "tagsAdd", key, "ok", detail=self.imported_tag)
            self.ledger.mark_tagged(key)
            self._audit(key, "repair.tag", f"{self.imported_tag} was missing in Shopify")
            did = True
        if journey.stage == Stage.SHIPPED and journey.stateset_shipped_at is None:
            did = self._stateset_shipped(key) or did
        return Outcome.DONE if did else Outcome.SKIPPED

    def _stateset_shipped(self, key: str) -> bool:
        """Move the StateSet order of a shipped order to SHIPPED with the tracking flow C recorded
        (already there — shipped outside us, or a lost answer — is only noted)."""
        journey = self.ledger.journey(key)
        if journey is None or not journey.stateset_order_id or journey.stateset_shipped_at:
            return False
        current = self.stateset.get_order(journey.stateset_order_id)
        if current.get("status") not in SHIPPED_OR_LATER:
            shipments = self.ledger.shipments_of(journey.dcl_order_number) if journey.dcl_order_number else []
            last = shipments[-1] if shipments else None
            carrier = (last.carrier if last else None) or "unknown"
            numbers = list(last.tracking_numbers or []) if last else []
            self.stateset.ship_order(
                journey.stateset_order_id,
                carrier=carrier,
                method=carrier,
                tracking_number=numbers[0] if numbers else "",
            )
            self.ledger.audit("stateset", "orders.ship", key, "ok", remote_id=journey.stateset_order_id)
        self.ledger.mark_stateset_shipped(journey.id)
        self._audit(key, "repair.stateset_shipped", f"StateSet order was {current.get('status')}")
        return True

    def _import(self) -> OrderIngestor:
        if self._ingestor is None:
            self._ingestor = self.ingestor()
        return self._ingestor

    def _audit(self, key: str, operation: str, detail: str) -> None:
        log.info("repaired order %s: %s (%s)", key, operation, detail)
        self.ledger.audit("ledger", operation, key, "ok", detail=detail)


def describe_findings(findings: Iterable[JourneyGaps]) -> list[str]:
    """One line per order: its name, stage and gaps (the CLI's and the run's report)."""
    return [
        f"{found.journey.name or found.key} ({found.key}) at {found.journey.stage}: "
        + ", ".join(g.value for g in found.gaps)
        for found in findings
    ]
