"""Holds before dispatch: which orders wait before DCL sees them, why, and what releases them.

Pure functions over what an order says (`OrderFacts`) and the rules (`HoldPolicy`, from
`BusinessRules`). Evaluated when an order is imported and again before dispatch; each decision names
its reason, a readable detail and its release:

- ``edit_window``: every order waits N minutes from Shopify's ``processedAt``, so that customer edits
  and cancellations land before the warehouse sees it — released by time;
- ``fraud_risk``: Shopify's order risk (``Order.risk``: the assessments' ``riskLevel`` and the
  ``recommendation``) at or above the rules' level — released by a person;
- ``address``: what can be checked offline (required fields per country, US ZIP vs state, Canadian
  postal code vs province) — released when the address is corrected in Shopify;
- ``high_value``: an order total above the threshold — released by a person;
- ``pre_order``: an order with a pre-order SKU or tag — released on that item's date;
- ``manual``: an operator's hold (never produced here; `mienne-ops holds hold`) — released by a person.

DCL's API has no documented update of an order it already holds (dcl.md §3, §6): holds therefore
keep orders out of flow B; a hold placed after dispatch can only cancel the DCL order (refused once
picking started: reported too late) and the order is sent again when released (`sync.hold_recall`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from mienne_ops.domain.shopify import ShopifyOrder


class HoldReason(StrEnum):
    EDIT_WINDOW = "edit_window"
    FRAUD_RISK = "fraud_risk"
    ADDRESS = "address"
    HIGH_VALUE = "high_value"
    PRE_ORDER = "pre_order"
    MANUAL = "manual"


class Release(StrEnum):
    """What ends a hold."""

    AT_TIME = "at_time"  # automatically, at the hold's ``until``
    BY_PERSON = "by_person"  # `mienne-ops holds release`, or the hold released in the Shopify admin
    ON_CORRECTION = "on_correction"  # the order is re-evaluated (orders/updated) and the problem is gone


RELEASE_OF = {
    HoldReason.EDIT_WINDOW: Release.AT_TIME,
    HoldReason.FRAUD_RISK: Release.BY_PERSON,
    HoldReason.ADDRESS: Release.ON_CORRECTION,
    HoldReason.HIGH_VALUE: Release.BY_PERSON,
    HoldReason.PRE_ORDER: Release.AT_TIME,
    HoldReason.MANUAL: Release.BY_PERSON,
}

#: The Shopify `FulfillmentHoldReason` that mirrors each hold in the Shopify admin (2026-04 enum).
SHOPIFY_HOLD_REASON = {
    HoldReason.EDIT_WINDOW: "OTHER",
    HoldReason.FRAUD_RISK: "HIGH_RISK_OF_FRAUD",
    HoldReason.ADDRESS: "INCORRECT_ADDRESS",
    HoldReason.HIGH_VALUE: "OTHER",
    HoldReason.PRE_ORDER: "INVENTORY_OUT_OF_STOCK",
    HoldReason.MANUAL: "OTHER",
}

# Shopify's risk levels, lowest first (`RiskAssessmentResult`; PENDING and NONE rank lowest).
RISK_LEVELS = ("NONE", "PENDING", "LOW", "MEDIUM", "HIGH")
# `OrderRiskRecommendationResult` values that mean "do not ship yet".
RISKY_RECOMMENDATIONS = {"CANCEL": "HIGH", "INVESTIGATE": "MEDIUM"}


@dataclass(frozen=True)
class HoldDecision:
    reason: HoldReason
    detail: str
    until: datetime | None = None  # for holds released by time

    @property
    def release(self) -> Release:
        return RELEASE_OF[self.reason]


@dataclass(frozen=True)
class OrderHold:
    """A hold on an order's journey, as the ledger keeps it (one row per order and reason)."""

    shopify_order_id: str
    reason: HoldReason
    detail: str
    release: Release
    until: datetime | None
    placed_at: datetime
    placed_by: str
    released_at: datetime | None = None
    released_by: str | None = None
    # Shopify fulfillment-order holds mirroring it (the merchant sees the same state in the admin);
    # None: not mirrored (an active hold) or nothing left to release there (a released one).
    shopify_hold_ids: tuple[str, ...] | None = None

    @property
    def active(self) -> bool:
        return self.released_at is None

    def age(self, now: datetime) -> timedelta:
        return now - self.placed_at


@dataclass(frozen=True)
class Address:
    """The parts of a shipping address the offline checks read."""

    address1: str | None = None
    city: str | None = None
    province_code: str | None = None
    zip: str | None = None
    country_code: str | None = None


@dataclass(frozen=True)
class OrderFacts:
    """What the hold rules look at, read from the Shopify order."""

    processed_at: datetime
    total: Decimal
    skus: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()
    address: Address | None = None
    # The highest assessment level and the recommendation of Shopify's `Order.risk` (None: not read).
    risk_level: str | None = None
    risk_recommendation: str | None = None


@dataclass(frozen=True)
class HoldPolicy:
    edit_window: timedelta = timedelta(minutes=30)
    # Hold at or above this Shopify risk level ("MEDIUM" or "HIGH"); None turns the rule off.
    fraud_hold_level: str | None = "HIGH"
    # Hold an order whose total (shop currency) is above this; None turns the rule off.
    value_threshold: Decimal | None = None
    # Pre-orders: SKU or order tag -> the date they can ship (shop's calendar day).
    pre_order_skus: Mapping[str, date] = field(default_factory=dict)
    pre_order_tags: Mapping[str, date] = field(default_factory=dict)
    shop_timezone: str = "UTC"
    check_addresses: bool = True


def order_facts(order: ShopifyOrder, risk: Mapping | None = None) -> OrderFacts:
    """The facts of a Shopify order the rules read; ``risk`` is its ``Order.risk`` as GraphQL gives
    it (``{"recommendation", "assessments": [{"riskLevel"}]}``), the order's own when not given."""
    risk = risk if risk is not None else order.risk
    shipping = order.shipping_address
    address = (
        Address(
            address1=shipping.address1,
            city=shipping.city,
            province_code=shipping.province_code,
            zip=shipping.zip,
            country_code=shipping.country_code,
        )
        if shipping
        else None
    )
    levels = [a.get("riskLevel") for a in (risk or {}).get("assessments") or []]
    return OrderFacts(
        processed_at=order.processed_at or order.created_at,
        total=order.current_total_price if order.current_total_price is not None else order.total_price,
        skus=frozenset(line.sku for line in order.line_items if line.sku and line.current_quantity > 0),
        tags=frozenset(order.tags),
        address=address,
        risk_level=max(levels, key=risk_rank) if levels else None,
        risk_recommendation=(risk or {}).get("recommendation"),
    )


def evaluate_holds(facts: OrderFacts, policy: HoldPolicy, now: datetime) -> list[HoldDecision]:
    """Every hold the rules put on this order now (an empty list: it may go to DCL)."""
    decisions = [
        _edit_window(facts, policy, now),
        _fraud_risk(facts, policy),
        _address(facts, policy),
        _high_value(facts, policy),
        _pre_order(facts, policy, now),
    ]
    return [decision for decision in decisions if decision is not None]


def _edit_window(facts: OrderFacts, policy: HoldPolicy, now: datetime) -> HoldDecision | None:
    until = facts.processed_at + policy.edit_window
    if policy.edit_window <= timedelta(0) or now >= until:
        return None
    minutes = int(policy.edit_window.total_seconds() // 60)
    return HoldDecision(HoldReason.EDIT_WINDOW, f"{minutes}-minute edit and cancel window", until)


def _fraud_risk(facts: OrderFacts, policy: HoldPolicy) -> HoldDecision | None:
    if policy.fraud_hold_level is None:
        return None
    level = risk_rank(facts.risk_level)
    recommended = risk_rank(RISKY_RECOMMENDATIONS.get(facts.risk_recommendation or ""))
    if max(level, recommended) < risk_rank(policy.fraud_hold_level):
        return None
    detail = (
        f"Shopify risk {facts.risk_level or 'unknown'}, recommendation {facts.risk_recommendation or 'none'}"
    )
    return HoldDecision(HoldReason.FRAUD_RISK, detail)


def risk_rank(level: str | None) -> int:
    return RISK_LEVELS.index(level) if level in RISK_LEVELS else 0


def _address(facts: OrderFacts, policy: HoldPolicy) -> HoldDecision | None:
    if not policy.check_addresses or facts.address is None:
        return None  # no address at all is flow A's quarantine (missing_shipping_address), not a hold
    problems = address_problems(facts.address)
    return HoldDecision(HoldReason.ADDRESS, "; ".join(problems)) if problems else None


def _high_value(facts: OrderFacts, policy: HoldPolicy) -> HoldDecision | None:
    if policy.value_threshold is None or facts.total <= policy.value_threshold:
        return None
    return HoldDecision(HoldReason.HIGH_VALUE, f"total {facts.total} above {policy.value_threshold}")


def _pre_order(facts: OrderFacts, policy: HoldPolicy, now: datetime) -> HoldDecision | None:
    dates = [
        (policy.pre_order_skus[sku], f"SKU {sku}")
        for sku in sorted(facts.skus)
        if sku in policy.pre_order_skus
    ]
    dates += [
        (policy.pre_order_tags[tag], f"tag {tag}")
        for tag in sorted(facts.tags)
        if tag in policy.pre_order_tags
    ]
    if not dates:
        return None
    ship_date, because = max(dates)  # the latest item decides: the order ships whole
    until = datetime.combine(ship_date, time(0, 0), tzinfo=ZoneInfo(policy.shop_timezone))
    if now >= until:
        return None
    return HoldDecision(HoldReason.PRE_ORDER, f"pre-order ({because}) ships from {ship_date}", until)


def overdue(holds: Iterable[OrderHold], sla_hours: Mapping[str, float], now: datetime) -> list[OrderHold]:
    """Active holds older than their reason's SLA (a reason without one, e.g. pre-order, never is)."""
    return [
        hold
        for hold in holds
        if hold.active
        and str(hold.reason) in sla_hours
        and hold.age(now) > timedelta(hours=sla_hours[str(hold.reason)])
    ]


# -- addresses ------------------------------------------------------------------------------------

REQUIRED_FIELDS = {
    "US": ("address1", "city", "province_code", "zip"),
    "CA": ("address1", "city", "province_code", "zip"),
}
DEFAULT_REQUIRED = ("address1", "city")

_US_ZIP = re.compile(r"^(\d{5})(-?\d{4})?$")
# The first digit of a ZIP code is a USPS region: the states (and territories, military codes) in it.
# Coarse on purpose — a ZIP-3 table would catch more, and wrongly hold valid orders where it is stale.
US_ZIP_REGIONS = {
    "0": {"CT", "MA", "ME", "NH", "NJ", "NY", "PR", "RI", "VT", "VI", "AE"},
    "1": {"DE", "NY", "PA"},
    "2": {"DC", "MD", "NC", "SC", "VA", "WV"},
    "3": {"AL", "FL", "GA", "MS", "TN", "AA"},
    "4": {"IN", "KY", "MI", "OH"},
    "5": {"IA", "MN", "MT", "ND", "SD", "WI", "DC"},
    "6": {"IL", "KS", "MO", "NE"},
    "7": {"AR", "LA", "OK", "TX"},
    "8": {"AZ", "CO", "ID", "NM", "NV", "UT", "WY", "TX"},
    "9": {"AK", "CA", "HI", "OR", "WA", "AS", "GU", "MP", "PW", "FM", "MH", "AP"},
}

_CA_POSTAL = re.compile(r"^([ABCEGHJ-NPRSTVXY])\d[ABCEGHJ-NPR-TV-Z] ?\d[ABCEGHJ-NPR-TV-Z]\d$")
# Canada Post: a postal code's first letter is its province or territory.
CA_POSTAL_PROVINCES = {
    "A": {"NL"},
    "B": {"NS"},
    "C": {"PE"},
    "E": {"NB"},
    "G": {"QC"},
    "H": {"QC"},
    "J": {"QC"},
    "K": {"ON"},
    "L": {"ON"},
    "M": {"ON"},
    "N": {"ON"},
    "P": {"ON"},
    "R": {"MB"},
    "S": {"SK"},
    "T": {"AB"},
    "V": {"BC"},
    "X": {"NT", "NU"},
    "Y": {"YT"},
}


def address_problems(address: Address) -> list[str]:
    """What is wrong with a shipping address, as far as can be told offline (empty: nothing)."""
    country = (address.country_code or "").upper()
    if not country:
        return ["no country"]
    missing = [
        name for name in REQUIRED_FIELDS.get(country, DEFAULT_REQUIRED) if not _text(getattr(address, name))
    ]
    problems = [f"missing {name.replace('_code', '').replace('address1', 'street')}" for name in missing]
    if country == "US" and _text(address.zip) and _text(address.province_code):
        problems += _us_zip_problems(_text(address.zip), _text(address.province_code).upper())
    if country == "CA" and _text(address.zip) and _text(address.province_code):
        problems += _ca_postal_problems(_text(address.zip).upper(), _text(address.province_code).upper())
    return problems


def _us_zip_problems(zip_code: str, state: str) -> list[str]:
    match = _US_ZIP.match(zip_code)
    if not match:
        return [f"ZIP {zip_code} is not a US ZIP code"]
    if state not in US_ZIP_REGIONS[match.group(1)[0]]:
        return [f"ZIP {zip_code} is not in {state}"]
    return []


def _ca_postal_problems(postal: str, province: str) -> list[str]:
    match = _CA_POSTAL.match(postal)
    if not match:
        return [f"postal code {postal} is not a Canadian postal code"]
    if province not in CA_POSTAL_PROVINCES[match.group(1)]:
        return [f"postal code {postal} is not in {province}"]
    return []


def _text(value: str | None) -> str:
    return (value or "").strip()


def pre_order_dates(entries: Iterable[tuple[str, str]]) -> dict[str, date]:
    """``{"SKU": "2027-01-15"}`` style rules as dates (a bad date fails at start-up, not per order)."""
    return {key: date.fromisoformat(value) for key, value in entries}
