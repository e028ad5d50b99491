"""Book a refund in NetSuite the way the order was billed: one place for flow F's requests and returns.

A cash sale is refunded by a **cash refund**; an invoice by a **credit memo** paid out by a **customer
refund**. Either is transformed from its source — the cash sale / invoice itself, or a return
authorization (a return's RMA, or the RMA the `return_authorization` refund route makes) — with a
body that books exactly what the shop refunded (`domain.refund_books`). Every record carries an
externalId, so booking the same refund twice finds the first record instead of making a second.
"""

from __future__ import annotations

from dataclasses import dataclass

from mienne_ops.domain.refund_books import RefundBreakdown, cash_refund_body
from mienne_ops.domain.refund_reconciliation import CUSTOMER_REFUND_SUFFIX
from mienne_ops.integrations.netsuite import NetSuiteClient


@dataclass(frozen=True)
class RefundBooks:
    """How NetSuite books a refund (from `BusinessRules`)."""

    tax_item_id: int
    shipping_item_id: int | None = None  # None: refunded shipping in the shippingCost field
    shipping_cost_field: str = "shippingCost"
    adjustment_item_id: int | None = None  # books an amount that is not its lines' worth
    payment_method_id: str | None = None  # of customer refunds (invoiced orders)
    # "cash_sale": refund records transformed from the cash sale / invoice; "return_authorization":
    # from an approved RMA on the sales order (accounts where NetSuite refuses the direct transforms).
    source: str = "cash_sale"


def shopify_booking_key(refund_gid: str) -> str:
    """NetSuite's externalId for the booking of a Shopify refund (the daily reconciliation matches
    Shopify's refunds to NetSuite's records by it)."""
    return f"SHOPIFY-REFUND-{refund_gid.rsplit('/', 1)[-1]}"


@dataclass(frozen=True)
class BookedRefund:
    record_id: str  # the cash refund, or the customer refund paying out the credit memo
    record_type: str  # "cashRefund" | "customerRefund"
    credit_memo_id: str | None = None


def source_lines(netsuite: NetSuiteClient, source: tuple[str, str]) -> list[dict]:
    """A record's item lines as NetSuite's REST record shows them (what a transform body names)."""
    return netsuite.get(source[0], source[1], expand=True).get("item", {}).get("items", [])


def refund_body(
    netsuite: NetSuiteClient,
    books: RefundBooks,
    source: tuple[str, str],
    breakdown: RefundBreakdown,
    external_id: str,
) -> dict:
    """The transform body over the source record's own lines."""
    return cash_refund_body(
        breakdown,
        source_lines=source_lines(netsuite, source),
        tax_item_id=books.tax_item_id,
        shipping_item_id=books.shipping_item_id,
        shipping_cost_field=books.shipping_cost_field,
        external_id=external_id,
        adjustment_item_id=books.adjustment_item_id,
    )


def book_refund(
    netsuite: NetSuiteClient,
    books: RefundBooks,
    *,
    source: tuple[str, str],
    breakdown: RefundBreakdown,
    external_id: str,
    invoiced: bool,
    sales_order_id: str,
) -> BookedRefund:
    """A cash refund (cash sale) or a credit memo + customer refund (invoice) for ``breakdown``."""
    body = refund_body(netsuite, books, source, breakdown, external_id)
    if not invoiced:
        record_id = netsuite.cash_refund(source=source, external_id=external_id, body=body)
        return BookedRefund(record_id, "cashRefund")
    memo_id = netsuite.credit_memo(source=source, external_id=external_id, body=body)
    customer = netsuite.get("salesOrder", sales_order_id)["entity"]["id"]
    record_id = netsuite.customer_refund(
        external_id=f"{external_id}{CUSTOMER_REFUND_SUFFIX}",
        customer_id=str(customer),
        credit_memo_id=memo_id,
        amount=breakdown.total,
        payment_method_id=books.payment_method_id,
    )
    return BookedRefund(record_id, "customerRefund", memo_id)
