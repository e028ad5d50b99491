"""Shopify returns as flow F reads them: what can be returned, and the returns of an order.

Parsed from the GraphQL documents `returnable_fulfillments`, `return_fields` and the return
mutations (``integrations/graphql/``). Ids are Shopify GIDs (the mutations take them); money is
shop-currency `Decimal`.

- `ReturnableLine`: one fulfillment line item with the units that can still be returned now
  (Shopify's ``returnableFulfillments``: fulfilled units minus those in returns that were not
  declined or cancelled), when its fulfillment shipped and was delivered, what one unit sold for
  after discounts, and its product's tags (lower-cased: the return policy's final-sale test).
- `ShopifyReturn`: a return with its lines (requested, processed), its reverse fulfillment orders
  and the tracking numbers of their reverse deliveries (the labels attached).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from mienne_ops.domain.money import to_decimal


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


def shopify_time(value: str | None) -> datetime | None:
    """A GraphQL DateTime (``…Z`` or with an offset) as an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _money(bag: dict[str, Any] | None) -> Decimal:
    return to_decimal(((bag or {}).get("shopMoney") or {}).get("amount"))


RETURN_STATUSES = ("REQUESTED", "OPEN", "DECLINED", "CLOSED", "CANCELED")


class ReturnableLine(_Model):
    fulfillment_line_item_id: str  # gid://shopify/FulfillmentLineItem/…
    line_item_id: str  # gid://shopify/LineItem/…
    sku: str | None = None
    quantity: int  # returnable now
    fulfilled_at: datetime
    delivered_at: datetime | None = None
    unit_price: Decimal  # one unit after all discounts
    product_tags: frozenset[str] = frozenset()  # lower-cased

    @classmethod
    def from_graphql(cls, fulfillment: dict[str, Any], node: dict[str, Any]) -> ReturnableLine:
        """From a `ReturnableFulfillment.fulfillment` and one of its returnable line items."""
        fli = node["fulfillmentLineItem"]
        line = fli["lineItem"]
        fulfilled = shopify_time(fulfillment.get("createdAt"))
        assert fulfilled is not None, "a fulfillment always has its createdAt"
        return cls(
            fulfillment_line_item_id=fli["id"],
            line_item_id=line["id"],
            sku=line.get("sku"),
            quantity=int(node["quantity"]),
            fulfilled_at=fulfilled,
            delivered_at=shopify_time(fulfillment.get("deliveredAt")),
            unit_price=_money(line.get("discountedUnitPriceAfterAllDiscountsSet")),
            product_tags=frozenset(t.strip().lower() for t in (line.get("product") or {}).get("tags") or []),
        )


class ShopifyReturnLine(_Model):
    id: str  # gid://shopify/ReturnLineItem/…
    fulfillment_line_item_id: str
    line_item_id: str
    sku: str | None = None
    quantity: int
    processed_quantity: int
    unit_price: Decimal = Decimal("0")  # one unit after all discounts
    product_tags: frozenset[str] = frozenset()  # lower-cased (final sale)

    @property
    def unprocessed_quantity(self) -> int:
        return self.quantity - self.processed_quantity

    @classmethod
    def from_graphql(cls, node: dict[str, Any]) -> ShopifyReturnLine:
        fli = node.get("fulfillmentLineItem") or {}
        line = fli.get("lineItem") or {}
        return cls(
            id=node["id"],
            fulfillment_line_item_id=fli.get("id") or "",
            line_item_id=line.get("id") or "",
            sku=line.get("sku"),
            quantity=int(node["quantity"]),
            processed_quantity=int(node.get("processedQuantity") or 0),
            unit_price=_money(line.get("discountedUnitPriceAfterAllDiscountsSet")),
            product_tags=frozenset(t.strip().lower() for t in (line.get("product") or {}).get("tags") or []),
        )


class ShopifyReturn(_Model):
    gid: str  # gid://shopify/Return/…
    name: str  # "#1001-R1"
    status: str  # REQUESTED | OPEN | DECLINED | CLOSED | CANCELED
    order_id: str  # gid://shopify/Order/…
    lines: tuple[ShopifyReturnLine, ...]
    reverse_fulfillment_order_ids: tuple[str, ...] = ()
    tracking_numbers: tuple[str, ...] = ()  # of its reverse deliveries
    customer_note: str | None = None
    requested_at: datetime | None = None

    @classmethod
    def from_graphql(cls, node: dict[str, Any]) -> ShopifyReturn:
        """From a `ReturnFields` node whose lists the client has completed."""
        lines = [
            ShopifyReturnLine.from_graphql(n)
            for n in (node.get("returnLineItems") or {}).get("nodes") or []
            if n.get("id")
        ]
        rfos = (node.get("reverseFulfillmentOrders") or {}).get("nodes") or []
        numbers: list[str] = []
        for rfo in rfos:
            for delivery in (rfo.get("reverseDeliveries") or {}).get("nodes") or []:
                number = ((delivery.get("deliverable") or {}).get("tracking") or {}).get("number")
                if number and number not in numbers:
                    numbers.append(number)
        notes = [n.get("customerNote") for n in (node.get("returnLineItems") or {}).get("nodes") or []]
        return cls(
            gid=node["id"],
            name=node["name"],
            status=node["status"],
            order_id=(node.get("order") or {}).get("id") or "",
            lines=tuple(lines),
            reverse_fulfillment_order_ids=tuple(r["id"] for r in rfos),
            tracking_numbers=tuple(numbers),
            customer_note=next((n for n in notes if n), None),
            requested_at=shopify_time(node.get("createdAt")),
        )

    def line(self, return_line_id: str) -> ShopifyReturnLine | None:
        return next((line for line in self.lines if line.id == return_line_id), None)

    @property
    def processed(self) -> bool:
        """Whether any unit was processed (a processed return can no longer be cancelled)."""
        return any(line.processed_quantity for line in self.lines)
