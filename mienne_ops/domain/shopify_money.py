"""The money side of a Shopify order: transactions, refunds and Shopify's suggested refund.

Flow F (cancellations and refunds) and the daily refund reconciliation read these, parsed from the
GraphQL documents `order_money`, `suggested_refund` and `refund_create`
(``integrations/graphql/``). Money is shop-currency `Decimal`; ids are the numeric strings the rest
of the project uses (`id`, `customer_id`) plus the GIDs that Shopify's mutations take (`gid`,
`line_item_gid`, `parent_gid`).

Amounts (Shopify's definitions, `SuggestedRefund` and `Refund` in the 2026-04 schema): a refunded
line's `subtotal` is what its units sold for after discounts, `total_tax` their tax; a suggested
refund's `amount` is what goes back to the customer (subtotal + shipping, + tax unless prices
include it) and its `transactions` say from which payments (sale/capture parents).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from mienne_ops.domain.money import to_decimal


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


def _money(bag: dict[str, Any] | None) -> Decimal:
    """A MoneyBag's shop amount (``{"shopMoney": {"amount"}}``), 0 when absent."""
    return to_decimal(((bag or {}).get("shopMoney") or {}).get("amount"))


def _legacy(gid: str | None) -> str | None:
    return gid.rsplit("/", 1)[-1].split("?")[0] if gid else None


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


class OrderTransaction(_Model):
    gid: str
    kind: str  # SALE | CAPTURE | AUTHORIZATION | REFUND | VOID | ...
    status: str  # SUCCESS | FAILURE | PENDING | ...
    gateway: str
    amount: Decimal
    parent_gid: str | None = None
    processed_at: datetime | None = None

    @classmethod
    def from_graphql(cls, node: dict[str, Any]) -> OrderTransaction:
        return cls(
            gid=node["id"],
            kind=node["kind"],
            status=node["status"],
            gateway=node.get("gateway") or "",
            amount=_money(node.get("amountSet")),
            parent_gid=(node.get("parentTransaction") or {}).get("id"),
            processed_at=_when(node.get("processedAt")),
        )


class RefundedLine(_Model):
    line_item_gid: str
    sku: str | None = None
    quantity: int
    subtotal: Decimal
    total_tax: Decimal

    @classmethod
    def from_graphql(cls, node: dict[str, Any]) -> RefundedLine:
        line = node.get("lineItem") or {}
        return cls(
            line_item_gid=line["id"],
            sku=line.get("sku"),
            quantity=int(node["quantity"]),
            subtotal=_money(node.get("subtotalSet")),
            total_tax=_money(node.get("totalTaxSet")),
        )


class OrderRefund(_Model):
    gid: str
    created_at: datetime
    note: str | None = None
    total: Decimal  # money given back (its transactions)
    lines: list[RefundedLine]
    shipping: Decimal  # shipping refunded, before tax
    transactions: list[OrderTransaction]

    @classmethod
    def from_graphql(cls, node: dict[str, Any]) -> OrderRefund:
        created = _when(node.get("createdAt"))
        assert created is not None, "a refund always has its createdAt"
        return cls(
            gid=node["id"],
            created_at=created,
            note=node.get("note"),
            total=_money(node.get("totalRefundedSet")),
            lines=[
                RefundedLine.from_graphql(n) for n in (node.get("refundLineItems") or {}).get("nodes") or []
            ],
            shipping=sum(
                (
                    _money(n.get("subtotalAmountSet"))
                    for n in (node.get("refundShippingLines") or {}).get("nodes") or []
                ),
                Decimal("0.00"),
            ),
            transactions=[
                OrderTransaction.from_graphql(n) for n in (node.get("transactions") or {}).get("nodes") or []
            ],
        )


class MoneyLine(_Model):
    gid: str
    sku: str | None = None
    quantity: int  # as ordered
    refundable_quantity: int  # ordered − refunded − edited away
    unfulfilled_quantity: int
    unit_price: Decimal  # before discounts

    @classmethod
    def from_graphql(cls, node: dict[str, Any]) -> MoneyLine:
        return cls(
            gid=node["id"],
            sku=node.get("sku"),
            quantity=int(node["quantity"]),
            refundable_quantity=int(node["refundableQuantity"]),
            unfulfilled_quantity=int(node["unfulfilledQuantity"]),
            unit_price=_money(node.get("originalUnitPriceSet")),
        )


class OrderMoney(_Model):
    id: str  # numeric, as the rest of the project names orders
    gid: str
    name: str
    currency: str
    cancelled_at: datetime | None = None
    display_financial_status: str
    display_fulfillment_status: str
    customer_id: str | None = None
    customer_email: str | None = None
    email: str | None = None
    tags: list[str]
    processed_at: datetime
    total: Decimal
    total_refunded: Decimal
    lines: list[MoneyLine]
    transactions: list[OrderTransaction]
    refunds: list[OrderRefund]

    @classmethod
    def from_graphql(cls, node: dict[str, Any]) -> OrderMoney:
        """From an `OrderMoneyFields` node whose lists the client has completed."""
        customer = node.get("customer") or {}
        processed = _when(node.get("processedAt") or node.get("createdAt"))
        assert processed is not None, "an order always has its processedAt"
        return cls(
            id=str(node.get("legacyResourceId") or _legacy(node["id"])),
            gid=node["id"],
            name=node["name"],
            currency=node.get("currencyCode") or "USD",
            cancelled_at=_when(node.get("cancelledAt")),
            display_financial_status=node.get("displayFinancialStatus") or "PENDING",
            display_fulfillment_status=node.get("displayFulfillmentStatus") or "UNFULFILLED",
            customer_id=str(customer.get("legacyResourceId") or _legacy(customer.get("id")))
            if customer
            else None,
            customer_email=(customer.get("defaultEmailAddress") or {}).get("emailAddress"),
            email=node.get("email"),
            tags=list(node.get("tags") or []),
            processed_at=processed,
            total=_money(node.get("totalPriceSet")),
            total_refunded=_money(node.get("totalRefundedSet")),
            lines=[MoneyLine.from_graphql(n) for n in (node.get("lineItems") or {}).get("nodes") or []],
            transactions=[OrderTransaction.from_graphql(n) for n in node.get("transactions") or []],
            refunds=[OrderRefund.from_graphql(n) for n in node.get("refunds") or []],
        )

    def line(self, gid: str) -> MoneyLine | None:
        return next((line for line in self.lines if line.gid == gid), None)


class SuggestedTransaction(_Model):
    parent_gid: str | None = None
    gateway: str
    amount: Decimal
    kind: str  # SUGGESTED_REFUND as suggested; create_refund sends each as a REFUND

    @classmethod
    def from_graphql(cls, node: dict[str, Any]) -> SuggestedTransaction:
        return cls(
            parent_gid=(node.get("parentTransaction") or {}).get("id"),
            gateway=node.get("gateway") or "",
            amount=_money(node.get("amountSet")),
            kind=node.get("kind") or "SUGGESTED_REFUND",
        )


class SuggestedRefund(_Model):
    amount: Decimal  # what goes back to the customer
    subtotal: Decimal  # the lines, after discounts, before tax
    total_tax: Decimal  # lines' and shipping's tax
    shipping: Decimal  # shipping refunded, before tax
    maximum_shipping_refundable: Decimal
    lines: list[RefundedLine]
    transactions: list[SuggestedTransaction]

    @classmethod
    def from_graphql(cls, node: dict[str, Any]) -> SuggestedRefund:
        shipping = node.get("shipping") or {}
        return cls(
            amount=_money(node.get("amountSet")),
            subtotal=_money(node.get("subtotalSet")),
            total_tax=_money(node.get("totalTaxSet")),
            shipping=_money(shipping.get("amountSet")),
            maximum_shipping_refundable=_money(shipping.get("maximumRefundableSet")),
            lines=[RefundedLine.from_graphql(n) for n in node.get("refundLineItems") or []],
            transactions=[
                SuggestedTransaction.from_graphql(n) for n in node.get("suggestedTransactions") or []
            ],
        )


PAYMENT_KINDS = ("SALE", "CAPTURE")


def refundable_by_payment(order: OrderMoney) -> list[tuple[OrderTransaction, Decimal]]:
    """(sale or capture, what it has left to refund) for each successful payment, oldest first."""
    refunded: dict[str, Decimal] = {}
    for tx in order.transactions:
        if tx.kind == "REFUND" and tx.status == "SUCCESS" and tx.parent_gid:
            refunded[tx.parent_gid] = refunded.get(tx.parent_gid, Decimal("0")) + tx.amount
    return [
        (tx, tx.amount - refunded.get(tx.gid, Decimal("0")))
        for tx in order.transactions
        if tx.kind in PAYMENT_KINDS and tx.status == "SUCCESS"
    ]


def allocate_refund(order: OrderMoney, amount: Decimal) -> list[SuggestedTransaction]:
    """Refund transactions for a plain ``amount`` (a refund not tied to lines, which
    ``suggestedRefund`` cannot price): spread over the payments oldest first, each up to what it has
    left, as Shopify's suggested transactions are. Raises ValueError when the payments hold less."""
    left, chosen = amount, []
    for payment, available in refundable_by_payment(order):
        take = min(left, available)
        if take > 0:
            chosen.append(
                SuggestedTransaction(
                    parent_gid=payment.gid, gateway=payment.gateway, amount=take, kind="REFUND"
                )
            )
            left -= take
    if left > 0:
        raise ValueError(f"{order.name}: only {amount - left} of {amount} is left to refund")
    return chosen
