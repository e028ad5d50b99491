"""A hold placed after dispatch: DCL's order is cancelled while DCL allows it and sent again when the
hold is released; once DCL has started picking, the hold is reported as too late.

DCL documents no update of an order it already has (dcl.md §3, §6): an order can be *created* on hold
(``order_status`` 0) but nothing releases or changes it afterwards; the one call on an order already
sent is ``PUT /orders/cancel``, refused once the order is being picked (sandbox default: from stage
20, Pick List Printed). So a hold after dispatch cancels the DCL order, and flow B sends the order
again on release (`sync.dispatch`, under the number `BusinessRules.dcl_resend_cancelled_as` says).

The protocol, every step safe to repeat (a crash anywhere, a second hold, a release racing the
cancel never leave two live DCL orders, and never a cancelled one believed live):

1. the journey moves *dispatched* → *withdrawing* (compare-and-set) **before** DCL is called, so a
   crash after the call cannot forget that DCL's order may be cancelled;
2. ``PUT /orders/cancel`` (the client reads "already cancelled" as success);
3. cancelled: *withdrawing* → *withdrawn*, and NetSuite's ``custbody_sent_to_3pl`` back to F (flow B
   also reads withdrawn journeys from the ledger, so a crash before this PATCH loses nothing).
   Refused: *withdrawing* → *dispatched*, and the order is reported ``hold_too_late`` in the
   exceptions queue (flow ``holds``, keyed by the DCL order number) with DCL's stage. The hold stays:
   the order ships unless someone stops it at DCL by hand.

Whoever finds a journey *withdrawing* — the holds run while the hold is active, flow B once it was
released — drives it forward through step 2, never back to *dispatched* without DCL's refusal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from mienne_ops.domain.journey import DISPATCHED_STAGES, Entity, OrderJourney, Stage
from mienne_ops.errors import InvalidRecordError
from mienne_ops.integrations.dcl import DclClient
from mienne_ops.integrations.netsuite import NetSuiteClient
from mienne_ops.ledger import Ledger
from mienne_ops.ledger.holds import HOLDS_FLOW, TOO_LATE_REASON
from mienne_ops.ledger.store import ExceptionStatus
from mienne_ops.sync.batch import BatchReport, Outcome, run_batch
from mienne_ops.sync.holds import holding, utc_now

log = logging.getLogger("mienne_ops.sync.hold_recall")

FLOW = HOLDS_FLOW  # the holds run's flow tag (`flows.holds`); its exceptions are keyed like this
ENTITY = Entity.DCL_ORDER
TOO_LATE = TOO_LATE_REASON  # settled by the ledger when the order's last hold is released
# Journeys whose DCL order may still be live (a shipped one is reported too late without a call).
RECALL_STAGES = frozenset({*DISPATCHED_STAGES, Stage.WITHDRAWING})
SHIPPED_STAGES = frozenset({Stage.PARTIALLY_SHIPPED, Stage.SHIPPED})


class DclState(StrEnum):
    """Where a held order stands at DCL (shown by `mienne-ops holds list` and `held_orders`)."""

    NOT_SENT = "not_sent"  # before dispatch: flow B keeps it back
    AT_DCL = "at_dcl"  # dispatched: the next holds run asks DCL to cancel it
    CANCELLING = "cancelling"  # withdrawing: DCL asked, its answer not recorded yet
    WITHDRAWN = "withdrawn"  # cancelled at DCL; flow B sends it again when released
    TOO_LATE = "too_late"  # DCL refused: it started picking; the order ships unless stopped by hand


@dataclass
class DclRecall:
    dcl: DclClient
    netsuite: NetSuiteClient
    ledger: Ledger

    def due(self) -> list[str]:
        """DCL order numbers of held orders DCL may still have live (no too-late report open)."""
        return due_recalls(self.ledger)

    def recall_all(self, order_numbers: list[str] | None = None) -> BatchReport:
        """Recall each held order at DCL in isolation (too late: an open ``hold_too_late``)."""
        return run_batch(
            flow=FLOW,
            entity=ENTITY,
            keys=self.due() if order_numbers is None else order_numbers,
            handle=self.recall,
            ledger=self.ledger,
        )

    def recall(self, order_number: str) -> Outcome:
        """Cancel the DCL order of a held journey; DONE when cancelled (the journey is *withdrawn*),
        SKIPPED when there is nothing at DCL to cancel; `InvalidRecordError` (``hold_too_late``)
        when DCL refuses."""
        journey = self.ledger.journey_by_dcl_order(order_number)
        if journey is None or journey.stage not in RECALL_STAGES:
            return Outcome.SKIPPED
        if journey.stage in SHIPPED_STAGES:
            raise self._too_late(journey)
        if journey.stage == Stage.DISPATCHED:
            self.ledger.move_stage(journey.id, [Stage.DISPATCHED], Stage.WITHDRAWING)
        if self.withdraw(journey):
            return Outcome.DONE
        raise self._too_late(journey)

    def withdraw(self, journey: OrderJourney) -> bool:
        """Steps 2 and 3 for a journey *withdrawing*: True when DCL cancelled its order."""
        number = str(journey.dcl_order_number)
        record = journey.shopify_order_id or number
        cancelled = self.dcl.cancel_order(number)
        self.ledger.audit(
            "dcl", "orders.cancel", record, "ok" if cancelled else "refused", remote_id=number, detail="held"
        )
        if not cancelled:
            self.ledger.move_stage(journey.id, [Stage.WITHDRAWING], Stage.DISPATCHED)
            return False
        sales_order = journey.netsuite_sales_order_id
        if self.ledger.move_stage(journey.id, [Stage.WITHDRAWING], Stage.WITHDRAWN) and sales_order:
            # NetSuite's users see the truth (not at the 3PL), and flow B's query finds it again.
            self.netsuite.patch("salesOrder", sales_order, {"custbody_sent_to_3pl": False})
            self.ledger.audit(
                "netsuite",
                "salesOrder.sent_to_3pl",
                record,
                "ok",
                remote_id=sales_order,
                detail="F: DCL order cancelled for a hold",
            )
        return True

    def _too_late(self, journey: OrderJourney) -> InvalidRecordError:
        number = str(journey.dcl_order_number)
        found = self.dcl.orders([number])
        stage = found[0].order_stage if found else None
        described = str(found[0].raw.get("stage_description") or "") if found else ""
        at = f"stage {stage}" + (f" ({described})" if described else "")
        if stage is None:
            at = "an unknown stage"
        holds = sorted(str(h.reason) for h in self.ledger.active_holds([str(journey.shopify_order_id)]))
        return InvalidRecordError(
            TOO_LATE,
            f"held ({', '.join(holds) or 'hold'}) after DCL started on it: DCL order {number} is at {at} "
            "and cannot be cancelled any more; it ships unless stopped at DCL by hand. The hold stays "
            "until a person releases it (then the tracking reaches Shopify).",
            system="dcl",
            operation="orders.cancel",
            record=number,
            payload={
                "shopify_order_id": journey.shopify_order_id,
                "dcl_order_number": number,
                "dcl_stage": stage,
                "stage_description": described,
                "holds": holds,
            },
        )


def due_recalls(ledger: Ledger) -> list[str]:
    """DCL order numbers of orders with an active hold whose DCL order may still be live, leaving out
    those already reported too late (an open exception; `exceptions retry` brings one back)."""
    moment = utc_now()
    held = {h.shopify_order_id for h in ledger.active_holds() if holding(h, moment)}
    if not held:
        return []
    reported = ledger.keys_with_exceptions(FLOW, ENTITY, [ExceptionStatus.OPEN])
    return sorted(
        str(journey.dcl_order_number)
        for journey in ledger.journeys(held).values()
        if journey.dcl_order_number
        and journey.stage in RECALL_STAGES
        and journey.dcl_order_number not in reported
    )


def dcl_states(ledger: Ledger, shopify_order_ids: list[str]) -> dict[str, tuple[DclState, str]]:
    """Where each order stands at DCL, with a readable detail (the DCL number, the too-late reason)."""
    journeys = ledger.journeys(shopify_order_ids)
    reports = {
        row.key: row
        for row in ledger.exceptions(statuses=[ExceptionStatus.OPEN, ExceptionStatus.RETRYING], flow=FLOW)
        if row.entity == ENTITY and row.reason == TOO_LATE
    }
    states: dict[str, tuple[DclState, str]] = {}
    for key in shopify_order_ids:
        journey = journeys.get(key)
        number = journey.dcl_order_number if journey else None
        if journey is None or not number or journey.stage not in {*RECALL_STAGES, Stage.WITHDRAWN}:
            states[key] = (DclState.NOT_SENT, "")
        elif number in reports:
            context = reports[number].context or {}
            stage = context.get("dcl_stage")
            described = context.get("stage_description") or ""
            states[key] = (DclState.TOO_LATE, f"DCL order {number} at stage {stage} {described}".strip())
        elif journey.stage == Stage.WITHDRAWN:
            states[key] = (DclState.WITHDRAWN, f"DCL order {number} cancelled; sent again when released")
        elif journey.stage == Stage.WITHDRAWING:
            states[key] = (DclState.CANCELLING, f"DCL order {number} being cancelled")
        else:
            states[key] = (DclState.AT_DCL, f"DCL order {number}: cancel pending")
    return states
