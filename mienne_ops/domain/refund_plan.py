"""What a refund request means on a given order: which line items, how many, whether shipping.

Pure: it takes the order as Shopify reports it (`OrderMoney`: lines with their refundable
quantities, money left to refund) and the request, and answers the Shopify line items and quantities
to ask `suggestedRefund` about — or why the request cannot be met (an SKU not on the order, more
units than are still refundable). The money itself is Shopify's answer, never computed here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from mienne_ops.domain.money import ZERO, cents
from mienne_ops.domain.service_requests import RequestDetails
from mienne_ops.domain.shopify_money import OrderMoney, SuggestedTransaction


class RefundPlanError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class RefundPlan:
    lines: tuple[tuple[str, int], ...]  # (Shopify line item gid, quantity)
    refund_shipping: bool


def plan_refund(order: OrderMoney, details: RequestDetails) -> RefundPlan:
    """The lines and shipping to refund; ``full`` takes every unit still refundable and shipping."""
    if details.full:
        lines = tuple(
            (line.gid, line.refundable_quantity) for line in order.lines if line.refundable_quantity > 0
        )
        return RefundPlan(lines=lines, refund_shipping=True)
    wanted: dict[str, int] = defaultdict(int)
    for requested in details.lines:
        wanted[requested.sku] += requested.quantity
    chosen: list[tuple[str, int]] = []
    for sku, quantity in wanted.items():
        chosen.extend(_take(order, sku, quantity))
    return RefundPlan(lines=tuple(chosen), refund_shipping=details.shipping)


def _take(order: OrderMoney, sku: str, quantity: int) -> list[tuple[str, int]]:
    """``quantity`` units of ``sku`` from the order's lines carrying it (an SKU may be on several)."""
    lines = [line for line in order.lines if line.sku == sku]
    if not lines:
        raise RefundPlanError("unknown_sku", f"{sku} is not on order {order.name}")
    refundable = sum(line.refundable_quantity for line in lines)
    if quantity > refundable:
        raise RefundPlanError(
            "above_refundable",
            f"{quantity} × {sku} asked, but only {refundable} can still be refunded on {order.name}",
        )
    taken: list[tuple[str, int]] = []
    for line in lines:
        if quantity == 0:
            break
        units = min(quantity, line.refundable_quantity)
        if units:
            taken.append((line.gid, units))
            quantity -= units
    return taken


def money_left(order: OrderMoney) -> Decimal:
    """What can still be refunded on the order (received minus refunded, never negative)."""
    return max(ZERO, cents(order.total - order.total_refunded))


def allocate(transactions: list[SuggestedTransaction], amount: Decimal) -> list[SuggestedTransaction]:
    """Refund ``amount`` from Shopify's suggested transactions, in their order, each up to what it
    suggests (an amount below the suggestion — a partial goodwill refund — takes from the first)."""
    remaining, chosen = cents(amount), []
    for suggestion in transactions:
        if remaining <= 0:
            break
        share = min(remaining, suggestion.amount)
        if share > 0:
            chosen.append(suggestion.model_copy(update={"amount": share}))
            remaining -= share
    if remaining > 0:
        raise RefundPlanError("above_refundable", f"{amount} is more than the payments can refund")
    return chosen
