"""Flow F's requests: a customer or an operator asks to cancel an order or to refund (part of) it.

A request arrives from a support ticket (Gorgias or Zendesk), from Shopify (a cancellation or a
refund made in the Shopify admin, which only needs its books), or from an operator (CLI, Dagster UI).
Each carries one **idempotency key** chosen by where it came from — the ticket, the Shopify refund,
the operator's command — so the same ticket delivered twice, or a job re-run, is one request and
moves money once. Its status is the approval queue: a refund the policy wants a person to look at
waits as ``awaiting_approval`` until approved or denied.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mienne_ops.domain.money import cents

# Every Shopify refund flow F makes (requests and returns) carries this note prefix and its key: the
# intake leaves our own refunds alone, and a re-run finds the refund its crashed run made.
OUR_REFUND_NOTE = "mienne-ops "


class RequestKind(StrEnum):
    CANCEL = "cancel"
    REFUND = "refund"
    RETURN = "return"  # goods come back: a return (ledger ``returns``) carries it on after it opens


class RequestSource(StrEnum):
    GORGIAS = "gorgias"
    ZENDESK = "zendesk"
    SHOPIFY = "shopify"  # cancelled or refunded in Shopify (only the other systems follow), or a
    # customer's return request made in Shopify
    OPERATOR = "operator"  # the CLI or a Dagster job launched from the UI


class RequestStatus(StrEnum):
    RECEIVED = "received"  # recorded, not yet carried out
    AWAITING_APPROVAL = "awaiting_approval"  # the policy wants a person to decide
    APPROVED = "approved"  # a person approved; carried out at the next run
    IN_PROGRESS = "in_progress"  # a run is carrying it out (a lease: a dead run's is taken over)
    AWAITING_BOOKS = "awaiting_books"  # money moved; NetSuite waits for the order to be billed
    DONE = "done"
    REFUSED = "refused"  # the policy said no (too late, outside the window); the ticket was told why
    DENIED = "denied"  # a person said no
    FAILED = "failed"  # bad input or a permanent error: the reason is in the exceptions queue


#: Statuses a run still has work for.
OPEN_STATUSES = frozenset(
    {RequestStatus.RECEIVED, RequestStatus.APPROVED, RequestStatus.AWAITING_BOOKS, RequestStatus.IN_PROGRESS}
)
#: Statuses a run may take a request from (an in-progress one only once its lease ran out).
CLAIMABLE_STATUSES = frozenset({RequestStatus.RECEIVED, RequestStatus.APPROVED, RequestStatus.AWAITING_BOOKS})
FINAL_STATUSES = frozenset(
    {RequestStatus.DONE, RequestStatus.REFUSED, RequestStatus.DENIED, RequestStatus.FAILED}
)


class SubscriptionAction(StrEnum):
    NONE = "none"
    CANCEL = "cancel"  # cancel the Recharge subscription the order came from
    SKIP = "skip"  # skip its next charge


class RequestedLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)

    @classmethod
    def parse(cls, text: str) -> RequestedLine:
        """``SKU:QTY`` (``SKU`` alone is one unit), as the CLI takes it."""
        sku, _, quantity = text.strip().rpartition(":") if ":" in text else (text.strip(), "", "1")
        if not sku or not quantity.isdigit():
            raise ValueError(f"a line is SKU:QUANTITY with a whole quantity, not {text!r}")
        return cls(sku=sku, quantity=int(quantity))


class RequestDetails(BaseModel):
    """What was asked. A refund names lines, shipping and/or an amount, or asks for everything."""

    lines: tuple[RequestedLine, ...] = ()
    shipping: bool = False
    amount: Decimal | None = None  # the money to return; None: what the lines and shipping are worth
    currency: str | None = None  # the currency the requester meant (checked against the order's)
    full: bool = False  # everything still refundable (a ticket asking for its money back)
    reason: str = "customer"
    subscription: SubscriptionAction = SubscriptionAction.NONE
    note: str | None = None

    @field_validator("amount")
    @classmethod
    def _positive_cents(cls, value: Decimal | None) -> Decimal | None:
        if value is None:
            return None
        if value <= 0 or value != cents(value):
            raise ValueError("an amount is positive and in whole cents")
        return value

    def asks_for_money(self) -> bool:
        return self.full or self.shipping or bool(self.lines) or self.amount is not None


@dataclass(frozen=True)
class TicketRef:
    """The support ticket a request came from (and is answered on)."""

    system: str  # "gorgias" | "zendesk"
    id: str


@dataclass
class ServiceRequest:
    """One row of the ledger's ``service_requests``."""

    id: int
    request_key: str
    kind: RequestKind
    source: RequestSource
    details: RequestDetails
    status: RequestStatus
    ticket: TicketRef | None = None
    shopify_order_id: str | None = None
    order_name: str | None = None
    requester: str | None = None
    decision: list[str] = field(default_factory=list)
    outcome: dict[str, Any] = field(default_factory=dict)
    decided_by: str | None = None
    decided_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def approved(self) -> bool:
        """A person approved it (the policy does not ask again)."""
        return self.decided_by is not None and "approved" in self.outcome.get("approvals", [])

    @property
    def label(self) -> str:
        return f"{self.kind} {self.order_name or self.shopify_order_id or '?'} ({self.request_key})"


def operator_request_key(kind: RequestKind, order: str, details: RequestDetails, given: str | None) -> str:
    """An operator's request key: the one they give, or one derived from what they asked, so the same
    command typed twice (or a re-launched job) is one request. A second, deliberate identical refund
    needs its own ``--key``."""
    if given:
        return f"operator:{given}"
    digest = hashlib.sha256(f"{kind}|{order}|{details.model_dump_json()}".encode()).hexdigest()[:20]
    return f"operator:{kind}:{digest}"


def ticket_request_key(ticket: TicketRef, kind: RequestKind) -> str:
    """One request of each kind per ticket: the ticket delivered twice (or re-tagged) asks once."""
    return f"{ticket.system}:{ticket.id}:{kind}"


ORDER_NAME = re.compile(r"#\s?(\d{3,})\b")


def order_names_in(text: str) -> list[str]:
    """Order names (``#1001``) a customer wrote, in order of appearance, without repeats."""
    seen: list[str] = []
    for number in ORDER_NAME.findall(text or ""):
        name = f"#{number}"
        if name not in seen:
            seen.append(name)
    return seen
