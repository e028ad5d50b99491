"""Flow F's returns as an operator reads them: counts, ages, money pending, and what needs a person.

The `returns` asset (`flows.returns_report`) and `mienne-ops returns list` show the same report: the
returns per status, every open one with its age, deadline and money pending, the oldest parcel we
still wait for, and the money still owed per currency. Three lists feed the asset's checks:

- **stuck**: waiting for the parcel (label sent, or in transit) past the return's deadline — the
  returns sensor should have expired it; something stopped it;
- **unrefunded**: received (DCL has the goods, at least some) longer than the refund SLA ago with
  goods that arrived not yet refunded (`OrderReturn.awaiting_refund`: a partial receipt refunded for
  what arrived is not late while the rest travels) — the refund failed or waits on a person;
- **unknown RMAs**: DCL receipts no return will handle — an RMA the ledger has no return for, or
  one received after its return expired or was cancelled (open ``unknown_rma`` /
  ``receipt_after_close`` exceptions, keyed by RMA number).

Pure: the caller reads the ledger and passes the returns, the exceptions' keys and ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from mienne_ops.domain.money import cents
from mienne_ops.domain.returns import OPEN_STATUSES, WAITING_STATUSES, OrderReturn, ReturnStatus

#: The exceptions-queue reasons the return worker files a DCL receipt no return handles under.
UNMATCHED_RECEIPT_REASONS = frozenset({"unknown_rma", "receipt_after_close"})


@dataclass(frozen=True)
class ReturnRow:
    """One return as a row of the report (its age is since it was recorded)."""

    ret: OrderReturn
    age: timedelta  # since it was recorded

    @classmethod
    def of(cls, ret: OrderReturn, now: datetime) -> ReturnRow:
        return cls(ret, max(timedelta(0), now - ret.created_at) if ret.created_at else timedelta(0))

    @property
    def order(self) -> str:
        return self.ret.order_name or self.ret.shopify_order_id

    @property
    def age_hours(self) -> float:
        return round(self.age.total_seconds() / 3600, 1)

    def row(self) -> dict[str, object]:
        """The row of the report's table (and of `mienne-ops returns list`)."""
        ret = self.ret
        return {
            "return_key": ret.return_key,
            "order": self.order,
            "status": str(ret.status),
            "age_hours": self.age_hours,
            "deadline": f"{ret.deadline_at:%Y-%m-%d %H:%M}" if ret.deadline_at else "",
            "money_pending": f"{cents(ret.money_pending)} {ret.currency}",
            "rma": ret.rma_number or "",
        }


@dataclass(frozen=True)
class ReturnsReport:
    now: datetime
    counts: dict[ReturnStatus, int]  # every status, zeros included
    open: tuple[ReturnRow, ...]  # oldest first
    money_pending: dict[str, Decimal]  # per currency, open returns only
    stuck: tuple[ReturnRow, ...]  # waiting past the deadline
    unrefunded: tuple[ReturnRow, ...]  # received longer than the SLA ago, money pending
    unknown_rmas: tuple[str, ...]  # RMA numbers DCL received that no (open) return has
    refund_sla: timedelta

    @property
    def oldest_waiting(self) -> ReturnRow | None:
        """The return whose parcel we have waited for longest (awaiting it or in transit)."""
        waiting = [r for r in self.open if r.ret.status in WAITING_STATUSES]
        return max(waiting, key=lambda r: r.age, default=None)

    def money_pending_text(self) -> str:
        return ", ".join(f"{amount} {currency}" for currency, amount in self.money_pending.items()) or "0"

    def stuck_text(self) -> str:
        return "; ".join(
            f"{r.order} ({r.ret.return_key}) {r.ret.status} since deadline "
            f"{r.ret.deadline_at:%Y-%m-%d %H:%M} UTC"
            for r in self.stuck
            if r.ret.deadline_at
        )

    def unrefunded_text(self) -> str:
        return "; ".join(
            f"{r.order} ({r.ret.return_key}) received {r.ret.received_at:%Y-%m-%d %H:%M} UTC, "
            f"{cents(r.ret.money_pending)} {r.ret.currency} pending"
            for r in self.unrefunded
            if r.ret.received_at
        )


def returns_report(
    returns: Iterable[OrderReturn],
    now: datetime,
    *,
    refund_sla: timedelta,
    unknown_rmas: Iterable[str] = (),
) -> ReturnsReport:
    """The report of ``returns`` at ``now`` (``unknown_rmas``: the RMA numbers of open exceptions with
    one of `UNMATCHED_RECEIPT_REASONS`)."""
    every = list(returns)
    counts = {status: 0 for status in ReturnStatus}
    for ret in every:
        counts[ret.status] += 1
    open_rows = sorted(
        (ReturnRow.of(ret, now) for ret in every if ret.status in OPEN_STATUSES),
        key=lambda r: (-r.age, r.ret.id),
    )
    money: dict[str, Decimal] = {}
    for row in open_rows:
        money[row.ret.currency] = cents(money.get(row.ret.currency, Decimal("0")) + row.ret.money_pending)
    stuck = tuple(
        r
        for r in open_rows
        if r.ret.status in WAITING_STATUSES and r.ret.deadline_at is not None and r.ret.deadline_at < now
    )
    unrefunded = tuple(
        r
        for r in open_rows
        if r.ret.status == ReturnStatus.RECEIVED
        and r.ret.received_at is not None
        and now - r.ret.received_at > refund_sla
        and r.ret.awaiting_refund
    )
    return ReturnsReport(
        now=now,
        counts=counts,
        open=tuple(open_rows),
        money_pending=dict(sorted(money.items())),
        stuck=stuck,
        unrefunded=unrefunded,
        unknown_rmas=tuple(sorted(set(unknown_rmas))),
        refund_sla=refund_sla,
    )
