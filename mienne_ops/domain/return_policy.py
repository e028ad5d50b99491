"""The return policy, as pure functions: who may send what back, the label, the wait, the refund.

A return request is approved or refused **whole**, as Shopify approves or declines a return request
whole (`returnApproveRequest` / `returnDeclineRequest`): a refusal names every line that cannot come
back, and the customer may ask again for the rest (our design choice). The verdicts are those of
`refund_policy` (`Decision`):

- **invalid** ``nothing_asked`` — a request that names no lines. A ticket must name its lines (or the
  caller passes `all_returnable(facts)` explicitly); the policy never guesses "everything".
- **refused**, with a reason the customer can read — ``not_requester`` (the ticket's requester is not
  the order's customer; the reason reveals nothing about the order, and this check runs first so no
  other reason leaks details either), ``cancelled``, ``already_refunded`` (the order is fully
  refunded), ``not_fulfilled`` (nothing shipped yet), ``unknown_sku`` (not among the shipped items),
  ``final_sale`` (by SKU or by product tag, named), ``too_many`` (more than shipped minus already
  returned or refunded, named), ``outside_window`` (the last day is said).
  Codes in `EXCEPTION_CODES` also want a person (the issue's "exceptions, not silence").

**The window** runs per line from its delivery, or — delivery unknown — from its fulfillment plus a
transit allowance. It counts **whole calendar days in the shop's time zone**: delivered on 1 November
with a 30-day window, the last day is 1 December, and a request any time that day is in the window.

**Instant refunds** (before the goods arrive) need a label (the trigger is the carrier's first scan or
the label itself, both of which only exist with our label), a value up to the limit, and a customer in
good standing. Whether DCL reports the carrier's first scan at all is unverified, hence the
``label_created`` trigger.

**Receipts** are assessed on DCL's cumulative received quantities, so a second partial receipt
refunds only the new units and nothing is refunded twice or beyond the return's quantities. Which
condition DCL reports, and how, is unverified: anything but ``good`` counts as damaged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from mienne_ops.domain.money import ZERO, cents
from mienne_ops.domain.refund_policy import PROCEED, Decision, Verdict, invalid, refused
from mienne_ops.domain.service_requests import RequestedLine

GOOD = "good"
DAMAGED = "damaged"

#: Refusals the customer is told about that also go to the exceptions queue for a person: a return
#: for an order already refunded in full (money moved without goods), and a stranger asking about an
#: order (a gift recipient, a second email address, or worse).
EXCEPTION_CODES = frozenset({"already_refunded", "not_requester"})


@dataclass(frozen=True)
class LabelService:
    carrier: str
    service: str


class InstantTrigger(StrEnum):
    FIRST_SCAN = "first_scan"  # refund at the carrier's first scan of the return parcel
    LABEL_CREATED = "label_created"  # refund as soon as the label exists (DCL's scan report unverified)


def _default_label_services() -> Mapping[str, LabelService]:
    return {
        "US": LabelService("USPS", "GROUND ADVANTAGE"),
        "CA": LabelService("CANADA POST", "EXPEDITED PARCEL"),
    }


@dataclass(frozen=True)
class ReturnPolicy:
    window_days: int = 30
    transit_allowance_days: int = 7  # delivery unknown: fulfillment + allowance starts the window
    final_sale_skus: frozenset[str] = frozenset()
    final_sale_tags: frozenset[str] = frozenset({"final-sale"})  # product tags, compared lower-cased
    label_services: Mapping[str, LabelService] = field(default_factory=_default_label_services)
    reminder_days: tuple[int, ...] = (3, 7)  # days after the label was sent
    expiry_days: int = 14  # after the label was sent, an unshipped return expires
    instant_refund_max: Decimal | None = Decimal("50.00")  # None: never instant
    instant_refund_min_orders: int = 2  # good standing: this many orders, and no bad return history
    instant_trigger: InstantTrigger = InstantTrigger.FIRST_SCAN
    refund_damaged: bool = False  # damaged goods: refunded anyway, or an exception for a person
    timezone: str = "UTC"  # the shop's IANA zone: the window's and the deadline's calendar days

    def __post_init__(self) -> None:
        problems = policy_problems(self)
        if problems:
            raise ValueError("; ".join(problems))


def policy_problems(policy: ReturnPolicy) -> list[str]:
    """What is wrong with a policy (empty when it is usable)."""
    problems = []
    if policy.window_days < 0 or policy.transit_allowance_days < 0:
        problems.append("the return window and the transit allowance are whole days, not negative")
    if policy.expiry_days <= 0:
        problems.append("a return expires at least one day after its label was sent")
    days = policy.reminder_days
    if any(day <= 0 for day in days) or list(days) != sorted(set(days)):
        problems.append(f"reminder days must be positive and strictly ascending, not {list(days)}")
    elif days and days[-1] >= policy.expiry_days:
        problems.append(
            f"the last reminder (day {days[-1]}) must come before the return expires "
            f"(day {policy.expiry_days})"
        )
    limit = policy.instant_refund_max
    if limit is not None and (not limit.is_finite() or limit < 0):
        problems.append(f"the instant refund limit is an amount of at least 0, not {limit}")
    if policy.instant_refund_min_orders < 0:
        problems.append("the instant refund's order count is not negative")
    for country in policy.label_services:
        if len(country) != 2 or not country.isalpha() or not country.isupper():
            problems.append(f"label services are keyed by ISO-2 country code (US, CA), not {country!r}")
    try:
        ZoneInfo(policy.timezone)
    except (ValueError, KeyError):
        problems.append(f"unknown time zone {policy.timezone!r}")
    return problems


@dataclass(frozen=True)
class ShippedLine:
    """One fulfilled order line (a line shipped in two fulfillments may come as two)."""

    sku: str
    line_item_id: str
    shipped: int
    returned: int  # already in other returns, or refunded
    fulfilled_at: datetime
    delivered_at: datetime | None
    tags: frozenset[str]  # the product's tags
    unit_price: Decimal  # what one unit is refundable for (after discounts)

    @property
    def returnable(self) -> int:
        return max(0, self.shipped - self.returned)


@dataclass(frozen=True)
class ReturnFacts:
    """What the policy needs to know about the order (read from Shopify, the ledger and DCL)."""

    order_name: str
    currency: str
    customer_emails: frozenset[str]  # the order's email and its customer's, lower-cased
    cancelled: bool
    fully_refunded: bool
    lines: tuple[ShippedLine, ...]  # fulfilled lines only
    country: str | None  # the shipping address's ISO-2 country code
    customer_orders: int  # the customer's order count (Shopify `numberOfOrders`)
    bad_history: bool  # a return of this customer was refused or expired before


@dataclass(frozen=True)
class ReturnDecision:
    decision: Decision
    lines: tuple[tuple[str, int], ...] = ()  # (sku, quantity) approved, in the order asked
    label: LabelService | None = None  # None: no label for the destination (the customer ships it)
    instant: bool = False  # refund before the goods arrive, at `policy.instant_trigger` (needs a label)
    value: Decimal = ZERO  # what the approved lines are worth (unit price x quantity)
    # (line_item_id, quantity): which shipped lines the approved units come from (Shopify's return
    # lines and NetSuite's need the line, not the SKU)
    line_items: tuple[tuple[str, int], ...] = ()

    @property
    def proceeds(self) -> bool:
        return self.decision.proceeds


def all_returnable(facts: ReturnFacts) -> tuple[RequestedLine, ...]:
    """Every unit still returnable, per SKU, for a caller that means "everything" explicitly."""
    totals = _by_sku((line.sku, line.returnable) for line in facts.lines)
    return tuple(RequestedLine(sku=sku, quantity=qty) for sku, qty in totals.items() if qty > 0)


def requester_matches(requester: str | None, trusted: bool, facts: ReturnFacts) -> bool:
    return trusted or (requester is not None and requester.strip().lower() in facts.customer_emails)


def return_decision(
    requester: str | None,
    trusted: bool,
    requested: Sequence[RequestedLine],
    facts: ReturnFacts,
    policy: ReturnPolicy,
    now: datetime,
) -> ReturnDecision:
    """Whether these lines may come back, with which label, and whether the refund is instant.

    ``trusted``: an operator, or Shopify's own customer-account request (Shopify checked who asked);
    otherwise ``requester`` (the ticket's email) must be the order's customer.
    """
    if not requested:
        return ReturnDecision(invalid("nothing_asked", "the request names no items to return"))
    if not requester_matches(requester, trusted, facts):
        return ReturnDecision(
            refused(
                "not_requester",
                f"we could not match order {facts.order_name} to the email address you wrote from; "
                "please write from the address you ordered with",
            )
        )
    order_check = _order_check(facts)
    if not order_check.proceeds:
        return ReturnDecision(order_check)
    asked = _by_sku((line.sku, line.quantity) for line in requested)
    refusals: list[Decision] = []
    taken: list[tuple[ShippedLine, int]] = []
    for sku, quantity in asked.items():
        outcome = _line_check(sku, quantity, facts, policy, now)
        if isinstance(outcome, Decision):
            refusals.append(outcome)
        else:
            taken += outcome
    if refusals:
        reasons = tuple(reason for refusal in refusals for reason in refusal.reasons)
        return ReturnDecision(Decision(Verdict.REFUSED, reasons, refusals[0].code))
    value = cents(sum((line.unit_price * units for line, units in taken), ZERO))
    label = label_service(facts.country, policy)
    return ReturnDecision(
        PROCEED,
        lines=tuple(asked.items()),
        line_items=tuple((line.line_item_id, units) for line, units in taken),
        label=label,
        instant=label is not None and instant_eligible(value, facts, policy),
        value=value,
    )


def _order_check(facts: ReturnFacts) -> Decision:
    if facts.cancelled:
        return refused("cancelled", f"order {facts.order_name} was cancelled")
    if facts.fully_refunded:
        return refused("already_refunded", f"order {facts.order_name} has already been refunded in full")
    if not any(line.shipped > 0 for line in facts.lines):
        return refused("not_fulfilled", f"order {facts.order_name} has not shipped yet")
    return PROCEED


def _line_check(
    sku: str, quantity: int, facts: ReturnFacts, policy: ReturnPolicy, now: datetime
) -> Decision | list[tuple[ShippedLine, int]]:
    """A refusal for this SKU, or the lines its ``quantity`` units are taken from.

    Units are taken from the SKU's lines in order, skipping final-sale lines and lines outside the
    window, so the most specific reason wins: not shipped, final sale, too many, then the window.
    """
    lines = [line for line in facts.lines if line.sku == sku and line.shipped > 0]
    if not lines:
        return refused("unknown_sku", f"{sku} is not among the items shipped on order {facts.order_name}")
    if sku in policy.final_sale_skus:
        return refused("final_sale", f"{sku} is final sale and cannot be returned")
    returnable = sum(line.returnable for line in lines)
    if quantity > returnable:
        return refused(
            "too_many",
            f"you asked to return {quantity} × {sku}, but only {returnable} can still be returned "
            f"on order {facts.order_name}",
        )
    open_lines = [line for line in lines if not _final_sale_tagged(line, policy)]
    if quantity > sum(line.returnable for line in open_lines):
        return refused("final_sale", f"{sku} is final sale and cannot be returned")
    current = [line for line in open_lines if in_window(line, policy, now)]
    if quantity > sum(line.returnable for line in current):
        last = max(last_return_day(line, policy) for line in open_lines)
        return refused(
            "outside_window",
            f"returns are accepted for {policy.window_days} days after delivery; the last day to "
            f"return {sku} was {last.isoformat()}",
        )
    taken: list[tuple[ShippedLine, int]] = []
    left = quantity
    for line in current:
        take = min(left, line.returnable)
        if take:
            taken.append((line, take))
        left -= take
    return taken


def _final_sale_tagged(line: ShippedLine, policy: ReturnPolicy) -> bool:
    tags = {tag.strip().lower() for tag in line.tags}
    return bool(tags & {tag.lower() for tag in policy.final_sale_tags})


def window_start(line: ShippedLine, policy: ReturnPolicy) -> datetime:
    if line.delivered_at is not None:
        return line.delivered_at
    return line.fulfilled_at + timedelta(days=policy.transit_allowance_days)


def last_return_day(line: ShippedLine, policy: ReturnPolicy) -> date:
    """The last calendar day (shop time) a return of this line may be asked for."""
    start = window_start(line, policy).astimezone(ZoneInfo(policy.timezone))
    return start.date() + timedelta(days=policy.window_days)


def in_window(line: ShippedLine, policy: ReturnPolicy, now: datetime) -> bool:
    """``now`` falls on or before the line's last return day (shop time)."""
    return now.astimezone(ZoneInfo(policy.timezone)).date() <= last_return_day(line, policy)


def label_service(country: str | None, policy: ReturnPolicy) -> LabelService | None:
    """The carrier service of the return label for a destination; None: no label (ship it yourself)."""
    if not country:
        return None
    return policy.label_services.get(country.strip().upper())


def instant_eligible(decision_value: Decimal, facts: ReturnFacts, policy: ReturnPolicy) -> bool:
    """Refund before the goods arrive: a value up to the limit (inclusive), and good standing.

    Good standing is at least ``instant_refund_min_orders`` orders and no return refused or expired
    before. (Whether the return has a label, which the trigger needs, is `return_decision`'s check.)
    """
    if policy.instant_refund_max is None or decision_value <= 0:
        return False
    return (
        decision_value <= policy.instant_refund_max
        and facts.customer_orders >= policy.instant_refund_min_orders
        and not facts.bad_history
    )


def reminder_times(label_sent_at: datetime, policy: ReturnPolicy) -> tuple[datetime, ...]:
    return tuple(label_sent_at + timedelta(days=days) for days in policy.reminder_days)


def expires_at(label_sent_at: datetime, policy: ReturnPolicy) -> datetime:
    """When a return whose parcel has not been handed to the carrier expires."""
    return label_sent_at + timedelta(days=policy.expiry_days)


def return_deadline(label_sent_at: datetime, policy: ReturnPolicy) -> date:
    """The deadline the customer is told: the calendar day (shop time) the return expires on."""
    return expires_at(label_sent_at, policy).astimezone(ZoneInfo(policy.timezone)).date()


def due_reminders(label_sent_at: datetime, reminders_sent: int, policy: ReturnPolicy, now: datetime) -> int:
    """How many reminders to send now: 0 or 1.

    A reminder is due when more reminder times have passed than reminders were sent. After a restart
    days late, several may have passed; the customer still gets **one** (three at once is spam), and
    the missed ones count as sent once the caller adds it. None once the return has expired: the
    expiry message replaces them.
    """
    if now >= expires_at(label_sent_at, policy):
        return 0
    passed = sum(1 for at in reminder_times(label_sent_at, policy) if at <= now)
    return 1 if passed > reminders_sent else 0


def reminders_passed(label_sent_at: datetime, policy: ReturnPolicy, now: datetime) -> int:
    """How many reminder times have passed: what to record as sent after sending the one due."""
    return sum(1 for at in reminder_times(label_sent_at, policy) if at <= now)


@dataclass(frozen=True)
class ReceiptAssessment:
    """What to do with what DCL received so far on one return.

    ``refund`` is what to refund **now** (beyond ``already_refunded``); ``restock``, ``write_off``,
    ``unexpected``, ``damaged`` and ``missing`` are cumulative over every receipt so far — the books
    side books the difference to what its item receipts already hold.
    """

    refund: dict[str, int]  # sku -> units to refund now
    restock: dict[str, int]  # good units on the return: back to stock
    write_off: dict[str, int]  # damaged units on the return: received as a write-off
    unexpected: dict[str, int]  # units not on the return, or beyond its quantity: for a person
    damaged: dict[str, int]  # every unit reported damaged (on the return or not)
    problems: tuple[str, ...]  # readable reasons for a person (wrong item, wrong quantity, damaged)
    missing: dict[str, int] = field(default_factory=dict)  # units on the return not received yet

    @property
    def complete(self) -> bool:
        """Every unit on the return has arrived."""
        return not self.missing


def assess_receipt(
    expected: Mapping[str, int],
    received: Mapping[str, Mapping[str, int]],
    already_refunded: Mapping[str, int],
    policy: ReturnPolicy,
) -> ReceiptAssessment:
    """``received`` is sku -> condition -> units, cumulative over all of the return's receipts.

    Good units are counted against the return's quantity first (they go back to stock). Damaged units
    on the return are written off, and refunded only if ``policy.refund_damaged`` (otherwise a person
    decides, from the problems). Units beyond the return's quantity are neither refunded nor booked.
    """
    refund: dict[str, int] = {}
    restock: dict[str, int] = {}
    write_off: dict[str, int] = {}
    unexpected: dict[str, int] = {}
    damaged: dict[str, int] = {}
    missing: dict[str, int] = {}
    problems: list[str] = []
    for sku in sorted(set(expected) | set(received)):
        want = max(0, expected.get(sku, 0))
        good, bad = _conditions(received.get(sku, {}))
        good_taken = min(good, want)
        bad_taken = min(bad, want - good_taken)
        extra = good + bad - good_taken - bad_taken
        refundable = good_taken + (bad_taken if policy.refund_damaged else 0)
        _put(refund, sku, min(refundable, want) - already_refunded.get(sku, 0))
        _put(restock, sku, good_taken)
        _put(write_off, sku, bad_taken)
        _put(unexpected, sku, extra)
        _put(damaged, sku, bad)
        _put(missing, sku, want - good_taken - bad_taken)
        if extra and not want:
            problems.append(f"received {extra} × {sku}, which is not on the return (wrong item)")
        elif extra:
            problems.append(f"received {good + bad} × {sku} but the return is for {want} (wrong quantity)")
        if bad:
            fate = "refunded anyway" if policy.refund_damaged else "not refunded until someone decides"
            problems.append(f"{bad} × {sku} arrived damaged ({fate})")
    return ReceiptAssessment(refund, restock, write_off, unexpected, damaged, tuple(problems), missing)


def _conditions(by_condition: Mapping[str, int]) -> tuple[int, int]:
    """(good, damaged) units; any condition but "good" counts as damaged (DCL's values unverified)."""
    good = bad = 0
    for condition, units in by_condition.items():
        if condition.strip().lower() == GOOD:
            good += max(0, units)
        else:
            bad += max(0, units)
    return good, bad


def _put(into: dict[str, int], sku: str, units: int) -> None:
    if units > 0:
        into[sku] = units


def _by_sku(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for sku, quantity in pairs:
        totals[sku] = totals.get(sku, 0) + quantity
    return totals
