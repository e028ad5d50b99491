"""The cancellation and refund policy, as pure functions of the order's facts and the request.

Three kinds of answer, because each is handled differently:

- **invalid** — the request cannot be carried out as asked (unknown order, someone else's order, more
  than is refundable, an order cancelled already, a currency that is not the order's): the reason goes
  to the exceptions queue and to the ticket's internal note, and nothing else waits for it;
- **refused** — a valid request the policy says no to (the order has shipped, the refund window has
  passed): the customer is told why, and a cancellation too late is offered a return instead;
- **needs approval** — allowed, but a person decides first (a refund above the cap, a second refund
  on the same order): the request waits in the approval queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from mienne_ops.domain.service_requests import RequestDetails


class Verdict(StrEnum):
    PROCEED = "proceed"
    NEEDS_APPROVAL = "needs_approval"
    REFUSED = "refused"
    INVALID = "invalid"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...] = ()
    code: str | None = None  # a short machine reason for the exceptions queue and the reply

    @property
    def proceeds(self) -> bool:
        return self.verdict == Verdict.PROCEED


PROCEED = Decision(Verdict.PROCEED)


def invalid(code: str, reason: str) -> Decision:
    return Decision(Verdict.INVALID, (reason,), code)


def refused(code: str, reason: str) -> Decision:
    return Decision(Verdict.REFUSED, (reason,), code)


@dataclass(frozen=True)
class RefundPolicy:
    refund_window_days: int = 60  # from the order's processedAt
    approval_above: Decimal | None = Decimal("150.00")  # a refund above this waits for a person
    approve_repeat_refunds: bool = True  # a second refund on the same order waits for a person


@dataclass(frozen=True)
class OrderFacts:
    """What the policy needs to know about the order (read from Shopify, the ledger and DCL)."""

    currency: str
    customer_emails: frozenset[str]  # the order's email and its customer's, lower-cased
    processed_at: datetime
    cancelled: bool
    shipped_units: int  # units fulfilled (shipped or handed to the carrier)
    refundable: Decimal  # money still refundable on the order
    prior_refunds: int = 0  # refunds already made on the order (by anyone)
    approved: bool = False  # a person already approved this request
    extra: dict[str, str] = field(default_factory=dict)


def requester_allowed(requester: str | None, facts: OrderFacts) -> Decision:
    """Only the order's customer may ask on a ticket (operators are not checked: ``requester`` None)."""
    if requester is None:
        return PROCEED
    if requester.strip().lower() in facts.customer_emails:
        return PROCEED
    return invalid("not_the_customer", "the ticket's requester is not the customer of this order")


def currency_matches(details: RequestDetails, facts: OrderFacts) -> Decision:
    if details.currency and details.currency.upper() != facts.currency.upper():
        return invalid(
            "currency_mismatch",
            f"the request is in {details.currency.upper()} but the order was paid in {facts.currency}",
        )
    return PROCEED


def cancel_decision(requester: str | None, details: RequestDetails, facts: OrderFacts) -> Decision:
    """Whether an order may be cancelled now (DCL's own answer comes later, when it is asked)."""
    for check in (requester_allowed(requester, facts), currency_matches(details, facts)):
        if not check.proceeds:
            return check
    if facts.cancelled:
        return invalid("already_cancelled", "the order is already cancelled")
    if facts.shipped_units:
        return refused("already_shipped", "the order has shipped, so it can no longer be cancelled")
    return PROCEED


def refund_decision(
    requester: str | None,
    details: RequestDetails,
    facts: OrderFacts,
    amount: Decimal,
    policy: RefundPolicy,
    now: datetime,
) -> Decision:
    """Whether a refund of ``amount`` may go ahead, wait for a person, or not happen."""
    for check in (requester_allowed(requester, facts), currency_matches(details, facts)):
        if not check.proceeds:
            return check
    if amount <= 0:
        return invalid("nothing_refundable", "there is nothing left to refund on this order")
    if amount > facts.refundable:
        return invalid(
            "above_refundable",
            f"{amount} {facts.currency} is more than the {facts.refundable} {facts.currency} "
            "still refundable",
        )
    if now - facts.processed_at > timedelta(days=policy.refund_window_days):
        return refused(
            "outside_refund_window",
            f"refunds are possible for {policy.refund_window_days} days after the order",
        )
    if facts.approved:
        return PROCEED
    waits = []
    if policy.approval_above is not None and amount > policy.approval_above:
        waits.append(f"{amount} {facts.currency} is above the {policy.approval_above} approval limit")
    if policy.approve_repeat_refunds and facts.prior_refunds:
        waits.append(f"the order already has {facts.prior_refunds} refund(s)")
    if waits:
        return Decision(Verdict.NEEDS_APPROVAL, tuple(waits), "needs_approval")
    return PROCEED
