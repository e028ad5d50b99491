"""Holds before dispatch, with I/O: evaluate an order's holds, keep Shopify's fulfillment-order holds
in step with the ledger's, release holds whose time has come.

The ledger is the record (`ledger.holds`); Shopify mirrors it so the merchant sees the same state in
the admin: each active hold is a `fulfillmentOrderHold` on the order's open fulfillment orders under
the handle ``mienne-<reason>`` (idempotent: a second hold under a handle is refused by Shopify), and a
released one is released there by that handle. Releases go both ways: a hold of ours that no longer
exists on any fulfillment order was released in the Shopify admin, and is released in the ledger
(by ``shopify``).

Which holds are due comes from the rules (`domain.holds`): re-evaluating an order places what the
rules ask for now and releases the holds the rules placed that no longer apply and that the rules may
release (the edit window, a corrected address, a pre-order date). Holds released by a person (fraud,
value, manual) are only released by a person.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from mienne_ops.domain.holds import (
    SHOPIFY_HOLD_REASON,
    HoldPolicy,
    HoldReason,
    OrderHold,
    Release,
    evaluate_holds,
    order_facts,
)
from mienne_ops.domain.journey import Entity
from mienne_ops.domain.shopify import ShopifyOrder
from mienne_ops.errors import AuthError, PermanentError, TransientError
from mienne_ops.integrations.shopify import ShopifyClient
from mienne_ops.ledger import Ledger
from mienne_ops.ledger.holds import HOLDS_FLOW

log = logging.getLogger("mienne_ops.sync.holds")

BY_RULES = "rules"
SHOPIFY_REFUSED = "shopify_hold_refused"
BY_SHOPIFY = "shopify"
# Holds the rules may release on their own when they no longer apply.
RELEASED_BY_RULES = (Release.AT_TIME, Release.ON_CORRECTION)


def shopify_handle(reason: HoldReason) -> str:
    return f"mienne-{reason}"


def utc_now() -> datetime:
    """The time holds are judged by (one function, so a test can move it: pre-order dates)."""
    return datetime.now(UTC)


def holding(hold: OrderHold, moment: datetime) -> bool:
    """Whether a hold still keeps its order from DCL (a time hold past its time no longer does,
    even before the holds sensor has released it)."""
    return hold.active and not (hold.release == Release.AT_TIME and hold.until and hold.until <= moment)


@dataclass
class HoldKeeper:
    shopify: ShopifyClient
    ledger: Ledger
    policy: HoldPolicy
    clock: Callable[[], datetime] | None = None

    def now(self) -> datetime:
        return (self.clock or utc_now)()

    def evaluate(self, key: str, order: ShopifyOrder) -> list[OrderHold]:
        """Place the holds the rules ask for now, release the rules' holds that no longer apply;
        mirror both to Shopify. Returns the order's active holds."""
        decisions = evaluate_holds(order_facts(order), self.policy, self.now())
        wanted = {decision.reason for decision in decisions}
        for decision in decisions:
            if self.ledger.place_hold(key, decision, placed_by=BY_RULES):
                self._mirror_or_report(key, decision.reason, decision.detail)
        for hold in self.ledger.active_holds([key]):
            if hold.placed_by == BY_RULES and hold.release in RELEASED_BY_RULES and hold.reason not in wanted:
                self.release(key, hold.reason, BY_RULES)
        return self.ledger.active_holds([key])

    def release(self, key: str, reason: HoldReason, released_by: str) -> bool:
        """Release a hold in the ledger and in Shopify (False: it was not active)."""
        released = self.ledger.release_hold(key, reason, released_by)
        self._unmirror(key, reason)
        return released

    def release_due(self) -> list[OrderHold]:
        """Release every hold whose time has come (edit windows, pre-order dates)."""
        due = self.ledger.holds_due(self.now())
        for hold in due:
            self.release(hold.shopify_order_id, hold.reason, BY_RULES)
        return due

    def sync_with_shopify(self, *, read_shopify: bool = True) -> dict[str, int]:
        """Bring Shopify and the ledger into agreement, both ways (counts of what was done).

        - a hold placed in the ledger without Shopify (by the CLI, or a failed mirror) is mirrored;
        - a hold released in the ledger whose Shopify holds remain is released there;
        - with ``read_shopify`` (one read per held order: not on every tick), a hold of ours gone from
          every fulfillment order was released in the Shopify admin.
        """
        counts = {"mirrored": 0, "released_in_shopify": 0, "released_from_shopify": 0, "refused": 0}
        for hold in self.ledger.holds_with_mirror_pending():
            if hold.active:
                if self._mirror_or_report(hold.shopify_order_id, hold.reason, hold.detail):
                    counts["mirrored"] += 1
                else:
                    counts["refused"] += 1
            else:
                self._unmirror(hold.shopify_order_id, hold.reason)
                counts["released_in_shopify"] += 1
        for hold in self.ledger.active_holds() if read_shopify else []:
            if hold.shopify_hold_ids and not self._held_in_shopify(hold):
                self.ledger.release_hold(hold.shopify_order_id, hold.reason, BY_SHOPIFY)
                self.ledger.record_shopify_holds(hold.shopify_order_id, hold.reason, None)
                counts["released_from_shopify"] += 1
        return counts

    # -- Shopify --------------------------------------------------------------------------------
    def _mirror_or_report(self, key: str, reason: HoldReason, detail: str) -> bool:
        """Mirror one hold; a refusal by Shopify (e.g. a fulfillment order it will not hold in its
        status) stops neither the other holds nor flow A's import: it is reported
        (`shopify_hold_refused`, flow ``holds``) and recorded as mirrored on nothing, so the ledger's
        hold stands and nobody believes Shopify shows it. A transient failure is left pending for the
        holds run (the hold is in the ledger, not yet mirrored)."""
        try:
            self._mirror(key, reason, detail)
        except AuthError:
            raise  # no hold's fault: the run stops with one clear error
        except TransientError as error:
            log.warning("hold %s on %s not mirrored yet: %s", reason, key, error)
            return False
        except PermanentError as error:
            self.ledger.quarantine(
                HOLDS_FLOW,
                Entity.ORDER,
                key,
                SHOPIFY_REFUSED,
                f"{reason} hold not shown in Shopify: {error}",
                context={"reason": str(reason)},
            )
            self.ledger.record_shopify_holds(key, reason, [])
            self.ledger.audit("shopify", "fulfillmentOrderHold", key, "refused", detail=str(error)[:500])
            return False
        return True

    def _mirror(self, key: str, reason: HoldReason, detail: str) -> None:
        hold_ids = self.shopify.hold_fulfillment_orders(
            int(key), SHOPIFY_HOLD_REASON[reason], f"mienne-ops: {detail}", shopify_handle(reason)
        )
        self.ledger.record_shopify_holds(key, reason, hold_ids)
        self.ledger.audit("shopify", "fulfillmentOrderHold", key, "ok", detail=f"{reason}: {len(hold_ids)}")

    def _unmirror(self, key: str, reason: HoldReason) -> None:
        released = self.shopify.release_fulfillment_holds(int(key), shopify_handle(reason))
        self.ledger.record_shopify_holds(key, reason, None)
        if released:
            self.ledger.audit(
                "shopify", "fulfillmentOrderReleaseHold", key, "ok", detail=f"{reason}: {released}"
            )

    def _held_in_shopify(self, hold: OrderHold) -> bool:
        handle = shopify_handle(hold.reason)
        fulfillment_orders = self.shopify.fulfillment_orders(int(hold.shopify_order_id))
        return any(h["handle"] == handle for fo in fulfillment_orders for h in fo["holds"])
