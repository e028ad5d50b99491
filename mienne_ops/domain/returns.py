"""Flow F's returns: goods on their way back, from the label to the refund, as the ledger keeps them.

A return opens from a request (`domain.service_requests`, kind ``return``) once the policy accepts it
and lives for days or weeks: the label is sent, the parcel travels, DCL receives it (maybe in parts),
the money goes back for what arrived, and every system closes its record. Its **status** says where it
is; its **outcome** holds every id the steps made (NetSuite RMA, DCL RMA, Shopify return, StateSet
return, receipts booked, refunds made), so a run that stopped halfway — or a redeploy in the middle of
a two-week wait — continues from the step it reached and never makes a record twice.

```
opening ─> awaiting_parcel ─> in_transit ─> received ─> completed
   │              │                │            └─(a person: damaged, wrong item)
   │              └────────────────┴─> expired (deadline passed, nothing arrived)
   └─> failed (a label DCL refused, a record no system took: an exception says why)
cancelled: an operator withdrew it before anything arrived.
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ReturnStatus(StrEnum):
    OPENING = "opening"  # accepted; its records and label are being made
    AWAITING_PARCEL = "awaiting_parcel"  # the customer has the label (or the instructions)
    IN_TRANSIT = "in_transit"  # the carrier scanned the label
    RECEIVED = "received"  # DCL received some or all of it; refunds follow what arrived
    COMPLETED = "completed"  # everything that came back is refunded and every record is closed
    EXPIRED = "expired"  # nothing arrived by the deadline: records closed, the customer told
    CANCELLED = "cancelled"  # withdrawn by an operator before anything arrived
    FAILED = "failed"  # could not be opened (the reason is in the exceptions queue)


#: Returns still waiting for the parcel (reminders and the deadline apply).
WAITING_STATUSES = frozenset({ReturnStatus.AWAITING_PARCEL, ReturnStatus.IN_TRANSIT})
#: Returns a run still has work for.
OPEN_STATUSES = frozenset({ReturnStatus.OPENING, ReturnStatus.RECEIVED, *WAITING_STATUSES})
FINAL_STATUSES = frozenset(
    {ReturnStatus.COMPLETED, ReturnStatus.EXPIRED, ReturnStatus.CANCELLED, ReturnStatus.FAILED}
)


class ReturnLine(BaseModel):
    """One order line coming back: what was asked and where it lives in each system."""

    model_config = ConfigDict(frozen=True)

    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)
    line_item_id: str | None = None  # Shopify LineItem gid
    fulfillment_line_item_id: str | None = None  # Shopify FulfillmentLineItem gid (returnCreate's key)
    unit_price: Decimal = Decimal("0")


@dataclass
class OrderReturn:
    """One row of the ledger's ``returns``."""

    id: int
    return_key: str  # the request's idempotency key: one return per request
    request_id: int | None
    shopify_order_id: str
    order_name: str | None
    status: ReturnStatus
    lines: tuple[ReturnLine, ...]
    currency: str
    value: Decimal  # what refunding the lines gives back, tax included (the money pending until refunded)
    refunded: Decimal = Decimal("0")
    country: str | None = None
    rma_number: str | None = None  # NetSuite's RMA tranId, DCL's rma_number
    instant: bool = False  # refunded at the carrier's first scan, before the goods arrive
    label_sent_at: datetime | None = None
    deadline_at: datetime | None = None
    reminders_sent: int = 0
    received_at: datetime | None = None
    refunded_at: datetime | None = None
    outcome: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def label(self) -> str:
        return f"return {self.order_name or self.shopify_order_id} ({self.return_key})"

    @property
    def expected(self) -> dict[str, int]:
        """Units expected back, per SKU."""
        units: dict[str, int] = {}
        for line in self.lines:
            units[line.sku] = units.get(line.sku, 0) + line.quantity
        return units

    @property
    def refunded_units(self) -> dict[str, int]:
        """Units already refunded, per SKU (the outcome's refunds, each noted when it was made)."""
        units: dict[str, int] = {}
        for refund in self.outcome.get("refunds", []):
            for sku, quantity in refund.get("units", {}).items():
                units[sku] = units.get(sku, 0) + int(quantity)
        return units

    @property
    def awaiting_refund(self) -> bool:
        """Goods that arrived in good condition are not all refunded yet (a partial receipt whose rest
        is still on its way is not waiting; damaged goods wait for a person, in the exceptions queue).
        Rows without the worker's note of what arrived fall back to money still pending."""
        received = self.outcome.get("received_units")
        if received is None:
            return self.money_pending > 0
        refunded = self.refunded_units
        return any(int(units) > refunded.get(sku, 0) for sku, units in received.items())

    @property
    def booked_receipts(self) -> set[str]:
        """DCL receipts NetSuite has an item receipt for."""
        return set(self.outcome.get("receipts_booked", []))

    @property
    def money_pending(self) -> Decimal:
        return max(Decimal("0"), self.value - self.refunded)


def return_external_id(ret: OrderReturn) -> str:
    """NetSuite's key for the return authorization (also names its item receipts and refunds)."""
    return f"MIENNE-RETURN-{ret.id}"


def receipt_external_id(rma_number: str, receipt_id: str) -> str:
    """NetSuite's key for the item receipt of one DCL receipt: a receipt is booked once."""
    return f"DCL-RMA-{rma_number}-{receipt_id}"[:200]
