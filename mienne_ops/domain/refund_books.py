"""The books side of a refund: NetSuite transform bodies that refund exactly what the shop refunded.

A refund decided in Shopify or Recharge (`RefundBreakdown`: refunded lines with their refunded
subtotal, shipping, tax and the total) becomes one NetSuite record whose total equals the shop's to
the cent, booked the way flow A booked the sale (`domain.orders`):

- refunded product lines name their **source** line (``orderLine``) with an explicit quantity,
  ``rate`` and ``amount`` (``rate × quantity == amount``: NetSuite recomputes the amount from the
  rate); every source line not refunded is sent with ``itemReceive: false``, because a transform
  takes unnamed lines with their defaults (netsuite.md §9 body rules);
- tax on the tax item's line (the source's tax line when it has one, else an added line);
- shipping on the header field flow A uses (``shippingCost``), always sent (``0`` when nothing is
  refunded) since a transform would otherwise default it to the source's whole shipping; or, when
  the account's refund forms carry no shipping cost (`BusinessRules.refund_shipping_item_id` set), on
  an added line of that item;
- the rest — a refund of an amount without lines, and the sub-cent remainders of rates (10.00 over
  three units is 3 × 3.33 + 0.01) — on one line of the refund adjustment item
  (`BusinessRules.refund_adjustment_item_id`).

The same body serves both routes of `BusinessRules.netsuite_refund_source`: ``"cash_sale"``
transforms the cash sale (or invoice) itself into the cash refund (or credit memo);
``"return_authorization"`` first transforms the sales order (or cash sale / invoice) into an approved
return authorization with `return_authorization_body`, then that RMA into the cash refund / credit
memo with `cash_refund_body` over the RMA's lines.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from mienne_ops.domain.money import ZERO, cents, total, wire
from mienne_ops.errors import InvalidRecordError

SYSTEM = "netsuite"
CASH_SALE, RETURN_AUTHORIZATION = "cash_sale", "return_authorization"
REFUND_SOURCES = (CASH_SALE, RETURN_AUTHORIZATION)
APPROVED = "B"  # RMA Pending Receipt: approved, nothing received


@dataclass(frozen=True)
class BookedRefundLine:
    sku: str
    quantity: int
    amount: Decimal  # the refunded subtotal of that line (before tax)


@dataclass(frozen=True)
class RefundBreakdown:
    lines: tuple[BookedRefundLine, ...]
    shipping: Decimal
    tax: Decimal
    total: Decimal
    memo: str


@dataclass(frozen=True)
class _SourceLine:
    line: int
    item_id: str
    sku: str
    quantity: int


def cash_refund_body(
    breakdown: RefundBreakdown,
    *,
    source_lines: list[dict],
    tax_item_id: int,
    shipping_item_id: int | None,
    shipping_cost_field: str,
    external_id: str,
    adjustment_item_id: int | None = None,
) -> dict:
    """Body for ``POST <source>/{id}/!transform/cashRefund`` (or ``creditMemo``).

    ``source_lines`` are the source record's item lines as NetSuite's REST record shows them
    (``GET …?expandSubResources=true`` → ``item.items``: ``line``, ``item {id, refName}``,
    ``quantity``); a ``sku`` key wins over the item's ``refName``. Raises `InvalidRecordError` when
    the refund cannot be booked to the cent (a SKU not on the source, more units than it has, parts
    larger than the total, or an adjustment needed without an adjustment item).
    """
    lines = [_source_line(raw) for raw in source_lines]
    special = {str(tax_item_id), *(str(i) for i in (shipping_item_id, adjustment_item_id) if i is not None)}
    items, remainder = _product_lines(breakdown, [s for s in lines if s.item_id not in special], external_id)
    parts = total([*(line.amount for line in breakdown.lines), breakdown.shipping, breakdown.tax])
    adjustment = cents(breakdown.total) - parts + remainder
    if adjustment < 0:
        raise _unbookable(external_id, f"the parts ({parts}) exceed the refund total ({breakdown.total})")
    used = {item["orderLine"] for item in items}
    header_shipping = cents(breakdown.shipping)
    for item_id, amount in (
        (tax_item_id, cents(breakdown.tax)),
        (shipping_item_id, header_shipping if shipping_item_id is not None else ZERO),
        (adjustment_item_id, adjustment),
    ):
        if amount == 0:
            continue
        if item_id is None:
            raise _unbookable(
                external_id,
                f"{amount} refunded beyond the lines (an amount-only refund or rate cents) needs "
                "BusinessRules.refund_adjustment_item_id",
            )
        items.append(_single_amount_line(item_id, amount, lines, used))
    if shipping_item_id is not None:
        header_shipping = ZERO
    items += [{"orderLine": s.line, "itemReceive": False} for s in lines if s.line not in used]
    booked = total([*(Decimal(str(item.get("amount", 0))) for item in items), header_shipping])
    if booked != cents(breakdown.total):  # a bug here must never reach the books
        raise _unbookable(external_id, f"booked {booked}, refunded {breakdown.total}")
    return {
        "externalId": external_id,
        "memo": breakdown.memo,
        shipping_cost_field: wire(header_shipping),
        "item": {"items": items},
    }


def return_authorization_body(
    breakdown: RefundBreakdown,
    *,
    source_lines: list[dict],
    tax_item_id: int,
    shipping_item_id: int | None,
    shipping_cost_field: str,
    external_id: str,
    adjustment_item_id: int | None = None,
) -> dict:
    """Body for ``POST salesOrder/{id}/!transform/returnAuthorization``: the same lines and amounts
    as the refund, approved at once (``B`` Pending Receipt), so it can be refunded without a receipt."""
    body = cash_refund_body(
        breakdown,
        source_lines=source_lines,
        tax_item_id=tax_item_id,
        shipping_item_id=shipping_item_id,
        shipping_cost_field=shipping_cost_field,
        external_id=external_id,
        adjustment_item_id=adjustment_item_id,
    )
    return {**body, "orderStatus": {"id": APPROVED}}


def _product_lines(
    breakdown: RefundBreakdown, lines: list[_SourceLine], external_id: str
) -> tuple[list[dict], Decimal]:
    """The refunded product lines on their source lines, and the cents their rates cannot carry."""
    wanted: dict[str, tuple[int, Decimal]] = {}
    remainder = ZERO
    for refunded in breakdown.lines:
        if refunded.quantity < 0 or refunded.amount < 0:
            raise _unbookable(external_id, f"negative refund line for {refunded.sku}")
        if refunded.quantity == 0:
            remainder += cents(refunded.amount)  # money without units: on the adjustment line
            continue
        quantity, amount = wanted.get(refunded.sku, (0, ZERO))
        wanted[refunded.sku] = (quantity + refunded.quantity, amount + cents(refunded.amount))
    items: list[dict] = []
    for sku, (quantity, amount) in wanted.items():
        pieces = _split(sku, quantity, amount, [s for s in lines if s.sku == sku], external_id)
        for source, units, piece_amount in pieces:
            rate = (piece_amount / units).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
            remainder += piece_amount - rate * units
            items.append(
                {
                    "orderLine": source.line,
                    "quantity": units,
                    "rate": wire(rate),
                    "amount": wire(rate * units),
                }
            )
    return items, remainder


def _split(
    sku: str, quantity: int, amount: Decimal, candidates: list[_SourceLine], external_id: str
) -> list[tuple[_SourceLine, int, Decimal]]:
    """Units over the source lines of a SKU in order; the amount in proportion (cents to the last)."""
    if not candidates:
        raise _unbookable(external_id, f"SKU {sku} is not on the source record")
    pieces: list[tuple[_SourceLine, int]] = []
    left = quantity
    for source in candidates:
        take = min(left, source.quantity)
        if take > 0:
            pieces.append((source, take))
            left -= take
    if left > 0:
        raise _unbookable(external_id, f"{quantity} × {sku} refunded, the source has fewer")
    result: list[tuple[_SourceLine, int, Decimal]] = []
    given = ZERO
    for index, (source, units) in enumerate(pieces):
        share = amount - given if index == len(pieces) - 1 else cents(amount * units / quantity)
        given += share
        result.append((source, units, share))
    return result


def _single_amount_line(item_id: int, amount: Decimal, lines: Iterable[_SourceLine], used: set) -> dict:
    """One unit of a service item: on the source's line of that item when it has one, else added."""
    body: dict[str, Any] = {"quantity": 1, "rate": wire(amount), "amount": wire(amount)}
    source = next((s for s in lines if s.item_id == str(item_id) and s.line not in used), None)
    if source is None:
        return {"item": {"id": str(item_id)}, **body}
    used.add(source.line)
    return {"orderLine": source.line, **body}


def _source_line(raw: dict) -> _SourceLine:
    item = raw.get("item")
    item_id = str(item.get("id") if isinstance(item, dict) else item)
    sku = raw.get("sku") or (item.get("refName") if isinstance(item, dict) else None) or ""
    return _SourceLine(
        line=int(raw["line"]),
        item_id=item_id,
        sku=str(sku),
        quantity=int(abs(Decimal(str(raw.get("quantity") or 0)))),
    )


def _unbookable(external_id: str, why: str) -> InvalidRecordError:
    return InvalidRecordError(
        "refund_not_bookable",
        f"refund {external_id} cannot be booked in NetSuite to the cent: {why}",
        system=SYSTEM,
        operation="cash_refund_body",
        record=external_id,
    )
