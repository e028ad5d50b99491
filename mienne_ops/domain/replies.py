"""What flow F tells the customer and the support team, as plain text (pure, so it is tested as text).

Public replies say what was done and what happens next, never internal ids; internal notes carry the
record ids and the reasons a person needs to follow up. Neither repeats the customer's address or
payment details.
"""

from __future__ import annotations

from decimal import Decimal

from mienne_ops.domain.refund_policy import Decision, Verdict
from mienne_ops.domain.service_requests import RequestKind

MONEY_ARRIVES = "Refunds usually reach your account within 5–10 business days, depending on your bank."


def cancelled_reply(order_name: str, refunded: Decimal, currency: str) -> str:
    refund = f" We have refunded {refunded:.2f} {currency} to your original payment method. {MONEY_ARRIVES}"
    return f"Your order {order_name} is cancelled and will not ship.{refund if refunded > 0 else ''}"


def refunded_reply(order_name: str, amount: Decimal, currency: str) -> str:
    return f"We have refunded {amount:.2f} {currency} for order {order_name}. {MONEY_ARRIVES}"


def subscription_reply(action: str) -> str:
    return {
        "cancel": "Your subscription is cancelled: no further charges will be made.",
        "skip": "Your next subscription delivery is skipped.",
    }.get(action, "")


def refused_reply(kind: RequestKind, order_name: str, decision: Decision) -> str:
    reason = "; ".join(decision.reasons)
    if kind == RequestKind.CANCEL and decision.code in ("already_shipped", "picking_started"):
        return (
            f"We could not cancel order {order_name}: {reason}. Once it arrives you can send it back "
            "for a refund — reply to this message and we will start a return for you."
        )
    return f"We could not complete your request for order {order_name}: {reason}."


def waiting_reply(order_name: str) -> str:
    return (
        f"Thanks — your refund request for order {order_name} is with our team for a quick review. "
        "We will write again as soon as it is done."
    )


def note_text(request_key: str, decision: Decision | None, facts: dict[str, object]) -> str:
    """The internal note: what was decided, why, and every record id."""
    lines = [f"mienne-ops request {request_key}"]
    if decision is not None and decision.verdict != Verdict.PROCEED:
        lines.append(
            f"{decision.verdict}: {'; '.join(decision.reasons)}"
            + (f" [{decision.code}]" if decision.code else "")
        )
    lines += [f"{name}: {value}" for name, value in sorted(facts.items()) if value not in (None, "")]
    return "\n".join(lines)
