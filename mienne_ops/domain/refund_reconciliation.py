"""The daily refund reconciliation: every cent refunded to a customer is booked in NetSuite, once.

Pure: it takes one day's refunds as each system reports them and matches them by the key NetSuite
carries (``SHOPIFY-REFUND-<id>`` for a Shopify refund, ``MIENNE-REFUND-<request>`` for a Recharge
refund; an invoiced order's customer refund adds ``-PAY``), not by date alone, because NetSuite's
transaction date is the account's local day and a refund near midnight lands on another day there.
Each difference is a problem naming both numbers: a refund not booked, booked for another amount, or
a NetSuite refund no customer refund explains.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from mienne_ops.domain.money import ZERO, cents

CUSTOMER_REFUND_SUFFIX = "-PAY"


@dataclass(frozen=True)
class CustomerRefund:
    """Money returned to a customer, as Shopify or Recharge reports it."""

    system: str  # "shopify" | "recharge"
    reference: str  # the Shopify order name or the Recharge charge id
    booking_keys: tuple[str, ...]  # the NetSuite externalIds that book it (one for Shopify)
    total: Decimal


@dataclass(frozen=True)
class BookedRefund:
    external_id: str
    record_type: str  # CashRfnd | CustRfnd
    total: Decimal
    tran_date: date


@dataclass(frozen=True)
class RefundProblem:
    key: str
    reason: str
    message: str


@dataclass
class RefundDay:
    day: date
    refunded: Decimal = ZERO
    booked: Decimal = ZERO
    waiting: int = 0  # refunds whose order is not billed yet: booked when it is (not a difference)
    problems: list[RefundProblem] = field(default_factory=list)


def booking_key(external_id: str) -> str:
    return external_id.removesuffix(CUSTOMER_REFUND_SUFFIX)


def reconcile_refunds(
    day: date,
    refunds: list[CustomerRefund],
    booked: list[BookedRefund],
    waiting_for_billing: frozenset[str] = frozenset(),
) -> RefundDay:
    """Match ``refunds`` (the day's customer refunds) with ``booked`` (NetSuite refunds of the days
    around it); a NetSuite refund dated ``day`` that matches nothing is a problem too. Refunds whose
    booking key is in ``waiting_for_billing`` wait for flow C to bill their order."""
    by_key: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for record in booked:
        by_key[booking_key(record.external_id)] += record.total
    result = RefundDay(day)
    explained: set[str] = set()
    for refund in refunds:
        keys = [booking_key(k) for k in refund.booking_keys]
        explained.update(keys)
        amount = cents(sum((by_key[k] for k in keys if k in by_key), ZERO))
        result.refunded += refund.total
        result.booked += amount
        if not any(k in by_key for k in keys) and set(keys) & waiting_for_billing:
            result.waiting += 1
        elif not any(k in by_key for k in keys):
            result.problems.append(
                RefundProblem(
                    f"{refund.system}:{refund.reference}",
                    "refund_not_booked",
                    f"{refund.system} refunded {refund.total} on {refund.reference}; "
                    "NetSuite has no refund for it",
                )
            )
        elif amount != refund.total:
            result.problems.append(
                RefundProblem(
                    f"{refund.system}:{refund.reference}",
                    "refund_amount_differs",
                    f"{refund.system} refunded {refund.total} on {refund.reference}; "
                    f"NetSuite booked {amount}",
                )
            )
    for record in booked:
        if (
            record.tran_date == day
            and booking_key(record.external_id) not in explained
            and _ours(record.external_id)
        ):
            result.problems.append(
                RefundProblem(
                    f"netsuite:{record.external_id}",
                    "booked_without_refund",
                    f"NetSuite {record.record_type} {record.external_id} books {record.total}; "
                    "no Shopify or Recharge refund of that day explains it",
                )
            )
    result.refunded, result.booked = cents(result.refunded), cents(result.booked)
    return result


def _ours(external_id: str) -> bool:
    """Refunds mienne-ops books (others — entered by hand in NetSuite — are not ours to judge)."""
    return external_id.startswith(("SHOPIFY-REFUND-", "MIENNE-REFUND-"))
